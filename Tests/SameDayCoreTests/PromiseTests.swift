import Foundation
import Testing

@testable import SameDayCore

/// `promisedAt`: the appointment slip's return date on `received`, compared with the computed deadline.
@Suite("What the desk promised (promisedAt)")
struct PromiseTests {
    private func received(_ dossier: String, at: String, promised: String?) -> DossierEvent {
        DossierEvent(
            eventId: "\(dossier)#1", dossier: dossier, unit: "760", procedure: Fixture.sameDay, type: .received,
            occurredAt: t(at), channel: .direct, promisedAt: promised.map(t), source: "test")
    }

    private func decode(_ json: String) throws(EventDecodingError) -> DossierEvent {
        try DossierEvent.decode(bytes: Array(json.utf8))
    }

    @Test("promisedAt travels on received, encoded and decoded; any other type refuses it")
    func schema() throws {
        let e = received("760-220518-0001", at: "2022-05-18 10:00", promised: "2022-05-18 16:30")
        let text = e.encoded()
        #expect(text.contains(#""promisedAt":"2022-05-18T16:30:00+07:00""#))
        #expect(try decode(text) == e)
        let resolved = text.replacingOccurrences(of: #""type":"received""#, with: #""type":"resolved""#)
            .replacingOccurrences(of: #""channel":"direct","#, with: "")
        #expect(throws: EventDecodingError(field: "promisedAt", reason: .notAllowed(onType: "resolved"))) {
            try decode(resolved)
        }
    }

    @Test("a promise more than 366 days from its event is outside the window")
    func bounds() {
        let far = received("760-220518-0002", at: "2022-05-18 10:00", promised: "2023-06-01 10:00")
        let v = EventTimeBounds.standard.violation(of: far, now: t("2022-05-18 10:00"))
        #expect(v?.field == .promisedAt)
        let near = received("760-220518-0003", at: "2022-05-18 10:00", promised: "2022-05-19 10:00")
        #expect(EventTimeBounds.standard.violation(of: near, now: t("2022-05-18 10:00")) == nil)
    }

    @Test("received_promise_differs counts a promise on another day than the computed deadline, nothing else")
    func column() throws {
        // 760 works Monday–Friday; a same-day dossier received on Wednesday 18/5 at 10:00 is due that day.
        let events = [
            received("760-220518-0001", at: "2022-05-18 10:00", promised: "2022-05-18 16:30"),  // same day
            received("760-220518-0002", at: "2022-05-18 10:05", promised: "2022-05-19 09:00"),  // a day late
            received("760-220518-0003", at: "2022-05-18 10:10", promised: nil),  // no slip sent
        ]
        let replay = try Replay.run(events: events, config: Fixture.config, options: ReplayOptions())
        let facts = replay.facts()
        #expect(facts.filter(\.promiseDiffers).count == 1)
        let day = Rollup.compute(
            facts: facts, period: .day(LocalDate("2022-05-18")!), config: Fixture.config)
        let unit = day.units.first { $0.unit == "760" }!
        #expect(unit.figures.receivedPromiseDiffers == 1)
        #expect(unit.figures.identityViolations.isEmpty)
        let i = RollupFigures.columns.firstIndex(of: "received_promise_differs")!
        #expect(unit.figures.values[i] == 1)
        // The dossier's state keeps the slip's date, from the compact event store.
        #expect(replay.dossier("760-220518-0002")?.state(config: Fixture.config).promisedAt == t("2022-05-19 09:00"))
    }

    @Test("the slip is compared with the deadline computed at reception: a later lawful extension changes nothing")
    func extensionKeepsThePromise() throws {
        var b = EventBuilder()
        var received = b(.received, "2022-05-18 10:00")
        received.promisedAt = t("2022-05-18 17:00")
        let events = [received, b(.extended, "2022-05-18 15:00", newDue: "2022-05-20 17:00")]
        let replay = try Replay.run(events: events, config: Fixture.config, options: ReplayOptions())
        let facts = try #require(replay.facts().first)
        #expect(!facts.promiseDiffers)
    }

    @Test("rows written before the column existed read back with 0 in it")
    func olderFiles() {
        var f = RollupFigures()
        f.receivedOnline = 3
        f.receivedPromiseDiffers = 2
        let all = f.values.map(String.init)
        let back = RollupFigures(columns: RollupFigures.columns, values: all)
        #expect(back?.receivedPromiseDiffers == 2)
        let i = RollupFigures.columns.firstIndex(of: "received_promise_differs")!
        var older = all
        older.remove(at: i)
        let old = RollupFigures(columns: RollupFigures.columnsBeforePromise, values: older)
        #expect(old?.receivedOnline == 3)
        #expect(old?.receivedPromiseDiffers == 0)
    }
}
