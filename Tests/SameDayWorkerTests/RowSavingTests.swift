import Foundation
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayWorker
import Testing

@Suite("Dossier rows saved every few seconds; a restart replays the log's tail")
struct RowSavingTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    /// Three working days of synthetic events for every unit of the city.
    var events: [DossierEvent] {
        SyntheticMonth(firstDay: LocalDate("2022-05-16")!, days: 3, dossiersPerUnitPerDay: 2, seed: 5)
            .events(config: configuration)
    }

    /// Feeds events as the consume loop does: a commit every `batch` events, each written as prepared (no save
    /// forced, as `ShardLoop` does), then stops without the graceful stop's save: what a SIGKILL leaves.
    func feed(_ events: [DossierEvent], into engine: WorkerEngine, store: WorkerStore, batch: Int) throws {
        for (index, event) in events.enumerated() {
            _ = try engine.apply(event)
            if index % batch == batch - 1 { try engine.commitPrepared() }
        }
        try engine.commitPrepared()
    }

    func records(_ engine: WorkerEngine) -> [String: [UInt8]] {
        Dictionary(
            uniqueKeysWithValues: engine.heldDossiers().map {
                ($0.code, DossierRecord.encode($0, config: configuration))
            })
    }

    func stored(_ store: WorkerStore) throws -> [String: [UInt8]] {
        var rows: [String: [UInt8]] = [:]
        try store.forEachDossier { _, code, state in rows[code] = state }
        return rows
    }

    @Test("killed between saves, a worker comes back with the dossiers and alerts of one that saved every commit")
    func tailReplayMatchesSavingEveryCommit() throws {
        let folder = temporaryFolder("row-saving")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let events = events
        #expect(events.count > 2_000)
        var stores: [WorkerStore] = []
        var held: [[String: [UInt8]]] = []
        for (name, saving) in [
            (
                "deferred",
                RowSaving(maxDossiers: 700, maxEvents: .max, maxInterval: .seconds(3600), maxClockSeconds: .max)
            ),
            ("every-commit", RowSaving(maxDossiers: 0)),
        ] {
            let store = try WorkerStore(path: folder + "/\(name).sqlite")
            let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
            engine.rowSaving = saving
            _ = try engine.rebuild()
            try feed(events, into: engine, store: store, batch: 250)
            held.append(records(engine))
            stores.append(store)
        }
        let (deferred, everyCommit) = (stores[0], stores[1])
        // Rows saved every commit are current; deferred ones lag behind the log.
        #expect(held[0] == held[1])
        #expect(try stored(everyCommit) == held[1])
        #expect(try stored(deferred) != held[0])

        var restarted: [WorkerEngine] = []
        var replayed: [Int] = []
        for store in [deferred, everyCommit] {
            let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
            replayed.append(try engine.rebuild().events)
            restarted.append(engine)
        }
        #expect(replayed[0] > 0)
        #expect(replayed[1] == 0)
        #expect(records(restarted[0]) == held[0])
        #expect(records(restarted[1]) == held[1])
        #expect(restarted[0].now == restarted[1].now)
        // The start saved the rows: the tail is not replayed again.
        #expect(try stored(deferred) == held[0])
        let again = WorkerEngine(configuration: configuration, store: deferred, clockMode: .events)
        #expect(try again.rebuild().events == 0)
        // The tail's alerts were staged again and the outbox kept the ids it held: each alert once, the same set.
        let ids = try deferred.allAlerts().map(\.alertID)
        #expect(!ids.isEmpty)
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids) == Set(try everyCommit.allAlerts().map(\.alertID)))
    }

    @Test(
        "a worker killed before its first save comes back as it was; killed again after the replay, it replays nothing")
    func secondStartAfterReplayIsQuiet() throws {
        let folder = temporaryFolder("row-saving-twice")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        engine.rowSaving = RowSaving(
            maxDossiers: .max, maxEvents: .max, maxInterval: .seconds(3600), maxClockSeconds: .max)
        _ = try engine.rebuild()
        let events = events
        try feed(events, into: engine, store: store, batch: 100)
        let held = records(engine)
        #expect(try store.dossierCount() == 0)
        // Saved before the first event: the tail is replayed at its own instants, not at the last commit's clock.
        let first = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        #expect(try first.rebuild().events == events.count - duplicates(in: events))
        #expect(records(first) == held)
        let second = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        #expect(try second.rebuild().events == 0)
        #expect(records(second) == held)
    }

    @Test(
        "killed at four points between saves of a congested month, a worker raises every alert of an uninterrupted run, once"
    )
    func killsBetweenSavesKeepTheAlerts() throws {
        let events = try CongestedMonth(scale: 0.01, seed: 11).events(config: configuration)
        let folder = temporaryFolder("row-saving-kills")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var stops = Set([events.count / 5, events.count * 2 / 5, events.count * 3 / 5, events.count * 4 / 5])
        var engine: WorkerEngine?
        let store = try WorkerStore(path: folder + "/state.sqlite")
        // What was applied since the last commit is lost at each kill, and the broker delivers it again.
        var committed = 0
        var i = 0
        var replayed = 0
        while i < events.count {
            if engine == nil || stops.remove(i) != nil {
                engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
                engine!.rowSaving = RowSaving(
                    maxDossiers: 400, maxEvents: .max, maxInterval: .seconds(3600), maxClockSeconds: .max)
                replayed += try engine!.rebuild().events
                i = committed
            }
            try engine!.apply(events[i])
            i += 1
            if i % 97 == 0 {
                try engine!.commitPrepared()
                committed = i
            }
        }
        try engine!.commitPrepared()
        #expect(replayed > 0)
        let expected = try alertsInAppliedOrder(store, configuration: configuration, until: try store.clock())
        #expect(expected.filter { $0.level == .atRisk }.count > 20)
        let stored = try store.allAlerts().map(\.alertID)
        #expect(Set(stored).count == stored.count)
        let missing = expected.filter { !Set(stored).contains($0.alertId) }.map { $0.jsonLine() }
        let extra = try store.allAlerts().filter { !Set(expected.map(\.alertId)).contains($0.alertID) }.map(\.json)
        #expect(
            missing.isEmpty && extra.isEmpty,
            "\(missing.count) missing \(missing.prefix(3)), \(extra.count) extra \(extra.prefix(3))")
    }

    @Test(
        "a dossier retired with unsaved changes, its slot taken by a new dossier before the commit: the commit saves the rows, and a restart replays nothing"
    )
    func retiredUnsavedSlotReused() throws {
        let folder = temporaryFolder("row-saving-retired-slot")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(
            configuration: configuration, store: store, clockMode: .events,
            retention: Retention(closedDays: 3, eventLogDays: 3))
        engine.rowSaving = RowSaving(
            maxDossiers: .max, maxEvents: .max, maxInterval: .seconds(3600), maxClockSeconds: .max)
        _ = try engine.rebuild()
        _ = try engine.apply(sameDayEvent("760-220518-0001", "received", "2022-05-18T09:00:00+07:00"))
        _ = try engine.apply(sameDayEvent("760-220518-0001", "resolved", "2022-05-18T10:00:00+07:00"))
        _ = try engine.apply(sameDayEvent("760-220518-0002", "received", "2022-05-18T11:00:00+07:00"))
        try engine.commitPrepared()
        #expect(try store.dossierCount() == 0, "rows deferred")
        // Four days on, the resolved dossier retires; a new one arrives in the same batch and takes its slot.
        _ = try engine.apply(sameDayEvent("760-220518-0002", "resolved", "2022-05-22T09:00:00+07:00"))
        engine.retireDue()
        #expect(engine.dossierCount == 1)
        _ = try engine.apply(sameDayEvent("760-220522-0003", "received", "2022-05-22T09:30:00+07:00"))
        try engine.commitPrepared()
        let held = records(engine)
        #expect(Set(held.keys) == ["760-220518-0002", "760-220522-0003"])
        #expect(try stored(store) == held)
        let restarted = WorkerEngine(
            configuration: configuration, store: store, clockMode: .events,
            retention: Retention(closedDays: 3, eventLogDays: 3))
        #expect(try restarted.rebuild().events == 0)
        #expect(records(restarted) == held)
    }

    /// Events that repeat an earlier `eventId` of their dossier (the generator sends some twice): applied once, so
    /// logged once.
    func duplicates(in events: [DossierEvent]) -> Int {
        var seen = Set<String>()
        return events.filter { !seen.insert($0.dossier + "/" + $0.eventId).inserted }.count
    }

    @Test("a restart reserves room for the rows counted when they were saved; a count out of range is not believed")
    func savedRowCount() throws {
        let folder = temporaryFolder("row-saving-count")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        engine.rowSaving = RowSaving(maxDossiers: 0)
        _ = try engine.rebuild()
        try feed(events, into: engine, store: store, batch: 250)
        #expect(engine.dossierCount > 1_000)
        #expect(try store.dossierCount() == engine.dossierCount)
        #expect(try store.dossierCountHint() == engine.dossierCount)
        // The saved number is read, not the table counted; one no engine could have written falls back to counting.
        for (saved, read) in [(7, 7), (-1, engine.dossierCount), (Int(Int32.max) * 4, engine.dossierCount)] {
            var batch = CommitBatch()
            batch.savesRows = true
            batch.heldDossiers = saved
            try store.commit(batch)
            #expect(try store.dossierCountHint() == read)
        }
    }

    @Test("pruning the log never removes the events a restart would replay, nor the newest row")
    func pruneKeepsTheTail() throws {
        let folder = temporaryFolder("row-saving-prune")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let body = Array("{}".utf8)
        var saved = CommitBatch()
        saved.events = (1...3).map { ("e\($0)", "d\($0)", Instant($0), body) }
        saved.savesRows = true
        try store.commit(saved)
        var tail = CommitBatch()
        tail.events = (4...6).map { ("e\($0)", "d\($0)", Instant($0), body) }
        try store.commit(tail)
        _ = try store.prune(eventsBefore: 1_000, tombstonesBefore: 0, alertsBeforeDay: "2000-01-01")
        // Arrivals 1 and 2 go; 3 (the last saved, so that its arrival is never reused) and the tail stay.
        #expect(try store.eventCount() == 4)
        var replayed: [Int64] = []
        try store.forEachEventAfterSavedRows { arrival, _, _ in replayed.append(arrival) }
        #expect(replayed == [4, 5, 6])
        var later = CommitBatch()
        later.savesRows = true
        try store.commit(later)
        _ = try store.prune(eventsBefore: 1_000, tombstonesBefore: 0, alertsBeforeDay: "2000-01-01")
        #expect(try store.eventCount() == 1)
        try store.forEachEventAfterSavedRows { _, _, _ in Issue.record("nothing is left to replay") }
    }
}
