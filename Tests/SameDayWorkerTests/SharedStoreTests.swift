import Foundation
import RabbitMQ
import SameDayCore
import SameDayFormats
import SameDayPostgres
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Testing

/// The local PostgreSQL the tests use (`LocalPostgres`: `deploy/postgres/local-postgres.sh start`, or another one
/// named by SAMEDAY_TEST_POSTGRES and SAMEDAY_TEST_POSTGRES_PASSWORD_FILE).
enum TestPostgres {
    static let url = LocalPostgres.url
    static let passwordFile = LocalPostgres.passwordFile

    /// A shard name no other test uses (every table is keyed by it).
    static func uniqueShard(_ purpose: String) -> String { LocalBroker.uniqueName(purpose) + ".sameday.work.0" }

    static func store(shard: String, epoch: Int64?) throws -> PostgresShardStore {
        try PostgresShardStore(
            url: PostgresStoreURL(url), passwordFile: passwordFile, shard: shard, fencingEpoch: epoch)
    }

    static func lease(shard: String, holder: String, ttl: Duration = .seconds(10)) throws -> ShardLease {
        try ShardLease(url: PostgresStoreURL(url), passwordFile: passwordFile, shard: shard, holder: holder, ttl: ttl)
    }
}

/// Both engines a shard's state can live in; the same checks run against each.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    func open(_ purpose: String) throws -> (store: any ShardStore, cleanUp: () -> Void) {
        switch self {
        case .sqlite:
            let folder = temporaryFolder(purpose)
            return (
                try WorkerStore(path: folder + "/state.sqlite"), { try? FileManager.default.removeItem(atPath: folder) }
            )
        case .postgres:
            return (try TestPostgres.store(shard: TestPostgres.uniqueShard(purpose), epoch: nil), {})
        }
    }
}

@Suite("One store interface, two backends (needs the local PostgreSQL)", .needs(.postgreSQL))
struct SharedStoreTests {
    func alert(_ id: String, day: String = "2022-05-18", level: String = "warning") -> OutboxAlert {
        OutboxAlert(
            alertID: id, level: level, routingKey: "\(level).district.760", day: day, json: "{\"alertId\":\"\(id)\"}")
    }

    @Test(
        "a commit reads back whole: dossiers, tombstones, stock, outbox, dead letters, clock",
        arguments: Backend.allCases)
    func commitReadsBack(backend: Backend) throws {
        let (store, cleanUp) = try backend.open("store-roundtrip")
        defer { cleanUp() }
        var batch = CommitBatch()
        batch.events = [
            ("e1", "760-1", 100, Array("{\"a\":1}".utf8)), ("e2", "760-2", 101, Array("{\"b\":2}".utf8)),
            ("e3", "760-3", 102, [0, 255, 7]),
        ]
        batch.dossiers = [(1, "760-1", [1, 2, 3]), (2, "760-2", [4]), (1, "760-1", [9, 9]), (3, "760-3", [])]
        batch.alerts = [alert("a1"), alert("a2", level: "critical"), alert("a1")]
        batch.deadLetters = [DeadLetter(messageID: "m1", routingKey: "k", queue: "q", reason: "bad", body: [0, 1, 2])]
        batch.clock = 500
        batch.firstDay = 19_130
        batch.lastEventDay = 19_131
        try store.commit(batch)

        var dossiers: [String: [UInt8]] = [:]
        var keys: [String: Int64] = [:]
        try store.forEachDossier { key, code, state in
            dossiers[code] = state
            keys[code] = key
        }
        #expect(dossiers == ["760-1": [9, 9], "760-2": [4], "760-3": []], "the last state of a row wins")
        let expectedKeys: [String: Int64] =
            backend == .sqlite ? ["760-1": 1, "760-2": 2, "760-3": 3] : ["760-1": 0, "760-2": 0, "760-3": 0]
        #expect(keys == expectedKeys, "SQLite keys rows by the engine's number; PostgreSQL by code")
        #expect(try store.eventCount() == 3)
        var logged: [[UInt8]] = []
        try store.forEachLoggedEvent { _, bytes, _ in logged.append(bytes) }
        #expect(logged == [Array("{\"a\":1}".utf8), Array("{\"b\":2}".utf8), [0, 255, 7]], "the bytes that arrived")
        #expect(try store.allAlerts().map(\.alertID) == ["a1", "a2"], "an alert id is stored once")
        #expect(try store.clock() == 500 && store.firstDay() == 19_130 && store.lastEventDay() == 19_131)
        let letters = try store.pendingDeadLetters()
        #expect(letters.map(\.body) == [[0, 1, 2]] && letters.first?.reason == "bad")

        // The same alert raised again (a redelivery, a takeover) keeps its first row and its delivery marks.
        try store.markPublished(["a1"])
        var again = CommitBatch()
        again.alerts = [OutboxAlert(alertID: "a1", level: "warning", routingKey: "x", day: "2022-05-18", json: "{}")]
        again.filedAlertIDs = ["a1", "a2"]
        again.confirmedDeadLetters = letters.map(\.seq)
        again.retired = [
            (2, "760-2", 600, RetiredStockKey(unit: "760", field: "Hộ tịch")),
            (3, "760-3", 601, RetiredStockKey(unit: "760", field: "Hộ tịch")), (1, "760-1", 602, nil),
        ]
        try store.commit(again)
        #expect(try store.allAlerts().first?.json == "{\"alertId\":\"a1\"}")
        #expect(try store.unpublishedAlerts().map(\.alertID) == ["a2"])
        #expect(try store.unfiledAlerts().isEmpty)
        #expect(try store.pendingDeadLetters().isEmpty)
        #expect(try store.dossierCount() == 0 && store.tombstoneCount() == 3)
        #expect(try store.retiredStock() == [RetiredStockKey(unit: "760", field: "Hộ tịch"): 2])
        var hashes: [UInt64] = []
        try store.tombstones(since: 601) { hash, _ in hashes.append(hash) }
        #expect(hashes == [FNV1a.hash("760-3"), FNV1a.hash("760-1")], "since 601, oldest first")
        #expect(try store.lastTombstone() == "760-1")
    }

