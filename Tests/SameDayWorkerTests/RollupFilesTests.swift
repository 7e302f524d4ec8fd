import Foundation
import SameDayCore
import SameDayFiles
import SameDayFormats
import SameDayWorker
import Synchronization
import Testing

@Suite("Rollup files")
struct RollupFilesTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    /// Writes one day's rollup files, returning every folder fsynced meanwhile, in order.
    func write(day: LocalDate, root: String, written: inout [String: Int], facts: [DossierFacts] = []) throws
        -> [String]
    {
        let synced = Folders()
        let rollup = Rollup.compute(facts: facts, period: .day(day), config: configuration)
        try DurableFile.$folderSynced.withValue({ folder in synced.list.withLock { $0.append(folder) } }) {
            _ = try RollupFiles.write(rollup, date: day, root: root, written: &written)
        }
        return synced.list.withLock { $0 }
    }

    final class Folders: Sendable {
        let list = Mutex<[String]>([])
    }

    @Test("a new day folder's entry is fsynced in its parent, and the folder itself after its files' renames")
    func newDayFolderIsSynced() throws {
        let folder = temporaryFolder("rollup-fsync")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let root = folder + "/rollups"
        let first = LocalDate(year: 2022, month: 5, day: 18)!
        var written: [String: Int] = [:]

        let synced = try write(day: first, root: root, written: &written)
        let day = root + "/daily/2022-05-18"
        // Each folder made is followed by an fsync of its parent, outermost first, before any file goes in.
        #expect(Array(synced.prefix(3)) == [folder, root, root + "/daily"], "\(synced)")
        #expect(synced.dropFirst(3).allSatisfy { $0 == day } && synced.count == 3 + 5, "one per file renamed")

        // The next day: only its own folder is new, so only `daily/` is fsynced for it.
        let next = try write(day: LocalDate(year: 2022, month: 5, day: 19)!, root: root, written: &written)
        #expect(next.first == root + "/daily" && next.filter { $0 == root + "/daily" }.count == 1, "\(next)")
        #expect(!next.contains(root) && !next.contains(folder))

        // Rewriting an existing day makes no folder, so no parent is fsynced.
        written = [:]
        try FileManager.default.removeItem(atPath: day + "/units.csv")
        let again = try write(day: first, root: root, written: &written)
        #expect(again == [day], "only the file's own folder, after its rename: \(again)")
    }

    @Test("a worker whose lease is lost mid-snapshot replaces no further file: the new holder's stay as they are")
    func lostLeaseStopsBeforeTheNextRename() throws {
        let folder = temporaryFolder("rollup-gate")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let root = folder + "/rollups"
        let day = LocalDate(year: 2022, month: 5, day: 23)!
        let rollup = Rollup.compute(facts: [], period: .day(day), config: configuration)
        // The new holder's files, already there.
        let paths = RollupFiles.files(for: rollup, date: day, root: root).map(\.path)
        for path in paths {
            try DurableFile.createFolder(of: path)
            try DurableFile.writeAtomically(Array("new holder\n".utf8), to: path)
        }

        // The old holder resumes: its gate is open for the first file only (the lease expires while it writes).
        let asked = Mutex(0)
        var written: [String: Int] = [:]
        let count = try RollupFiles.write(
            rollup, date: day, root: root, written: &written,
            mayWrite: {
                asked.withLock { n in
                    n += 1; return n == 1
                }
            })
        #expect(count == 1)
        #expect(written.count == 1, "only the file replaced is remembered as written")
        let kept = paths.filter { (try? String(contentsOfFile: $0, encoding: .utf8)) == "new holder\n" }
        #expect(kept.count == paths.count - 1, "every later file is the new holder's")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/daily/2022-05-23")
            .filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "no temporary file is left behind: \(leftovers)")
    }
}
