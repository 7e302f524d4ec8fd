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

@Suite("Worker crash safety against the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct CrashSafetyTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    /// A month of synthetic events (about 55,000, duplicates included), in occurrence order.
    func month() -> [DossierEvent] {
        SyntheticMonth(
            firstDay: LocalDate(year: 2022, month: 5, day: 16)!, days: 30, dossiersPerUnitPerDay: 10, seed: 77
        )
        .events(config: configuration)
    }

    /// The month's events run on their own clock to early August, past the default 62 days of the event log's
    /// retention: a prune could then remove the first events (and delivered alerts) between the moment every event
    /// is counted and the checks below. Kept longer than the run, nothing leaves and the counts compare.
    static let eventLogDays = 400

    func startWorker(_ harness: WorkerHarness) throws -> Process {
        let settingsFile = harness.folder + "/worker.json"
        if !FileManager.default.fileExists(atPath: settingsFile) {
            try Data(#"{"eventLogDays": \#(Self.eventLogDays)}"#.utf8).write(to: URL(fileURLWithPath: settingsFile))
        }
        let process = Process()
        process.executableURL = try samedayExecutable()
        process.arguments = ["worker", "--log-level", "warning", "--config", settingsFile]
        process.environment = ProcessInfo.processInfo.environment.merging(harness.environment) { $1 }
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return process
    }

    @Test(
        "SIGKILLed five times mid-run, the worker ends with the rollups of an uninterrupted run and of replay, every alert once"
    )
    func killedRepeatedly() async throws {
        let events = month()
        let distinct = Set(events.map(\.eventId)).count
        #expect(events.count >= 50_000)

        // 1. The reference: `replay` over the same events.
        let crashed = try WorkerHarness("crash")
        var calm = try WorkerHarness("calm")
        calm.settings.eventLogDays = Self.eventLogDays
        defer {
            crashed.cleanUp()
            calm.cleanUp()
        }
        try crashed.publish(events, configuration: configuration)
        try calm.publish(events, configuration: configuration)

        // 2. The crashed run: a worker process killed with SIGKILL five times at random moments.
        let store = try WorkerStore(path: crashed.settings.databasePath)
        var kills = 0
        var worker = try startWorker(crashed)
        var generator = SplitMix64(seed: 5)
        while kills < 5 {
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1500, using: &generator)))
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
            kills += 1
            worker = try startWorker(crashed)
        }
        let deadline = ContinuousClock.now + .seconds(240)
        while (try store.eventCount()) < distinct && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        #expect(worker.terminationStatus == 0, "graceful stop on SIGTERM")
        #expect(try store.eventCount() == distinct)

        // 3. An uninterrupted run of the same events, in this process.
        try await calm.runInProcess(configuration: configuration, timeout: .seconds(240)) { store in
            (try? store.eventCount()) == distinct
        }

        // 4. replay over the same events, up to the same clock.
        let clock = try #require(try store.clock())
        let replayFolder = crashed.folder + "/replay"
        _ = try replayReference(
            events, configuration: configuration, until: clock, root: replayFolder + "/rollups")

        let crashedRollups = try filesUnder(crashed.settings.resolvedRollupsDirectory)
        let calmRollups = try filesUnder(calm.settings.resolvedRollupsDirectory)
        let replayRollups = try filesUnder(replayFolder + "/rollups")
        #expect(!replayRollups.isEmpty)
        #expect(crashedRollups.keys.sorted() == replayRollups.keys.sorted())
        #expect(crashedRollups == replayRollups, "rollups after crashes differ from replay")
        #expect(crashedRollups == calmRollups, "rollups after crashes differ from an uninterrupted run")

        let outbox = try store.allAlerts().map(\.alertID)
        #expect(outbox.count == Set(outbox).count, "no alert id twice in the outbox")
        let inOrder = try alertsInAppliedOrder(store, configuration: configuration, until: clock)
        let expected = Set(inOrder.map(\.alertId))
        // On a difference, name the alerts (level, dossier, times), not the whole set.
        let stored = Set(outbox)
        let missing = inOrder.filter { !stored.contains($0.alertId) }.map { $0.jsonLine() }
        let extra = stored.subtracting(expected).sorted()
        #expect(
            missing.isEmpty && extra.isEmpty,
            "outbox vs replay: \(extra.count) extra \(extra.prefix(5)), \(missing.count) missing: \(missing.prefix(5))")
        let filed = try alertIDs(inFolder: crashed.settings.resolvedAlertsDirectory)
        #expect(filed.count == Set(filed).count, "no alert twice in the alert files")
        #expect(
            Set(filed) == Set(outbox),
            "files vs outbox: \(Set(filed).subtracting(outbox).count) extra, \(Set(outbox).subtracting(filed).count) missing"
        )
    }
}