    @Test("pruning takes the oldest rows in bounded slices", arguments: Backend.allCases)
    func pruning(backend: Backend) throws {
        let (store, cleanUp) = try backend.open("store-prune")
        defer { cleanUp() }
        var batch = CommitBatch()
        batch.events = (0..<50).map { ("e\($0)", "d\($0)", Instant($0 * 10), [1]) }
        batch.alerts = [alert("old", day: "2022-01-01"), alert("new", day: "2022-06-01")]
        batch.publishedAlertIDs = ["old", "new"]
        batch.filedAlertIDs = ["old", "new"]
        batch.retired = (0..<5).map { (0, "r\($0)", Instant($0), nil) }
        try store.commit(batch)
        let first = try store.prune(eventsBefore: 300, tombstonesBefore: 3, alertsBeforeDay: "2022-03-01", limit: 20)
        #expect(first.events == 20 && first.tombstones == 3 && first.alerts == 1)
        let second = try store.prune(eventsBefore: 300, tombstonesBefore: 3, alertsBeforeDay: "2022-03-01", limit: 20)
        #expect(second.events == 10 && second.tombstones == 0 && second.alerts == 0)
        #expect(try store.eventCount() == 20 && store.tombstoneCount() == 2)
        #expect(try store.allAlerts().map(\.alertID) == ["new"])
    }

    @Test("rows that do not read back move aside with their reason", arguments: Backend.allCases)
    func quarantine(backend: Backend) throws {
        let (store, cleanUp) = try backend.open("store-quarantine")
        defer { cleanUp() }
        var batch = CommitBatch()
        batch.events = [("e1", "d1", 1, [1]), ("e2", "d2", 2, [2])]
        batch.dossiers = [(1, "d1", [1]), (2, "d2", [2])]
        try store.commit(batch)
        try store.quarantineDossiers([(1, "d1", "unreadable")])
        var arrivals: [Int64] = []
        try store.forEachLoggedEvent { arrival, _, _ in arrivals.append(arrival) }
        try store.quarantine([(arrivals[0], "unreadable")])
        #expect(try store.dossierCount() == 1 && store.quarantinedDossierCount() == 1)
        #expect(try store.eventCount() == 1 && store.quarantinedEventCount() == 1)
    }
}

