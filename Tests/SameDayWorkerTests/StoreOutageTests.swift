import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A full disk under a running worker is not a poison loop (issue "no message, disk or network fault can poison a
/// shard"): the worker stops committing and acking, keeps its deliveries, retries, and goes on when the disk has
/// room again; nothing is dead-lettered and every event is applied once. Needs root (it mounts a small tmpfs) and
/// the broker.
@Suite(
    "Store outage: a full disk is waited out, not dead-lettered (needs broker, root)", .serialized, .needs(.rabbitMQ))
struct StoreOutageTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    static var isRoot: Bool { getuid() == 0 }

    func events(_ range: ClosedRange<Int>) -> [DossierEvent] {
        range.map { n in
            let minute = n % 60
            let hour = 8 + (n / 60) % 8
            return receivedEvent(
                "760-220518-\(String(n + 10_000))",
                at: "2022-05-18T\(hour < 10 ? "0" : "")\(hour):\(minute < 10 ? "0" : "")\(minute):00+07:00")
        }
    }

    @Test(
        "a tmpfs filled under the worker, then freed: every event applied once, nothing dead-lettered",
        .enabled(if: isRoot, "mounting a tmpfs needs root (CI runs as root)"))
    func diskFullIsWaitedOut() async throws {
        var harness = try WorkerHarness("disk-full")
        defer { harness.cleanUp() }
        let mount = harness.folder + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        try #require(run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mount]) == 0)
        defer { _ = run("/bin/umount", ["-l", mount]) }
        harness.settings.stateDirectory = mount + "/state"
        let settings = harness.settings
        let configuration = configuration
        let stop = StopFlag()
        async let worker: Void = BlockingThread.run(name: "test worker") {
            try WorkerService(configuration: settings, domain: configuration).run(until: stop)
        }
        defer { stop.request() }
        func waitFor(_ seconds: Int, _ condition: () throws -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                if (try? condition()) == true { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        #expect(try await waitFor(30) { FileManager.default.fileExists(atPath: settings.databasePath) })
        let store = try WorkerStore(path: settings.databasePath)
        try harness.publish(events(1...300), configuration: configuration)
        #expect(try await waitFor(60) { try store.eventCount() == 300 })

        // The disk fills up: SQLite's commit and the files fail with ENOSPC.
        let filler = mount + "/filler"
        _ = run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=1M", "count=64"])
        try harness.publish(events(301...600), configuration: configuration)
        try await Task.sleep(for: .seconds(5))
        #expect(try store.eventCount() == 300, "nothing is committed while the disk is full")
        #expect(!stop.isRequested)

        try FileManager.default.removeItem(atPath: filler)
        #expect(try await waitFor(90) { try store.eventCount() == 600 }, "the worker goes on once there is room")
        stop.request()
        try await worker

        #expect(try store.eventCount() == 600, "every event applied once")
        #expect(try harness.drain(harness.topology.deadLetterQueue).isEmpty, "nothing dead-lettered")
        #expect(try harness.drain(harness.topology.workQueue(0)).isEmpty, "everything acked")
    }

    func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
