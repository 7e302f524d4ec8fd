import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayTestKit
import Testing

import class GRDB.DatabaseQueue

@testable import SameDayWorker

/// A delivery as the consumer hands it over, made from the message a publisher would send.
func delivery(_ event: DossierEvent, tag: UInt64, configuration: Configuration) -> Delivery {
    let message = EventMessage.make(event, configuration: configuration, names: SameDayProducerNames())
    return Delivery(
        tag: DeliveryTag(value: tag, channelEpoch: 1), body: message.body, messageID: message.messageID,
        exchange: message.exchange, routingKey: message.routingKey,
        headers: FieldTable(message.headers.map { ($0.key, FieldValue.string($0.value)) }))
}

@Suite("Worker state bounded by open work: retirement, incremental rollups, restart from dossier rows")
struct BoundedStateTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    func settings(_ folder: String, batchSize: Int = 1000, eventLogDays: Int = 5) -> WorkerConfiguration {
        var settings = WorkerConfiguration()
        settings.stateDirectory = folder
        settings.clock = .events
        settings.metricsListen = ""
        settings.sourceSilence = false
        settings.retainClosedDays = 3
        settings.eventLogDays = eventLogDays
        settings.batchSize = batchSize
        return settings
    }

    /// Days of events from 2022-05-16, one dossier per unit and day (each dossier's whole life).
    func stream(days: Int, seed: UInt64) -> [DossierEvent] {
        SyntheticMonth(
            firstDay: LocalDate(year: 2022, month: 5, day: 16)!, days: days, dossiersPerUnitPerDay: 1, seed: seed
        ).events(config: configuration)
    }

    func open(
        _ folder: String, _ metrics: WorkerMetrics = WorkerMetrics(), batchSize: Int = 1000, eventLogDays: Int = 5
    ) throws -> ShardLoop {
        try ShardLoop(
            configuration: settings(folder, batchSize: batchSize, eventLogDays: eventLogDays), domain: configuration,
            clock: SystemClock(),
            metrics: metrics,
            logger: Logger(label: "test"), queue: "sameday.work.0")
    }

    /// Two batch sizes: a batch spanning several days once let the window move past a day before that batch's
    /// changes reached it.
    @Test(
        "closed dossiers are retired after the window; rollups of every day equal replay; an old event for a retired dossier is dead-lettered; a restart needs no event log",
        arguments: [300, 1000])
    func retirement(batchSize: Int) throws {
        let folder = temporaryFolder("bounded")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = stream(days: 20, seed: 31)
        let dossiers = Set(events.map(\.dossier)).count
        let metrics = WorkerMetrics()
        // Tombstones live 40 days: the stream's last weeks are sparse (late resolutions), and the dossier sent again
        // below must still be remembered as retired when the stream ends.
        var loop = try open(folder, metrics, batchSize: batchSize, eventLogDays: 40)
        for (index, event) in events.enumerated() {
            loop.handle(delivery(event, tag: UInt64(index + 1), configuration: configuration))
            try loop.step(consumer: nil, idle: false)
        }
        _ = try loop.snapshotNow()
        let held = loop.engine.dossierCount
        #expect(
            held > 0 && held < dossiers / 2,
            "\(held) of \(dossiers) dossiers still held after 20 days with a 3-day window")
        #expect(try loop.store.tombstoneCount() > 0)
        #expect(metrics.value(.deadLettersTotal) == 0)

        let clock = try #require(try loop.store.clock())
        let replayFolder = folder + "/replay"
        let replay = try replayReference(events, configuration: configuration, until: clock, root: replayFolder)
        let ours = try filesUnder(folder + "/rollups")
        let reference = try filesUnder(replayFolder)
        #expect(
            ours.keys.sorted() == reference.keys.sorted(),
            "only ours: \(Set(ours.keys).subtracting(reference.keys).sorted()), only replay: \(Set(reference.keys).subtracting(ours.keys).sorted())"
        )
        for key in ours.keys.sorted() where key.hasSuffix("blocks.csv") && ours[key] != reference[key] {
            print(
                "DIFF \(key)\nOURS\n\(String(decoding: ours[key]!, as: UTF8.self))\nREPLAY\n\(String(decoding: reference[key] ?? Data(), as: UTF8.self))"
            )
            break
        }
        #expect(
            ours == reference,
            "incremental rollups differ from replay on \(ours.filter { reference[$0.key] != $0.value }.keys.sorted().prefix(5))"
        )
        // Delivered alerts leave the outbox after eventLogDays; the files keep them all.
        let outbox = try Set(alertIDs(inFolder: folder + "/alerts"))
        let expected = Set(replay.alerts.map(\.alertId))
        #expect(
            outbox == expected,
            "\(outbox.subtracting(expected).count) extra, \(expected.subtracting(outbox).count) missing")

        // An event sent again for a dossier retired long ago: refused with the reason, never re-opened.
        let tombstone = try #require(try loop.store.lastTombstone())
        var resent = try #require(events.last { $0.dossier == tombstone })
        resent.eventId += "-again"
        loop.handle(delivery(resent, tag: UInt64(events.count + 1), configuration: configuration))
        _ = try loop.snapshotNow()
        let letters = try loop.store.pendingDeadLetters()
        #expect(letters.count == 1 && letters[0].reason.contains("dossier retired"), "\(letters.map(\.reason))")
        #expect(loop.engine.dossierCount <= held)
        let stillHeld = loop.engine.dossierCount

        // A restart loads the dossier rows: the audit log is not needed.
        loop.close()
        try WorkerStore(path: settings(folder).databasePath).execute(sql: "DELETE FROM event_log")
        loop = try open(folder, batchSize: batchSize, eventLogDays: 40)
        #expect(loop.restartSummary.events == 0 && loop.restartSummary.dossiers == stillHeld)
        _ = try loop.snapshotNow()
        // The tombstones are read back: the same dossier's event sent once more is refused after the restart too.
        resent.eventId += "-after-restart"
        loop.handle(delivery(resent, tag: UInt64(events.count + 2), configuration: configuration))
        _ = try loop.snapshotNow()
        let refusedAfterRestart = try loop.store.pendingDeadLetters().filter { $0.reason.contains("dossier retired") }
        #expect(refusedAfterRestart.count == 2, "\(refusedAfterRestart.map(\.reason))")
        #expect(loop.engine.dossierCount <= stillHeld)
        let restarted = try filesUnder(folder + "/rollups")
        #expect(
            restarted == reference,
            "a restart changed \(restarted.filter { reference[$0.key] != $0.value }.keys.sorted())")
        loop.close()
    }

    @Test(
        "a v5 folder's code-keyed dossier rows migrate to keyed rows mid-stream: one row per dossier, rollups equal replay"
    )
    func migratesDossierRowsToKeys() throws {
        let folder = temporaryFolder("v5-dossier-keys")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = stream(days: 8, seed: 7)
        let half = events.count / 2
        var loop = try open(folder, batchSize: 300)
        for (index, event) in events.prefix(half).enumerated() {
            loop.handle(delivery(event, tag: UInt64(index + 1), configuration: configuration))
            try loop.step(consumer: nil, idle: false)
        }
        _ = try loop.snapshotNow()
        let heldBefore = loop.engine.dossierCount
        loop.close()

        // Put the table back as v5 wrote it: keyed by code, the rows as they were.
        let path = settings(folder).databasePath
        try WorkerStore(path: path).execute(
            sql: """
                CREATE TABLE dossier_v5 (code TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;
                INSERT INTO dossier_v5 (code, state) SELECT code, state FROM dossier;
                DROP TABLE dossier;
                ALTER TABLE dossier_v5 RENAME TO dossier;
                DELETE FROM grdb_migrations WHERE identifier LIKE 'v6%';
                """)

        loop = try open(folder, batchSize: 300)
        #expect(loop.restartSummary.dossiers == heldBefore && loop.restartSummary.quarantined == 0)
        for (index, event) in events.dropFirst(half).enumerated() {
            loop.handle(delivery(event, tag: UInt64(half + index + 1), configuration: configuration))
            try loop.step(consumer: nil, idle: false)
        }
        _ = try loop.snapshotNow()
        let held = loop.engine.dossierCount
        let clock = try #require(try loop.store.clock())
        loop.close()

        // Dossiers loaded from the migrated rows were updated in place, new ones appended: one row each.
        let store = try WorkerStore(path: path)
        #expect(try store.dossierCount() == held)
        var codes: [String] = []
        var keys: Set<Int64> = []
        try store.forEachDossier { key, code, _ in
            codes.append(code)
            keys.insert(key)
        }
        #expect(Set(codes).count == codes.count && keys.count == codes.count && !keys.contains(0))
        let replayFolder = folder + "/replay"
        _ = try replayReference(events, configuration: configuration, until: clock, root: replayFolder)
        #expect(try filesUnder(folder + "/rollups") == filesUnder(replayFolder))
    }

    @Test("two stored rows naming one dossier: the first is loaded, the second set aside with the reason")
    func secondRowForADossierIsQuarantined() throws {
        let folder = temporaryFolder("dossier-twice")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        _ = try engine.rebuild()
        let event = try DossierEvent.decode(
            """
            {"schema":"sameday.dossier-event/1","eventId":"e1","dossier":"760-220518-1","unit":"760",\
            "procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-18T09:00:00+07:00",\
            "channel":"direct","source":"test"}
            """)
        _ = try engine.apply(event)
        try engine.commit()
        try store.execute(sql: "INSERT INTO dossier (id, code, state) SELECT id + 100, code, state FROM dossier")

        let restarted = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        let summary = try restarted.rebuild()
        #expect(summary.dossiers == 1 && summary.quarantined == 1)
        #expect(try store.dossierCount() == 1 && store.quarantinedDossierCount() == 1)
    }

    @Test("a running dossier leaves the retirement queue once looked at, and its next event queues it again")
    func runningDossiersLeaveTheRetirementQueue() throws {
        let folder = temporaryFolder("retire-queue")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let start = RFC3339.parse("2022-05-18T09:00:00+07:00")!
        let engine = WorkerEngine(
            configuration: configuration, store: store, clockMode: .events, clock: StepClock(start),
            retention: Retention(closedDays: 3, eventLogDays: 3))
        _ = try engine.rebuild()
        // 300 dossiers still running, 5 resolved: all queued at their last event plus the window.
        for n in 0..<300 {
            _ = try engine.apply(sameDayEvent("760-220518-\(1000 + n)", "received", "2022-05-18T09:00:00+07:00"))
        }
        for n in 0..<5 {
            _ = try engine.apply(sameDayEvent("760-220518-\(2000 + n)", "received", "2022-05-18T09:10:00+07:00"))
            _ = try engine.apply(sameDayEvent("760-220518-\(2000 + n)", "resolved", "2022-05-18T10:00:00+07:00"))
        }
        try engine.commit()
        #expect(engine.retirementQueue.count == 305)
        engine.advance(to: start + 4 * LocalTime.secondsPerDay)
        engine.retireDue(limit: 10_000)
        try engine.commit()
        // The resolved ones left; the running ones were looked at once and are no longer queued (only an event can
        // close them), so a catch-up never re-examines every open dossier every day.
        #expect(engine.dossierCount == 300)
        #expect(engine.retirementQueue.count == 0)
        _ = try engine.apply(sameDayEvent("760-220518-1000", "resolved", "2022-05-22T10:00:00+07:00"))
        try engine.commit()
        #expect(engine.retirementQueue.count == 1)
        engine.advance(to: start + 9 * LocalTime.secondsPerDay)
        engine.retireDue(limit: 10_000)
        try engine.commit()
        #expect(engine.dossierCount == 299)
    }

    /// A backlog on the events clock moves days in seconds of wall time; pruning only every 10 s of wall time let
    /// the log hold the window plus the backlog.
    @Test("on the events clock, a backlog of 20 days is pruned as its days pass, not once per 10 s of wall time")
    func pruningFollowsTheEventsClock() throws {
        let folder = temporaryFolder("prune-clock")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = stream(days: 20, seed: 7)
        let loop = try open(folder)
        defer { loop.close() }
        for (index, event) in events.enumerated() {
            loop.handle(delivery(event, tag: UInt64(index + 1), configuration: configuration))
            try loop.step(consumer: nil, idle: false)
        }
        _ = try loop.snapshotNow()
        let clock = try #require(try loop.store.clock())
        // Left: the window (5 days), at most a day more before the next prune, and what the last prunes could not
        // remove (never past the rows saved last, every few seconds of wall time, while the feed takes about one;
        // never the log's newest row). Pruned on wall time alone, nearly all of it stays. Slices run between
        // commits, so wait for the last of them.
        let horizon = clock - 6 * 86_400
        let reader = try DatabaseQueue(path: settings(folder).databasePath)
        let deadline = ContinuousClock.now + .seconds(20)
        var stale = Int.max
        while ContinuousClock.now < deadline {
            stale =
                try reader.read { db in
                    try Int.fetchOne(
                        db, sql: "SELECT count(*) FROM event_log WHERE applied_at < ?", arguments: [horizon])
                } ?? 0
            if stale * 10 < events.count { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(
            stale * 10 < events.count,
            "\(stale) of \(events.count) events logged more than 6 days before the clock (window 5 days)")
        #expect(loop.committer.prunedRows > 0)
    }

    @Test("retention work is pruned in slices: the audit log, tombstones and delivered alerts older than their windows")
    func pruning() throws {
        let folder = temporaryFolder("prune")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        var batch = CommitBatch()
        for k in 0..<5000 {
            batch.events.append(("e\(k)", "d\(k)", Int64(k), Array("{}".utf8)))
        }
        batch.retired = (0..<10).map { (0, "d\($0)", Int64($0), nil) }
        // Retired abandoned dossiers keep counting per unit and field (Biểu 06's rows).
        batch.retired.append((0, "a1", 1, RetiredStockKey(unit: "760", field: "Hộ tịch")))
        batch.retired.append((0, "a2", 2, RetiredStockKey(unit: "760", field: "Hộ tịch")))
        batch.retired.append((0, "a3", 3, RetiredStockKey(unit: "760", field: "Chứng thực")))
        try store.commit(batch)
        #expect(
            try store.retiredStock() == [
                RetiredStockKey(unit: "760", field: "Hộ tịch"): 2, RetiredStockKey(unit: "760", field: "Chứng thực"): 1,
            ])
        let first = try store.prune(eventsBefore: 4500, tombstonesBefore: 5, alertsBeforeDay: "2022-01-01", limit: 2000)
        #expect(first.events == 2000 && first.tombstones == 8, "d0…d4 and a1…a3")
        let second = try store.prune(
            eventsBefore: 4500, tombstonesBefore: 5, alertsBeforeDay: "2022-01-01", limit: 2000)
        #expect(second.events == 2000)
        let third = try store.prune(eventsBefore: 4500, tombstonesBefore: 5, alertsBeforeDay: "2022-01-01", limit: 2000)
        #expect(third.events == 500)
        #expect(try store.eventCount() == 500 && store.tombstoneCount() == 5)
    }

    @Test("a restart reads the tombstones and retired stock on a second connection, while the first reads the rows")
    func retiredStateReadBesideTheRows() throws {
        let folder = temporaryFolder("side-reader")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        var batch = CommitBatch()
        batch.retired = (0..<3).map { (0, "d\($0)", Int64(100 + $0), nil) }
        batch.retired.append((0, "a1", 200, RetiredStockKey(unit: "760", field: "Hộ tịch")))
        try store.commit(batch)
        let side = try #require(try store.sideReader())
        // Inside a read of the store's own connection (a GRDB queue is not re-entrant: the same reads on it here
        // would trap), the side connection answers, with the same committed state.
        var beside: [UInt64] = []
        var own: [UInt64] = []
        var stock: [RetiredStockKey: Int] = [:]
        try store.tombstones(since: 101) { hash, _ in
            own.append(hash)
            if own.count == 1 {
                try? side.tombstones(since: 101) { hash, _ in beside.append(hash) }
                stock = (try? side.retiredStock()) ?? [:]
            }
        }
        #expect(own.count == 3 && beside == own)
        #expect(stock == [RetiredStockKey(unit: "760", field: "Hộ tịch"): 1])

        // A restart takes both from it: the window's tombstones refuse their dossiers, the stock is handed on.
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        let summary = try engine.rebuild()
        #expect(summary.retiredStock == stock)
        #expect(engine.tombstoneCount == 4)
    }
}

