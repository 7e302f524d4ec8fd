import Foundation
import SameDayCore
import SameDayFormats
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
        let honest = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: event.dossier)
        #expect(engine.refusal(of: event, envelope: honest, bounds: bounds, now: now) == nil)
        #expect(engine.refusal(of: event, envelope: nil, bounds: bounds, now: now) == nil)
        let ancient = receivedEvent("760-220518-0002", at: "1022-05-18T09:00:00+07:00")
        let tooEarly = try #require(engine.refusal(of: ancient, envelope: nil, bounds: bounds, now: now))
        #expect(tooEarly.code == "implausible_time")
        #expect(tooEarly.description.hasPrefix("field \"occurredAt\""))
        let future = receivedEvent("760-220518-0003", at: "2022-05-19T10:00:01+07:00")
        #expect(engine.refusal(of: future, envelope: nil, bounds: bounds, now: now)?.code == "implausible_time")
        let department = receivedEvent(
            "000.00.15.H29-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "000.00.15.H29")
        let lying = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: department.dossier)
        #expect(
            engine.refusal(of: department, envelope: lying, bounds: bounds, now: now)?.description
                == "routing key \"district.760.received\" does not match the event's block, unit and type (expected \"department.000_00_15_H29.received\")"
        )
        let wrongType = DeliveryEnvelope(routingKey: "district.760.resolved", dossierHeader: event.dossier)
        #expect(
            engine.refusal(of: event, envelope: wrongType, bounds: bounds, now: now)?.code == "routing_key_mismatch")
        let split = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: "760-220518-9999")
        let splitRefusal = try #require(engine.refusal(of: event, envelope: split, bounds: bounds, now: now))
        #expect(splitRefusal.code == "shard_header_mismatch")
        #expect(splitRefusal.description.contains("differs from the body's dossier"))
        let missing = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: nil)
        #expect(
            engine.refusal(of: event, envelope: missing, bounds: bounds, now: now)?.description.contains("missing")
                == true)
    }

    /// The hcmc-2022 registry with Bến Nghé ward (26740) receiving dossiers that District 1 (760) resolves.
    func configuration(interlevel: String) throws -> Configuration {
        func read(_ name: String) throws -> [UInt8] {
            Array(try Data(contentsOf: URL(fileURLWithPath: hcmcConfiguration + "/" + name)))
        }
        return try Configuration.parse(
            ConfigurationFiles(
                units: read("units.csv"), catalog: read("catalog.csv"), calendars: read("calendars.json"),
                alerting: read("alerting.json"), interlevel: Array(interlevel.utf8)))
    }

    @Test("a unit acts only on its own dossiers: Sở Y tế's dossier under District 1's key and header is dead-lettered")
    func foreignDossier() throws {
        let folder = temporaryFolder("ownership")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (engine, _) = try engine(folder)
        let bounds = EventTimeBounds.standard
        // The issue's attack: adapter.motcua-q1 may publish under district.760.*, key and header match the body.
        let attack = receivedEvent("000.00.18.H29-220516-0101", at: "2022-05-18T09:00:00+07:00", unit: "760")
        let envelope = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: attack.dossier)
        let refusal = try #require(engine.refusal(of: attack, envelope: envelope, bounds: bounds, now: now))
        #expect(refusal.code == "foreign_dossier")
        #expect(refusal.description.contains("belongs to unit \"000.00.18.H29\""))
        // A code with no agency prefix cannot be shown to be District 1's.
        let shapeless = receivedEvent("HS-0001", at: "2022-05-18T09:00:00+07:00", unit: "760")
        let shapelessEnvelope = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: "HS-0001")
        #expect(
            engine.refusal(of: shapeless, envelope: shapelessEnvelope, bounds: bounds, now: now)?.code
                == "foreign_dossier")
        // A prefix that only looks like the unit ("7600" is not "760").
        let lookalike = receivedEvent("7600-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "760")
        let lookalikeEnvelope = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: lookalike.dossier)
        #expect(
            engine.refusal(of: lookalike, envelope: lookalikeEnvelope, bounds: bounds, now: now)?.code
                == "foreign_dossier")
    }

    @Test("liên thông: the declared pair passes, in its direction only; a held dossier refuses a third unit")
    func interlevelPairs() throws {
        let folder = temporaryFolder("interlevel")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let paired = try configuration(interlevel: "receiving,resolving\n26740,760\n")
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: paired, store: store, clockMode: .events, clock: StepClock(now))
        _ = try engine.rebuild()
        let bounds = EventTimeBounds.standard
        func envelope(_ e: DossierEvent, block: String) -> DeliveryEnvelope {
            DeliveryEnvelope(routingKey: "\(block).\(e.unit).\(e.type.name)", dossierHeader: e.dossier)
        }
        // The ward receives its dossier; the district resolves it.
        let received = receivedEvent("26740-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "26740")
        #expect(
            engine.refusal(of: received, envelope: envelope(received, block: "commune"), bounds: bounds, now: now)
                == nil)
        try engine.apply(received)
        var resolved = receivedEvent("26740-220518-0001", at: "2022-05-18T09:30:00+07:00", unit: "760")
        resolved.eventId = "resolved-by-district"
        #expect(
            engine.refusal(of: resolved, envelope: envelope(resolved, block: "district"), bounds: bounds, now: now)
                == nil)
        // Not the other way round: the ward may not act on the district's dossiers.
        let reverse = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "26740")
        #expect(
            engine.refusal(of: reverse, envelope: envelope(reverse, block: "commune"), bounds: bounds, now: now)?.code
                == "foreign_dossier")
        // Without the pair, the same district event is refused.
        let (unpaired, _) = try self.engine(folder + "/unpaired")
        #expect(
            unpaired.refusal(of: resolved, envelope: envelope(resolved, block: "district"), bounds: bounds, now: now)?
                .code == "foreign_dossier")
        // The held-unit rule: a dossier held with the ward's events refuses a unit the pair does not name, even one
        // the registry (changed since) would let act on the code.
        let widened = try configuration(interlevel: "receiving,resolving\n26740,760\n26740,761\n")
        #expect(widened.ownershipRefusal(dossier: "26740-220518-0001", unit: widened.unitID("761")!) == nil)
        #expect(
            widened.heldUnitRefusal(
                dossier: "26740-220518-0001", held: [widened.unitID("760")!], unit: widened.unitID("761")!)?.code
                == "unit_changed")
        #expect(
            widened.heldUnitRefusal(
                dossier: "26740-220518-0001", held: [widened.unitID("26740")!, widened.unitID("760")!],
                unit: widened.unitID("760")!) == nil)
    }

    @Test("an event of another unit for a held dossier is refused with unit_changed")
    func heldUnitChanged() throws {
        let folder = temporaryFolder("held-unit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (engine, _) = try engine(folder)
        // A state written before ownership was checked: District 1 holds a dossier with Quận 12's code.
        try engine.apply(receivedEvent("761-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "760"))
        var later = receivedEvent("761-220518-0001", at: "2022-05-18T09:30:00+07:00", unit: "761")
        later.eventId = "q12-event"
        let refusal = try #require(engine.refusal(of: later, envelope: nil, bounds: .standard, now: now))
        #expect(refusal.code == "unit_changed")
        #expect(refusal.description.contains("held with events of unit \"760\""))
    }

    @Test("control characters: refused with the field named; what a dead letter stores reads back")
    func controlCharacters() throws {
        let body =
            #"{"schema":"sameday.dossier-event/1","eventId":"a\u0000b","dossier":"760-220518-0001","unit":"760","procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-18T09:00:00+07:00","channel":"direct","source":"test"}"#
        #expect(throws: EventDecodingError.self) { try DossierEvent.decode(body) }
        do {
            _ = try DossierEvent.decode(body)
        } catch {
            #expect(error.field == "eventId")
            #expect(error.description.contains("control character"))
        }
        for (field, value) in [("dossier", #"760-220518-0001\u001f"#), ("source", #"motcua\u007f"#)] {
            let text = body.replacingOccurrences(of: #"a\u0000b"#, with: "ok").replacingOccurrences(
                of: field == "dossier" ? "760-220518-0001" : "\"test\"",
                with: field == "dossier" ? value : "\"\(value)\"")
            do {
                _ = try DossierEvent.decode(text)
                Issue.record("\(field) with a control character was accepted")
            } catch {
                #expect(error.field == field)
            }
        }
        // A raw DEL byte, not escaped.
        let raw = body.replacingOccurrences(of: #"a\u0000b"#, with: "a\u{7F}b")
        #expect(throws: EventDecodingError.self) { try DossierEvent.decode(raw) }
        // The message id and the dossier header are the broker's, not the body's: refused by admission.
        let event = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00")
        let configuration = self.configuration
        let nulID = DeliveryEnvelope(
            routingKey: "district.760.received", dossierHeader: event.dossier, messageID: "id\u{0}tail")
        #expect(configuration.admissionRefusal(of: event, envelope: nulID)?.code == "control_character")
        let nulHeader = DeliveryEnvelope(routingKey: "district.760.received", dossierHeader: "760-220518-0001\u{0}")
        #expect(configuration.admissionRefusal(of: event, envelope: nulHeader)?.description.contains("header") == true)
        // A dead letter stores escaped text: a NUL no longer cuts what reads back.
        let folder = temporaryFolder("dead-letter-text")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        var batch = CommitBatch()
        batch.deadLetters = [
            DeadLetter(
                messageID: "id\u{0}tail", routingKey: "district.760\u{1}.received", queue: "q",
                reason: "reason\u{0}more", refusal: "control_character", body: Array("x\u{0}y".utf8))
        ]
        try store.commit(batch)
        let stored = try #require(try store.pendingDeadLetters(limit: 10).first)
        #expect(stored.messageID == "id\\u{0}tail")
        #expect(stored.routingKey == "district.760\\u{1}.received")
        #expect(stored.reason == "reason\\u{0}more")
        #expect(stored.refusal == "control_character")
        #expect(stored.body == Array("x\u{0}y".utf8))
    }

    @Test("an old export sent again: an event older than the tombstone window for a dossier not held is refused")
    func tooOld() throws {
        let folder = temporaryFolder("too-old")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (engine, _) = try engine(folder)
        let bounds = EventTimeBounds(
            earliest: EventTimeBounds.standard.earliest, maxAheadSeconds: 366 * 86_400, rescheduleWithinSeconds: 86_400)
        let open = receivedEvent("760-220301-0001", at: "2022-03-01T09:00:00+07:00")
        try engine.apply(open)
        // The clock moves on 70 days (events clock): past the 62-day window.
        try engine.apply(receivedEvent("760-220510-0001", at: "2022-05-10T09:00:00+07:00"))
        let old = receivedEvent("760-220302-0001", at: "2022-03-02T09:00:00+07:00")
        let refusal = try #require(engine.refusal(of: old, envelope: nil, bounds: bounds, now: now))
        #expect(refusal.code == "too_old")
        // The same age for a dossier still held is a late correction to live work: accepted.
        var correction = receivedEvent("760-220301-0001", at: "2022-03-01T09:05:00+07:00")
        correction.eventId = "correction"
        #expect(engine.refusal(of: correction, envelope: nil, bounds: bounds, now: now) == nil)
    }

    @Test(
        "a unit holds at most maxDossiersPerUnit dossiers; its held ones still take events; a restart counts the same")
    func unitQuota() throws {
        let folder = temporaryFolder("quota")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (engine, _) = try engine(folder)
        engine.maxDossiersPerUnit = 2
        try engine.apply(receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00"))
        try engine.apply(receivedEvent("760-220518-0002", at: "2022-05-18T09:01:00+07:00"))
        let third = receivedEvent("760-220518-0003", at: "2022-05-18T09:02:00+07:00")
        #expect(engine.refusal(of: third, envelope: nil, bounds: .standard, now: now)?.code == "unit_full")
        var more = receivedEvent("760-220518-0002", at: "2022-05-18T09:03:00+07:00")
        more.eventId = "another event of a held dossier"
        #expect(engine.refusal(of: more, envelope: nil, bounds: .standard, now: now) == nil)
        // Another unit is not affected.
        let other = receivedEvent("761-220518-0001", at: "2022-05-18T09:02:00+07:00", unit: "761")
        #expect(engine.refusal(of: other, envelope: nil, bounds: .standard, now: now) == nil)
        #expect(engine.fullestUnit()?.ratio == 1.0)
        // After a restart the count is rebuilt from the stored rows.
        try engine.commit()
        let (restarted, _) = try self.engine(folder)
        restarted.maxDossiersPerUnit = 2
        #expect(restarted.refusal(of: third, envelope: nil, bounds: .standard, now: now)?.code == "unit_full")
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
