import Foundation
import SameDayCore
import SameDayStore
import SameDayWorker
import Synchronization
import Testing

/// The worker against hostile input and hostile clocks, without a broker (issue "Hostile input").
@Suite("Worker hardening: refusals, per-dossier event ids, quarantine, clock jumps")
struct WorkerHardeningTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)
    let now = RFC3339.parse("2022-05-18T10:00:00+07:00")!

    func engine(_ folder: String, clock: Instant? = nil) throws -> (WorkerEngine, WorkerStore) {
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(
            configuration: configuration, store: store, clockMode: .events, clock: StepClock(clock ?? now))
        _ = try engine.rebuild()
        return (engine, store)
    }

    @Test("refusals name the reason: time window, routing key, dossier header")
    func refusals() throws {
        let folder = temporaryFolder("refusals")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (engine, _) = try engine(folder)
        let bounds = EventTimeBounds.standard
        let event = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00")
        let honest = WorkerEngine.Envelope(routingKey: "district.760.received", dossierHeader: event.dossier)
        #expect(engine.refusal(of: event, envelope: honest, bounds: bounds, now: now) == nil)
        #expect(engine.refusal(of: event, envelope: nil, bounds: bounds, now: now) == nil)
        let ancient = receivedEvent("760-220518-0002", at: "1022-05-18T09:00:00+07:00")
        #expect(
            engine.refusal(of: ancient, envelope: nil, bounds: bounds, now: now)?.hasPrefix("field \"occurredAt\"")
                == true)
        let future = receivedEvent("760-220518-0003", at: "2022-05-19T10:00:01+07:00")
        #expect(engine.refusal(of: future, envelope: nil, bounds: bounds, now: now) != nil)
        let department = receivedEvent(
            "000.00.15.H29-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "000.00.15.H29")
        let lying = WorkerEngine.Envelope(routingKey: "district.760.received", dossierHeader: department.dossier)
        #expect(
            engine.refusal(of: department, envelope: lying, bounds: bounds, now: now)
                == "routing key \"district.760.received\" does not match the event's block, unit and type (expected \"department.000_00_15_H29.received\")"
        )
        let wrongType = WorkerEngine.Envelope(routingKey: "district.760.resolved", dossierHeader: event.dossier)
        #expect(engine.refusal(of: event, envelope: wrongType, bounds: bounds, now: now) != nil)
        let split = WorkerEngine.Envelope(routingKey: "district.760.received", dossierHeader: "760-220518-9999")
        #expect(
            engine.refusal(of: event, envelope: split, bounds: bounds, now: now)?.contains(
                "differs from the body's dossier") == true)
        let missing = WorkerEngine.Envelope(routingKey: "district.760.received", dossierHeader: nil)
        #expect(engine.refusal(of: event, envelope: missing, bounds: bounds, now: now)?.contains("missing") == true)
    }

    @Test("the same event id on two dossiers: both applied, both still there after a restart")
    func eventIdsArePerDossier() throws {
        let folder = temporaryFolder("event-ids")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func event(_ dossier: String) -> DossierEvent {
            var e = receivedEvent(dossier, at: "2022-05-18T09:00:00+07:00")
            e.eventId = "shared-id-1"
            return e
        }
        do {
            let (engine, store) = try engine(folder)
            #expect(try engine.apply(event("760-220518-0001")))
            #expect(try engine.apply(event("760-220518-0002")))
            #expect(try !engine.apply(event("760-220518-0002")), "a repeat within one dossier is a duplicate")
            try engine.commit()
            #expect(try store.eventCount() == 2)
        }
        let (restarted, store) = try engine(folder)
        #expect(try store.eventCount() == 2)
        #expect(restarted.dossierCount == 2)
        #expect(restarted.facts().count == 2)
    }

    @Test("a stored row that no longer reads back is quarantined at restart, and the restart goes on")
    func quarantine() throws {
        let folder = temporaryFolder("quarantine")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let (engine, store) = try engine(folder)
            try engine.apply(receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00"))
            try engine.apply(receivedEvent("760-220518-0002", at: "2022-05-18T09:05:00+07:00"))
            try engine.commit()
            // A damaged row: its compact state is cut short.
            try store.execute(sql: "UPDATE dossier SET state = substr(state, 1, 9) WHERE code = '760-220518-0002'")
        }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events, clock: StepClock(now))
        let summary = try engine.rebuild()
        #expect(summary.quarantined == 1)
        #expect(summary.dossiers == 1)
        #expect(try store.dossierCount() == 1)
        #expect(try store.quarantinedDossierCount() == 1)
        // And the next restart is clean.
        let again = try WorkerEngine(
            configuration: configuration, store: store, clockMode: .events, clock: StepClock(now)
        ).rebuild()
        #expect(again.quarantined == 0 && again.dossiers == 1)
    }

    @Test(
        "an older state folder's log is turned into dossier rows once; an event in it that does not read back is quarantined"
    )
    func migratesLogWithQuarantine() throws {
        let folder = temporaryFolder("log-quarantine")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let store = try WorkerStore(path: folder + "/state.sqlite")
            let good = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00").encoded()
            // What an older version could write: a timestamp that does not parse.
            let bad = receivedEvent("760-220518-0002", at: "2022-05-18T09:05:00+07:00").encoded()
                .replacingOccurrences(of: "2022-05-18T09:05:00+07:00", with: "000/-05-18T09:05:00+07:00")
            for (id, dossier, json) in [("a", "760-220518-0001", good), ("b", "760-220518-0002", bad)] {
                try store.execute(
                    sql:
                        "INSERT INTO event_log (dossier, event_id, applied_at, body) VALUES ('\(dossier)', '\(id)', 0, CAST('\(json)' AS BLOB))"
                )
            }
            try store.execute(sql: "INSERT INTO worker_state (key, value) VALUES ('dossiers_from_log', 1)")
        }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let summary = try WorkerEngine(
            configuration: configuration, store: store, clockMode: .events, clock: StepClock(now)
        ).rebuild()
        #expect(summary.events == 1 && summary.quarantined == 1 && summary.dossiers == 1)
        #expect(try store.quarantinedEventCount() == 1)
        #expect(try !store.needsDossierRebuild())
        let again = try WorkerEngine(
            configuration: configuration, store: store, clockMode: .events, clock: StepClock(now)
        ).rebuild()
        #expect(again.events == 0 && again.quarantined == 0 && again.dossiers == 1)
    }

    @Test("a state folder written before event ids were per dossier migrates on first start")
    func migratesVersionOne() throws {
        let folder = temporaryFolder("v1")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let v1 = """
            CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
            INSERT INTO grdb_migrations VALUES ('v1');
            CREATE TABLE event (arrival INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, dossier TEXT NOT NULL,
                applied_at INTEGER NOT NULL, json TEXT NOT NULL);
            CREATE TABLE dossier (code TEXT PRIMARY KEY, unit TEXT NOT NULL, open INTEGER NOT NULL, timer_at INTEGER) WITHOUT ROWID;
            CREATE TABLE alert (seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL UNIQUE, level TEXT NOT NULL,
                routing_key TEXT NOT NULL, day TEXT NOT NULL, json TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0,
                filed INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE worker_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO event (event_id, dossier, applied_at, json) VALUES ('760-220518-0001-received', '760-220518-0001', \(now), '\(receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00").encoded())');
            """
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [path, v1]
        try sqlite.run()
        sqlite.waitUntilExit()
        #expect(sqlite.terminationStatus == 0)
        let (engine, store) = try engine(folder)
        #expect(try store.eventCount() == 1)
        var again = receivedEvent("760-220518-0002", at: "2022-05-18T09:00:00+07:00")
        again.eventId = "760-220518-0001-received"
        #expect(try engine.apply(again), "the same id on another dossier is applied after the migration")
        try engine.commit()
        #expect(try store.eventCount() == 2)
    }

    @Test("a v4 folder's tombstone index gains the hash, so a restart reads tombstones from the index alone")
    func migratesTombstoneIndex() throws {
        let folder = temporaryFolder("v4-tombstones")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        _ = try WorkerStore(path: path)
        func sqlite3(_ sql: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            process.arguments = [path, sql]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        // Put the folder back as v4 left it: the index on the time alone.
        _ = try sqlite3(
            """
            DROP INDEX retired_by_time; CREATE INDEX retired_by_time ON retired(retired_at);
            DELETE FROM grdb_migrations WHERE identifier LIKE 'v5%';
            """)
        let plan = "EXPLAIN QUERY PLAN SELECT hash, retired_at FROM retired WHERE retired_at >= 0 ORDER BY retired_at"
        #expect(!(try sqlite3(plan)).contains("COVERING INDEX"))
        _ = try WorkerStore(path: path)
        #expect(try sqlite3(plan).contains("COVERING INDEX retired_by_time"))
    }

    @Test("a v3 folder's retired stock per unit migrates to per unit and field, under the unlisted row")
    func migratesRetiredStockPerField() throws {
        let folder = temporaryFolder("v3-stock")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        _ = try WorkerStore(path: path)
        // Put the folder back as v3 wrote it: one count per unit, no field.
        let v3 = """
            DROP TABLE retired_stock;
            CREATE TABLE retired_stock (unit TEXT PRIMARY KEY, dossiers INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO retired_stock VALUES ('760', 4);
            DELETE FROM grdb_migrations WHERE identifier LIKE 'v4%';
            """
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [path, v3]
        try sqlite.run()
        sqlite.waitUntilExit()
        #expect(sqlite.terminationStatus == 0)
        let store = try WorkerStore(path: path)
        #expect(try store.retiredStock() == [RetiredStockKey(unit: "760", field: ""): 4])
        let configuration = try ConfigurationFolder.load(hcmcConfiguration)
        #expect(configuration.fields[Int(configuration.fieldID(named: ""))] == Configuration.unlistedField)
    }

    @Test("the wall clock is followed while it agrees with elapsed time; a jump is refused and reported")
    func clockJumps() {
        final class Source: WorkerClock, @unchecked Sendable {
            var wall: Instant
            init(_ wall: Instant) { self.wall = wall }
            func now() -> Instant { wall }
        }
        let wall = Source(now)
        let monotonic = Mutex(ContinuousClock.now)
        let refusals = Mutex(0)
        let clock = GuardedWallClock(
            base: wall, maxJumpSeconds: 600, monotonic: { monotonic.withLock { $0 } },
            onRefusal: { _, _ in refusals.withLock { $0 += 1 } })
        func elapse(_ seconds: Int64) { monotonic.withLock { $0 += .seconds(seconds) } }
        #expect(clock.now() == now)
        elapse(60)
        wall.wall = now + 65  // NTP slews a little: adopted
        #expect(clock.now() == now + 65)
        elapse(60)
        wall.wall = now + 10 * 86_400  // jumps ten days ahead: refused, time goes on from the last agreed reading
        #expect(clock.now() == now + 125)
        #expect(refusals.withLock { $0 } == 1)
        elapse(30)
        #expect(clock.now() == now + 155)
        wall.wall = now + 160  // back in line: followed again
        #expect(clock.now() == now + 160)
        #expect(refusals.withLock { $0 } == 2)
    }

    @Test("metrics port follows the shard with +shard; new keys are validated")
    func workerConfiguration() throws {
        var settings = WorkerConfiguration()
        settings.shard = 3
        settings.shards = 4
        #expect(settings.resolvedMetricsListen == "127.0.0.1:9467")
        settings.metricsListen = "0.0.0.0:9100"
        #expect(settings.resolvedMetricsListen == "0.0.0.0:9100")
        let folder = temporaryFolder("worker-json")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/worker.json"
        try Data(#"{"eventsFrom": "yesterday"}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { try WorkerConfiguration.load(path: path, environment: [:]) }
        try Data(#"{"shard": 2, "shards": 4, "metricsListen": "127.0.0.1:9464+shard"}"#.utf8).write(
            to: URL(fileURLWithPath: path))
        #expect(try WorkerConfiguration.load(path: path, environment: [:]).resolvedMetricsListen == "127.0.0.1:9466")
    }
}
