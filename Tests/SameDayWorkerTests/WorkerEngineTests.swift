import Foundation
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayWorker
import Synchronization
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let hcmcConfiguration = repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022").path

/// A clock the test moves by hand.
final class StepClock: WorkerClock {
    private let instant: Mutex<Instant>
    init(_ start: Instant) { instant = Mutex(start) }
    func now() -> Instant { instant.withLock { $0 } }
    func set(_ text: String) { instant.withLock { $0 = RFC3339.parse(text)! } }
}

func temporaryFolder(_ purpose: String) -> String {
    let path = NSTemporaryDirectory() + "sameday-\(purpose)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func receivedEvent(_ dossier: String, at time: String, unit: String = "760") -> DossierEvent {
    try! DossierEvent.decode(
        """
        {"schema":"sameday.dossier-event/1","eventId":"\(dossier)-received","dossier":"\(dossier)","unit":"\(unit)",\
        "procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"\(time)","channel":"direct","source":"test"}
        """)
}

/// An event of the same-day procedure at District 1 (`received` ones at the desk), its id made of the dossier and
/// the type.
func sameDayEvent(_ dossier: String, _ type: String, _ time: String) -> DossierEvent {
    try! DossierEvent.decode(
        """
        {"schema":"sameday.dossier-event/1","eventId":"\(dossier)-\(type)","dossier":"\(dossier)","unit":"760",\
        "procedure":"2.000815.000.00.00.H29","type":"\(type)","occurredAt":"\(time)",\
        \(type == "received" ? #""channel":"direct","# : "")"source":"test"}
        """)
}

@Suite("Worker timers on an injected clock")
struct WorkerEngineTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    func levels(_ store: WorkerStore) throws -> [String] {
        try store.allAlerts().map(\.level)
    }

    func firedAt(_ store: WorkerStore, _ level: String) throws -> String? {
        let json = try store.allAlerts().first { $0.level == level }?.json
        return json.flatMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["firedAt"] as? String
        }
    }

    @Test("a dossier received at 14:00 alerts at 15:30, 16:30 and 17:00 with no further event")
    func sameDayThresholds() throws {
        let folder = temporaryFolder("timers")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = StepClock(RFC3339.parse("2022-05-18T14:00:00+07:00")!)
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .wall, clock: clock)
        _ = try engine.rebuild()
        try engine.apply(receivedEvent("760-220518-0001", at: "2022-05-18T14:00:00+07:00"))
        try engine.commit()
        // The unit's queue forecast looks again every 30 working minutes while a queued dossier is on track (docs/rules.md §5.6);
        // the dossier's own first threshold is 15:30.
        #expect(engine.nextTimerAt == RFC3339.parse("2022-05-18T14:30:00+07:00"))

        clock.set("2022-05-18T15:29:59+07:00")
        engine.tick()
        try engine.commit()
        #expect(try levels(store) == [])
        clock.set("2022-05-18T15:30:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(try levels(store) == ["warning"])
        clock.set("2022-05-18T16:30:00+07:00")
        engine.tick()
        clock.set("2022-05-18T17:00:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(try levels(store) == ["warning", "critical", "overdue"])
        #expect(try firedAt(store, "critical") == "2022-05-18T16:30:00+07:00")
        #expect(try firedAt(store, "overdue") == "2022-05-18T17:00:00+07:00")
    }

    @Test("a worker restarted in between fires each level once; what came due while it was down fires late-marked")
    func restartInBetween() throws {
        let folder = temporaryFolder("restart")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = StepClock(RFC3339.parse("2022-05-18T14:00:00+07:00")!)
        do {
            let store = try WorkerStore(path: folder + "/state.sqlite")
            let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .wall, clock: clock)
            _ = try engine.rebuild()
            try engine.apply(receivedEvent("760-220518-0002", at: "2022-05-18T14:00:00+07:00"))
            try engine.commit()
            clock.set("2022-05-18T15:30:00+07:00")
            engine.tick()
            try engine.commit()
        }
        // Down from 15:30 to 16:45: critical (16:30) was missed.
        clock.set("2022-05-18T16:45:00+07:00")
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .wall, clock: clock)
        let summary = try engine.rebuild()
        #expect(summary.dossiers == 1 && summary.missedAlerts == 1 && summary.quarantined == 0, "\(summary)")
        let alerts = try store.allAlerts()
        try #require(alerts.map(\.level) == ["warning", "critical"])
        #expect(alerts[1].json.contains("\"lateFired\":true"))
        #expect(alerts[0].json.contains("\"lateFired\":false"))
        clock.set("2022-05-18T17:00:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(try levels(store) == ["warning", "critical", "overdue"])
        // A third start fires nothing new.
        let again = WorkerEngine(configuration: configuration, store: store, clockMode: .wall, clock: clock)
        #expect(try again.rebuild().missedAlerts == 0)
        #expect(try store.allAlerts().count == 3)
    }

    @Test("a threshold at exactly the last event's instant, not yet fired at a SIGKILL, fires after the restart")
    func thresholdAtTheStoppedClock() throws {
        let folder = temporaryFolder("restart-at-threshold")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let store = try WorkerStore(path: folder + "/state.sqlite")
            let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
            _ = try engine.rebuild()
            try engine.apply(receivedEvent("760-220518-0003", at: "2022-05-18T14:00:00+07:00"))
            // Another dossier's event at 15:30:00 exactly, the first one's warning instant: an event fires the
            // timers strictly before it, so the warning waits for the next event, and the clock is stored at 15:30.
            try engine.apply(receivedEvent("760-220518-0004", at: "2022-05-18T15:30:00+07:00"))
            try engine.commit()
            #expect(try levels(store) == [])
        }  // the worker is killed here: nothing else runs
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .events)
        _ = try engine.rebuild()
        let alerts = try store.allAlerts()
        try #require(alerts.map(\.level) == ["warning"], "the warning due at the stored clock was lost")
        #expect(alerts[0].json.contains(#""dossier":"760-220518-0003""#))
        #expect(try firedAt(store, "warning") == "2022-05-18T15:30:00+07:00")
        #expect(alerts[0].json.contains(#""lateFired":false"#))
        // The next event fires what follows, and the warning is not raised again.
        try engine.apply(receivedEvent("760-220518-0005", at: "2022-05-18T16:31:00+07:00"))
        try engine.commit()
        // (0004 came after the 15:00 cut-off: its first threshold is the next day.)
        #expect(try levels(store) == ["warning", "critical"])
    }

    @Test("a duplicate event changes nothing and is not stored twice")
    func duplicates() throws {
        let folder = temporaryFolder("dup")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = StepClock(RFC3339.parse("2022-05-18T09:00:00+07:00")!)
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(configuration: configuration, store: store, clockMode: .wall, clock: clock)
        let event = receivedEvent("760-220518-0003", at: "2022-05-18T09:00:00+07:00")
        #expect(try engine.apply(event))
        #expect(try !engine.apply(event))
        try engine.commit()
        #expect(try store.eventCount() == 1 && store.dossierCount() == 1)
    }
}