@Suite("The consume loop's batching decisions, on a manual clock")
struct BatchingStateMachineTests {
    typealias Machine = BatchingStateMachine<ManualClock.Instant>
    let settings = Machine.Settings(
        batchSize: 3, batchDelay: .milliseconds(200), snapshotInterval: .seconds(60), pollInterval: .milliseconds(250))

    @Test("a full batch commits at once; a partial one when its first delivery has waited the batch delay")
    func batches() {
        let clock = ManualClock()
        var machine = Machine(settings: settings)
        #expect(machine.next(now: clock.now, otherChanges: false) == .wait(.milliseconds(250)))
        machine.delivered(at: clock.now)
        #expect(machine.next(now: clock.now, otherChanges: false) == .wait(.milliseconds(200)))
        clock.advance(by: .milliseconds(150))
        machine.delivered(at: clock.now)
        #expect(machine.next(now: clock.now, otherChanges: false) == .wait(.milliseconds(50)))
        machine.delivered(at: clock.now)
        #expect(machine.next(now: clock.now, otherChanges: false) == .commit)
        machine.committed()
        machine.delivered(at: clock.now)
        clock.advance(by: .milliseconds(200))
        #expect(machine.next(now: clock.now, otherChanges: false) == .commit)
    }

    @Test("with nothing pending, alerts fired by the clock commit at once; the wait never outlasts the next timer")
    func idle() {
        let clock = ManualClock()
        let machine = Machine(settings: settings)
        #expect(machine.next(now: clock.now, otherChanges: true) == .commit)
        #expect(
            machine.next(now: clock.now, otherChanges: false, nextTimer: .milliseconds(40)) == .wait(.milliseconds(40)))
        #expect(machine.next(now: clock.now, otherChanges: false, nextTimer: .seconds(-3)) == .wait(.zero))
    }

    @Test("snapshots come at once, then every interval, and when the day changes (not more than every few seconds)")
    func snapshots() {
        let clock = ManualClock()
        var machine = Machine(settings: settings)
        #expect(machine.snapshotDue(now: clock.now, day: 100))
        machine.snapshotted(now: clock.now, day: 100)
        clock.advance(by: .seconds(2))
        #expect(!machine.snapshotDue(now: clock.now, day: 100))
        #expect(!machine.snapshotDue(now: clock.now, day: 101), "a day change waits for the gap")
        clock.advance(by: .seconds(3))
        #expect(machine.snapshotDue(now: clock.now, day: 101))
        machine.snapshotted(now: clock.now, day: 101)
        clock.advance(by: .seconds(59))
        #expect(!machine.snapshotDue(now: clock.now, day: 101))
        clock.advance(by: .seconds(1))
        #expect(machine.snapshotDue(now: clock.now, day: 101))
    }
}

