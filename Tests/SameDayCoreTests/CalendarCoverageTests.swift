import Foundation
import Testing

@testable import SameDayCore

@Suite("Calendars through 2026, and what happens past their listed holidays")
struct CalendarCoverageTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var received: String
        var due: String
        var testDescription: String { name }
    }

    /// Same-day certified copies (2.000815) at District 1 (hcmc-standard), across the breaks of 2023–2026.
    static let cases: [Case] = [
        Case(name: "2023: before the 29/4–3/5 break", received: "2023-04-28 15:01", due: "2023-05-04 17:00"),
        Case(
            name: "2023: Quốc khánh, 1/9 and the 4/9 substitute", received: "2023-08-31 15:01", due: "2023-09-05 17:00"),
        Case(name: "2024: Tết 8–14/2", received: "2024-02-07 15:01", due: "2024-02-15 17:00"),
        Case(name: "2024: Giỗ Tổ 18/4", received: "2024-04-17 16:00", due: "2024-04-19 17:00"),
        Case(name: "2024: 29/4 swapped off, 30/4 and 1/5", received: "2024-04-26 15:30", due: "2024-05-02 17:00"),
        Case(name: "2024: Saturday 4/5 is worked in its place", received: "2024-05-03 15:30", due: "2024-05-04 17:00"),
        Case(name: "2025: Tết 27–31/1", received: "2025-01-24 15:01", due: "2025-02-03 17:00"),
        Case(name: "2025: Saturday 26/4 is worked for 2/5", received: "2025-04-25 15:01", due: "2025-04-26 17:00"),
        Case(name: "2025: 30/4–2/5 off", received: "2025-04-29 15:01", due: "2025-05-05 17:00"),
        Case(name: "2026: 2/1 swapped off", received: "2025-12-31 15:01", due: "2026-01-05 17:00"),
        Case(name: "2026: Saturday 10/1 is worked for 2/1", received: "2026-01-09 15:01", due: "2026-01-10 17:00"),
        Case(name: "2026: Tết 16–20/2", received: "2026-02-13 15:01", due: "2026-02-23 17:00"),
        Case(
            name: "2026: Giỗ Tổ on Sunday 26/4, substitute Monday 27/4", received: "2026-04-24 15:01",
            due: "2026-04-28 17:00"),
        Case(name: "2026: Saturday 22/8 is worked for 31/8", received: "2026-08-21 15:01", due: "2026-08-22 17:00"),
        Case(name: "2026: 31/8 swapped off, 1–2/9", received: "2026-08-28 15:01", due: "2026-09-03 17:00"),
    ]

    @Test(arguments: cases)
    func shippedBreaks(_ c: Case) {
        let unit = hcmc.unitID("760")!
        let ref = hcmc.procedureRef("2.000815.000.00.00.H29", unit: unit)
        #expect(fmt(hcmc.deadline(unit: unit, procedure: ref, received: t(c.received)).due) == c.due)
    }

    @Test("every shipped calendar lists its holidays through 2026; a day after that is reported, one before is not")
    func shippedCoverage() {
        let end = LocalDate(year: 2026, month: 12, day: 31)!.dayNumber
        #expect(hcmc.calendarDefinitions.allSatisfy { $0.holidaysThrough == end })
        #expect(hcmc.earliestHolidaysEnd == t("2027-01-01 00:00"))
        let district = hcmc.unitID("760")!
        #expect(hcmc.calendarRunOut(unit: district, at: t("2026-12-31 16:00")) == nil)
        #expect(hcmc.calendarRunOut(unit: district, at: t("2027-01-04 09:00")) == "hcmc-standard")
    }

    static let header = "code,name,block,parent,calendar\n"

    func configuration(_ calendars: String, units: String) throws(ConfigurationError) -> Configuration {
        try Configuration.parse(
            ConfigurationFiles(
                units: Array((Self.header + units).utf8),
                catalog: Array("procedure,name,field,sla,cutoff,scope\n".utf8),
                calendars: Array(calendars.utf8), alerting: nil))
    }

    @Test(
        "holidaysThrough: given, inherited from the base, or the end of the last holiday's year; none without holidays")
    func holidaysThroughResolution() throws {
        let c = try configuration(
            """
            {"calendars": [
              {"id": "a", "days": {"mon": {"sessions": ["07:30-11:30"]}}, "holidays": ["2024-09-02"]},
              {"id": "b", "base": "a", "holidaysThrough": "2025-06-30"},
              {"id": "c", "base": "b", "holidays": ["2025-04-30"]},
              {"id": "d", "days": {"mon": {"sessions": ["07:30-11:30"]}}}
            ]}
            """,
            units: "1,A,district,,a\n2,B,district,,b\n3,C,district,,c\n4,D,district,,d\n")
        let through = c.calendarDefinitions.map { $0.holidaysThrough.map { LocalDate(dayNumber: $0).description } }
        #expect(through == ["2024-12-31", "2025-06-30", "2025-06-30", nil])
        #expect(c.earliestHolidaysEnd == t("2025-01-01 00:00"))
        #expect(c.calendarRunOut(unit: c.unitID("1")!, at: t("2025-01-01 08:00")) == "a")
        #expect(c.calendarRunOut(unit: c.unitID("2")!, at: t("2025-01-01 08:00")) == nil)
        #expect(c.calendarRunOut(unit: c.unitID("3")!, at: t("2025-07-01 08:00")) == "c")
        #expect(c.calendarRunOut(unit: c.unitID("4")!, at: t("2040-01-01 08:00")) == nil, "no holidays: no claim")
    }

    @Test("holidaysThrough before a holiday the calendar lists, or not a date, is refused with its path")
    func holidaysThroughErrors() {
        for (through, message) in [("2024-08-31", "before the holiday 2024-09-02"), ("2024-13-01", "not a YYYY-MM-DD")]
        {
            do {
                _ = try configuration(
                    """
                    {"calendars": [{"id": "a", "days": {"mon": {"sessions": ["07:30-11:30"]}},
                      "holidays": ["2024-09-02"], "holidaysThrough": "\(through)"}]}
                    """, units: "1,A,district,,a\n")
                Issue.record("accepted holidaysThrough \(through)")
            } catch {
                #expect(error.file == "calendars.json")
                #expect(error.path == "calendars[0].holidaysThrough")
                #expect(error.message.contains(message), "\(error)")
            }
        }
    }
}
