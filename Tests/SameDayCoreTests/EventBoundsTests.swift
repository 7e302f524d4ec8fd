import Testing

@testable import SameDayCore

@Suite("Event time bounds and dossier codes")
struct EventBoundsTests {
    let now = t("2022-05-20 10:00")
    var bounds: EventTimeBounds { .standard }

    func event(_ at: Instant, newDue: Instant? = nil) -> DossierEvent {
        DossierEvent(
            eventId: "e", dossier: "760-220520-0001", unit: "760", procedure: "p",
            type: newDue == nil ? .received : .rescheduled, occurredAt: at, newDueAt: newDue, source: "test")
    }

    @Test("occurredAt from 2000-01-01 to one day after the clock; newDueAt within 366 days of the event")
    func window() {
        #expect(bounds.violation(of: event(now), now: now) == nil)
        #expect(bounds.violation(of: event(t("2000-01-01 00:00")), now: now) == nil)
        #expect(bounds.violation(of: event(now + 86_400), now: now) == nil)
        let ahead = bounds.violation(of: event(now + 86_401), now: now)
        #expect(ahead?.field == .occurredAt)
        #expect(ahead?.description.hasPrefix("field \"occurredAt\": 2022-05-21T10:00:01+07:00 is outside") == true)
        #expect(bounds.violation(of: event(t("1999-12-31 23:59")), now: now) != nil)
        #expect(bounds.violation(of: event(RFC3339.parse("1022-05-20T10:00:00+07:00")!), now: now) != nil)
        #expect(bounds.violation(of: event(now, newDue: now + 366 * 86_400), now: now) == nil)
        #expect(bounds.violation(of: event(now, newDue: now + 367 * 86_400), now: now)?.field == .newDueAt)
        #expect(bounds.violation(of: event(now, newDue: now - 367 * 86_400), now: now)?.field == .newDueAt)
    }

    @Test("a dossier code belongs to the unit whose code is its agency prefix")
    func dossierCodes() {
        #expect(DossierCode.belongs("000.00.15.H29-220518-0042", to: "000.00.15.H29"))
        #expect(DossierCode.belongs("760-220518-0001", to: "760"))
        #expect(!DossierCode.belongs("760-220518-0001", to: "26740"))
        #expect(!DossierCode.belongs("7600-220518-0001", to: "760"))
        #expect(!DossierCode.belongs("x-760-220518-0001", to: "760"))
        #expect(!DossierCode.belongs("760-22051-0001", to: "760"))  // not a six-digit date
        #expect(!DossierCode.belongs("760-220518-", to: "760"))
        #expect(!DossierCode.belongs("-220518-0001", to: ""))
        #expect(DossierCode.agency(of: "a-b-220518-0001") == "a-b")
        #expect(DossierCode.agency(of: "opaque") == nil)
    }
}