@Suite("The consumer keeps its heartbeats through large snapshots (needs broker)", .needs(.rabbitMQ))
struct HeartbeatTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test("a 2 s heartbeat, two months of events with a snapshot every second, zero consumer reconnects")
    func noReconnects() async throws {
        var harness = try WorkerHarness("heartbeat")
        defer { harness.cleanUp() }
        harness.settings.heartbeatSeconds = 2
        harness.settings.snapshotSeconds = 1
        let events = SyntheticMonth(
            firstDay: LocalDate(year: 2022, month: 4, day: 1)!, days: 62, dossiersPerUnitPerDay: 1, seed: 5
        ).events(config: configuration)
        let distinct = Set(events.map { "\($0.dossier)|\($0.eventId)" }).count
        try harness.publish(events, configuration: configuration)
        let metrics = WorkerMetrics()
        let stop = StopFlag()
        let settings = harness.settings
        let configuration = configuration
        async let run: Void = BlockingThread.run(name: "heartbeat worker") {
            try WorkerService(configuration: settings, domain: configuration, metrics: metrics).run(until: stop)
        }
        let deadline = ContinuousClock.now + .seconds(240)
        while Int(metrics.value(.eventsTotal)) < distinct && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        // Idle a few heartbeats with the snapshots going on.
        try await Task.sleep(for: .seconds(6))
        stop.request()
        try await run
        #expect(Int(metrics.value(.eventsTotal)) == distinct)
        #expect(metrics.value(.consumerReconnectsTotal) == 0)
        #expect(metrics.value(.consumerErrorsTotal) == 0)
        #expect(try filesUnder(settings.resolvedRollupsDirectory).count >= 62 * 4)
    }
}