@Suite("The shard lease and its fencing (needs the local PostgreSQL)", .serialized, .needs(.postgreSQL))
struct ShardLeaseTests {
    @Test("one holder at a time; the lease frees when released; the old holder's writes are refused")
    func fencing() throws {
        let shard = TestPostgres.uniqueShard("lease")
        let first = try TestPostgres.lease(shard: shard, holder: "first")
        let second = try TestPostgres.lease(shard: shard, holder: "second")
        defer { second.release() }
        let firstEpoch = try #require(try first.tryAcquire())
        #expect(try second.tryAcquire() == nil, "held by the first")
        #expect(try second.currentHolder()?.holder == "first")
        let firstStore = try TestPostgres.store(shard: shard, epoch: firstEpoch)
        var batch = CommitBatch()
        batch.dossiers = [(1, "760-1", [1])]
        batch.clock = 10
        try firstStore.commit(batch)

        // The first holder gives the lease back (a graceful stop).
        first.release()
        let secondEpoch = try #require(try second.tryAcquire())
        #expect(secondEpoch == firstEpoch + 1)
        #expect(first.lostReason != nil && second.lostReason == nil)

        batch.clock = 20
        #expect(throws: LeaseLost.self) { try firstStore.commit(batch) }
        #expect(throws: LeaseLost.self) { try firstStore.markFiled(["any"]) }
        #expect(throws: LeaseLost.self) {
            try firstStore.prune(eventsBefore: .max, tombstonesBefore: .max, alertsBeforeDay: "9999-12-31")
        }
        let secondStore = try TestPostgres.store(shard: shard, epoch: secondEpoch)
        #expect(try secondStore.clock() == 10, "the refused commit left nothing")
        batch.clock = 30
        try secondStore.commit(batch)
        #expect(try secondStore.clock() == 30)
    }

    @Test("a holder that stops renewing (frozen, cut off) loses the lease at its expiry, and commits nothing after it")
    func expiry() async throws {
        let shard = TestPostgres.uniqueShard("lease-expiry")
        let frozen = try TestPostgres.lease(shard: shard, holder: "frozen", ttl: .seconds(3))
        let standby = try TestPostgres.lease(shard: shard, holder: "standby", ttl: .seconds(3))
        defer { standby.release() }
        let frozenEpoch = try #require(try frozen.tryAcquire())
        let frozenStore = try TestPostgres.store(shard: shard, epoch: frozenEpoch)
        var batch = CommitBatch()
        batch.clock = 10
        // Renewed every second: still held well past its time to live.
        try await Task.sleep(for: .seconds(4))
        #expect(frozen.lostReason == nil)
        #expect(try standby.tryAcquire() == nil)
        try frozenStore.commit(batch)

        frozen.pauseRenewal()
        try await Task.sleep(for: .milliseconds(3500))
        // Expired: the holder knows it on its own clock, and the store refuses its commits even before a standby
        // takes the shard (the session, and its TCP connection, are still open).
        #expect(frozen.lostReason != nil)
        batch.clock = 20
        #expect(throws: LeaseLost.self) { try frozenStore.commit(batch) }
        let standbyEpoch = try #require(try standby.tryAcquire(), "the standby takes the expired lease")
        #expect(standbyEpoch == frozenEpoch + 1)
        #expect(throws: LeaseLost.self) { try frozenStore.commit(batch) }
        let standbyStore = try TestPostgres.store(shard: shard, epoch: standbyEpoch)
        #expect(try standbyStore.clock() == 10)
        frozen.release()
        #expect(try standby.currentHolder()?.holder == "standby", "the old holder's release does not free the lease")
    }

    @Test("the store URL is checked, and never carries the password")
    func storeURL() throws {
        let url = try PostgresStoreURL("postgres://sameday@db.example:6432/city?sslmode=require")
        #expect(url.host == "db.example" && url.port == 6432 && url.database == "city" && url.requireTLS)
        #expect(throws: PostgresStoreURL.Invalid.self) { try PostgresStoreURL("postgres://u:secret@h/db") }
        #expect(throws: PostgresStoreURL.Invalid.self) { try PostgresStoreURL("postgres://u@h") }
        #expect(throws: PostgresStoreURL.Invalid.self) { try PostgresStoreURL("postgres://u@h/db?sslmode=allow") }
        #expect(throws: PostgresStoreURL.Invalid.self) { try PostgresStoreURL("/var/lib/sameday/x.sqlite") }
    }
}

@Suite(
    "A standby worker takes over a shard (needs broker and the local PostgreSQL)", .serialized, .needs(.rabbitMQ),
    .needs(.postgreSQL))
