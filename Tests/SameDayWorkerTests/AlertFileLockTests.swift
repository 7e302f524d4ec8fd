import Foundation
import Logging
import SameDayCore
import SameDayFormats
import SameDayStore
import Testing

@testable import SameDayWorker

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Alert files locked by a paused worker of the same shard")
struct AlertFileLockTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test(
        "a worker that starts while another process holds a day's file stays up, reports the stall, and files its backlog once the lock frees"
    )
    func startWhileAFileIsLocked() throws {
        let folder = temporaryFolder("alert-file-lock")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var settings = WorkerConfiguration()
        settings.stateDirectory = folder
        settings.clock = .events
        let store = try WorkerStore(path: settings.databasePath)
        // The outbox holds an alert the last holder never filed.
        var batch = CommitBatch()
        batch.alerts = [
            OutboxAlert(
                alertID: "backlog-1", level: "warning", routingKey: "warning.district.760", day: "2022-05-18",
                json: #"{"alertId":"backlog-1","level":"warning"}"#)
        ]
        try store.commit(batch)
        // A paused worker inside its append: the day's file, locked through an open file of its own.
        let path = AlertFiles.path(folder: settings.resolvedAlertsDirectory, day: "2022-05-18")
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let held = open(path, O_CREAT | O_RDWR | O_APPEND, 0o644)
        #expect(held >= 0)
        #expect(flock(held, LOCK_EX) == 0)

        // Before, the start gave up after the lock wait and the worker exited.
        let loop = try ShardLoop(
            configuration: settings, domain: configuration, store: store,
            clock: StepClock(RFC3339.parse("2022-05-18T10:00:00+07:00")!), metrics: WorkerMetrics(),
            logger: Logger(label: "test"), publisher: nil, queue: "sameday.work.0")
        defer { loop.close() }
        var deadline = ContinuousClock.now + .seconds(30)
        while loop.stall == nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(loop.stall?.reason.contains("lock") == true, "\(loop.stall?.reason ?? "no stall")")
        #expect(try String(contentsOfFile: path, encoding: .utf8).isEmpty)

        // The paused worker goes away: the files thread's retry files the backlog, once.
        flock(held, LOCK_UN)
        close(held)
        deadline = ContinuousClock.now + .seconds(60)
        while loop.stall != nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(loop.stall == nil)
        try loop.flush(consumer: nil)
        try loop.collect(consumer: nil, wait: true)
        #expect(
            try String(contentsOfFile: path, encoding: .utf8) == #"{"alertId":"backlog-1","level":"warning"}"# + "\n")
        #expect(try store.unfiledAlerts().isEmpty)
    }
}