@Suite("Worker source silence")
struct WorkerSourceSilenceTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test("a unit whose events stop during working hours raises source_silent once")
    func silence() throws {
        let folder = temporaryFolder("silence")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = StepClock(RFC3339.parse("2022-05-18T08:00:00+07:00")!)
        let store = try WorkerStore(path: folder + "/state.sqlite")
        let engine = WorkerEngine(
            configuration: configuration, store: store, clockMode: .wall, clock: clock, sourceSilence: true)
        _ = try engine.rebuild()
        try engine.apply(receivedEvent("760-220518-0100", at: "2022-05-18T08:00:00+07:00"))
        try engine.commit()
        // alerting.json: 120 working minutes of silence → 10:00.
        clock.set("2022-05-18T09:59:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(try store.allAlerts().filter { $0.level == "source_silent" }.isEmpty)
        clock.set("2022-05-18T10:00:00+07:00")
        engine.tick()
        clock.set("2022-05-18T11:00:00+07:00")
        engine.tick()
        try engine.commit()
        let silent = try store.allAlerts().filter { $0.level == "source_silent" }
        #expect(silent.count == 1)
        #expect(silent.first?.routingKey == "source_silent.district.760")
    }

    @Test("a restart remembers each unit's last event: a unit silent after it is still reported, and only once")
    func silenceAcrossRestarts() throws {
        let folder = temporaryFolder("silence-restart")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = StepClock(RFC3339.parse("2022-05-18T08:00:00+07:00")!)
        let store = try WorkerStore(path: folder + "/state.sqlite")
        func start() throws -> WorkerEngine {
            let engine = WorkerEngine(
                configuration: configuration, store: store, clockMode: .wall, clock: clock, sourceSilence: true)
            _ = try engine.rebuild()
            return engine
        }
        var engine = try start()
        try engine.apply(receivedEvent("760-220518-0100", at: "2022-05-18T08:00:00+07:00"))
        try engine.apply(receivedEvent("761-220518-0100", at: "2022-05-18T08:00:00+07:00", unit: "761"))
        try engine.commit()
        clock.set("2022-05-18T09:00:00+07:00")
        engine.tick()
        try engine.commit()
        // Restarted before either unit is silent, with no event from them afterwards.
        engine = try start()
        clock.set("2022-05-18T11:00:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(
            Set(try store.allAlerts().filter { $0.level == "source_silent" }.map(\.routingKey)) == [
                "source_silent.district.760", "source_silent.district.761",
            ])
        // Restarted after they were reported: not reported again.
        engine = try start()
        clock.set("2022-05-18T12:00:00+07:00")
        engine.tick()
        try engine.commit()
        #expect(try store.allAlerts().filter { $0.level == "source_silent" }.count == 2)
    }
}

@Suite("A calendar that runs out of listed holidays is reported")
struct CalendarRunOutTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test("events past the calendar's holidaysThrough are counted by calendar and taken once; earlier ones are not")
    func eventsPastTheListedHolidays() throws {
        let folder = temporaryFolder("calendar-run-out")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = WorkerEngine(
            configuration: configuration, store: try WorkerStore(path: folder + "/state.sqlite"), clockMode: .events)
        _ = try engine.rebuild()
        try engine.apply(receivedEvent("760-261231-0001", at: "2026-12-31T16:59:00+07:00"))
        #expect(engine.takeCalendarRunOuts().isEmpty)
        try engine.apply(receivedEvent("760-270104-0001", at: "2027-01-04T08:00:00+07:00"))
        try engine.apply(receivedEvent("769-270104-0002", at: "2027-01-04T08:05:00+07:00", unit: "769"))
        try engine.apply(receivedEvent("760-270104-0003", at: "2027-01-04T08:10:00+07:00"))
        let calendar769 = configuration.calendarDefinition(of: configuration.unitID("769")!).id
        #expect(engine.takeCalendarRunOuts() == ["hcmc-standard": 2, calendar769: 1])
        #expect(engine.takeCalendarRunOuts().isEmpty)
    }
}
