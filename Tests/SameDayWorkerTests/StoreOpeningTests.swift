import Foundation
import SameDayStore
import Synchronization
import Testing

/// A store's file is opened by more than its service: `sameday report`, a test, ops' sqlite3. Two openers that meet on
/// a new or older file must both succeed: one switches it to WAL and migrates, the other waits and finds it done.
@Suite("Opening a state database from several processes at once")
struct StoreOpeningTests {
    /// Openers started together on a fresh file, each on its own thread, as a service and a report would.
    private func openTogether(_ count: Int, _ open: @escaping @Sendable () throws -> Void) -> [String] {
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        let failures = Mutex<[String]>([])
        for _ in 0..<count {
            group.enter()
            Thread {
                start.wait()
                do { try open() } catch { failures.withLock { $0.append(String(describing: error)) } }
                group.leave()
            }.start()
        }
        for _ in 0..<count { start.signal() }
        group.wait()
        return failures.withLock { $0 }
    }

    @Test("openers racing on a new worker or sources database all succeed, and the schema is made once")
    func racingOpeners() throws {
        let folder = temporaryFolder("store-opening")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for round in 0..<12 {
            let workerPath = "\(folder)/worker-\(round).sqlite"
            let sourcesPath = "\(folder)/sources-\(round).sqlite"
            let failures =
                openTogether(4) { _ = try WorkerStore(path: workerPath) }
                + openTogether(4) { _ = try SourcesStore(path: sourcesPath) }
            #expect(failures.isEmpty, "round \(round): \(failures)")
            // Each file holds its whole schema, made once: the stores read back empty.
            #expect(try WorkerStore(path: workerPath).dossierCount() == 0)
            #expect(try SourcesStore(path: sourcesPath).offset() == nil)
        }
    }
}