struct StandbyTakeoverTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    func events(_ range: ClosedRange<Int>) -> [DossierEvent] {
        range.map {
            receivedEvent("760-220518-\(5000 + $0)", at: "2022-05-18T09:\(String(format: "%02d", $0 % 60)):00+07:00")
        }
    }

    @Test("the standby consumes and fires nothing while the active worker holds the lease, then takes over")
    func takeover() async throws {
        var harness = try WorkerHarness("standby")
        defer { harness.cleanUp() }
        harness.settings.store = TestPostgres.url
        harness.settings.storePasswordFile = TestPostgres.passwordFile
        // Each worker has its own state folder (its own machine); they share the store and the output folders.
        harness.settings.alertsDirectory = harness.folder + "/alerts"
        harness.settings.rollupsDirectory = harness.folder + "/rollups"
        let reader = try TestPostgres.store(shard: harness.topology.workQueue(0), epoch: nil)
        try harness.publish(events(1...40), configuration: configuration)

        let workers = (0..<2).map { index in
            var settings = harness.settings
            settings.stateDirectory = harness.folder + "/state-\(index)"
            return (settings: settings, metrics: WorkerMetrics(), stop: StopFlag())
        }
        let domain = configuration
        let runs = workers.map { worker in
            Task {
                try await BlockingThread.run(name: "test worker") {
                    try WorkerService(configuration: worker.settings, domain: domain, metrics: worker.metrics)
                        .run(until: worker.stop)
                }
            }
        }
        func waitFor(_ what: String, _ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while !condition() {
                guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what) }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try await waitFor("the first 40 events") { (try? reader.eventCount()) == 40 }
        let active = try #require(workers.firstIndex { $0.metrics.value(.leaseHeld) == 1 })
        let standby = 1 - active
        #expect(workers[standby].metrics.value(.leaseHeld) == 0)
        #expect(workers[standby].metrics.readiness.reason.hasPrefix("standby"), "/readyz says why it is not ready")
        #expect(workers[standby].metrics.value(.eventsTotal) == 0, "the standby consumed nothing")

        // The active worker stops (a rolling upgrade): the standby takes the lease and goes on from the shared state.
        workers[active].stop.request()
        try await runs[active].value
        try harness.publish(events(41...80), configuration: configuration)
        try await waitFor("the takeover and the next 40 events") { (try? reader.eventCount()) == 80 }
        #expect(workers[standby].metrics.value(.leaseHeld) == 1)
        #expect(workers[standby].metrics.value(.leaseTakeoversTotal) == 1)
        #expect(workers[standby].metrics.value(.eventsTotal) == 40, "only the events after the takeover")
        #expect(workers[standby].metrics.value(.takeoverSeconds) > 0)
        #expect(try reader.dossierCount() == 80)
        workers[standby].stop.request()
        try await runs[standby].value
        let filed = try alertIDs(inFolder: harness.settings.resolvedAlertsDirectory)
        #expect(filed.count == Set(filed).count, "no alert twice in the shared files")
        #expect(try harness.drain(harness.topology.workQueue(0)).isEmpty, "everything was acked")
    }
}

extension StandbyTakeoverTests {
    @Test(
        "on the wall clock the standby fires what came due after the active worker stopped, and nothing that worker had fired"
    )
    func missedTimersOnce() async throws {
        var harness = try WorkerHarness("standby-timers")
        defer { harness.cleanUp() }
        harness.settings.store = TestPostgres.url
        harness.settings.storePasswordFile = TestPostgres.passwordFile
        harness.settings.clock = .wall
        harness.settings.alertsDirectory = harness.folder + "/alerts"
        harness.settings.rollupsDirectory = harness.folder + "/rollups"
        let reader = try TestPostgres.store(shard: harness.topology.workQueue(0), epoch: nil)
        let dossier = "760-220518-7001"
        @Sendable func levels() -> [String] {
            ((try? reader.allAlerts()) ?? []).filter { $0.json.contains(dossier) }.map(\.level)
        }
        // Received at 14:00: warning at 15:30, critical at 16:30, overdue at 17:00 (the unit's working calendar).
        try harness.publish([receivedEvent(dossier, at: "2022-05-18T14:00:00+07:00")], configuration: configuration)
        let clock = StepClock(RFC3339.parse("2022-05-18T15:45:00+07:00")!)
        let domain = configuration

        func run(_ index: Int, until done: @escaping @Sendable () -> Bool) async throws {
            var folderSettings = harness.settings
            folderSettings.stateDirectory = harness.folder + "/state-\(index)"
            let settings = folderSettings
            let stop = StopFlag()
            let task = Task {
                try await BlockingThread.run(name: "test worker \(index)") {
                    try WorkerService(configuration: settings, domain: domain, clock: clock).run(until: stop)
                }
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while !done() {
                guard ContinuousClock.now < deadline else {
                    stop.request()
                    throw WaitTimedOut(what: "worker \(index)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            stop.request()
            try await task.value
        }
        // The first worker applies the event and fires the warning (15:30) at 15:45, then goes away.
        try await run(0) { levels() == ["warning"] }
        // An hour later the second one takes the lease: the critical (16:30) came due meanwhile.
        clock.set("2022-05-18T16:45:00+07:00")
        try await run(1) { levels() == ["warning", "critical"] }
        #expect(levels() == ["warning", "critical"], "each once: the standby did not raise the warning again")
        let late = try #require(try reader.allAlerts().first { $0.level == "critical" })
        #expect(late.json.contains("\"lateFired\":true"), "fired after its time, and says so")
        let filed = try alertIDs(inFolder: harness.settings.resolvedAlertsDirectory)
        #expect(filed.count == 2 && Set(filed).count == 2)
    }
}
