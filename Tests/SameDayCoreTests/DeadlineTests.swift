import Testing

@testable import SameDayCore

@Suite("Work calendars and deadlines")
struct DeadlineTests {
    let config = Fixture.config

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var unit: String
        var procedure: String
        var received: String
        var start: String
        var due: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "exactly at the cut-off", unit: "760", procedure: Fixture.sameDay, received: "2022-05-18 15:00",
            start: "2022-05-18 15:00", due: "2022-05-18 17:00"),
        Case(
            name: "one minute after the cut-off", unit: "760", procedure: Fixture.sameDay, received: "2022-05-18 15:01",
            start: "2022-05-18 15:01", due: "2022-05-19 17:00"),
        Case(
            name: "Friday after the cut-off, standard", unit: "760", procedure: Fixture.sameDay,
            received: "2022-05-20 15:01", start: "2022-05-20 15:01", due: "2022-05-23 17:00"),
        Case(
            name: "Friday after the cut-off, Saturday calendar", unit: "769", procedure: Fixture.sameDay,
            received: "2022-05-20 15:01", start: "2022-05-20 15:01", due: "2022-05-21 11:30"),
        Case(
            name: "before opening", unit: "760", procedure: Fixture.sameDay, received: "2022-05-18 06:45",
            start: "2022-05-18 07:30", due: "2022-05-18 17:00"),
        Case(
            name: "lunch break", unit: "760", procedure: Fixture.sameDay, received: "2022-05-18 12:10",
            start: "2022-05-18 13:00", due: "2022-05-18 17:00"),
        Case(
            name: "after closing", unit: "760", procedure: Fixture.sameDay, received: "2022-05-18 18:00",
            start: "2022-05-19 07:30", due: "2022-05-19 17:00"),
        Case(
            name: "on a Sunday", unit: "760", procedure: Fixture.sameDay, received: "2022-05-22 10:00",
            start: "2022-05-23 07:30", due: "2022-05-23 17:00"),
        Case(
            name: "on a holiday", unit: "760", procedure: Fixture.sameDay, received: "2022-09-02 10:00",
            start: "2022-09-05 07:30", due: "2022-09-05 17:00"),
        Case(
            name: "day before a holiday, after the cut-off", unit: "760", procedure: Fixture.sameDay,
            received: "2022-08-31 15:01", start: "2022-08-31 15:01", due: "2022-09-05 17:00"),
        Case(
            name: "make-up working day", unit: "760", procedure: Fixture.sameDay, received: "2022-05-27 15:01",
            start: "2022-05-27 15:01", due: "2022-05-28 17:00"),
        Case(
            name: "Saturday half day before its default cut-off (11:30 - 120 min)", unit: "769",
            procedure: Fixture.sameDay, received: "2022-05-21 09:30", start: "2022-05-21 09:30", due: "2022-05-21 11:30"
        ),
        Case(
            name: "Saturday half day after its default cut-off", unit: "769", procedure: Fixture.sameDay,
            received: "2022-05-21 09:31", start: "2022-05-21 09:31", due: "2022-05-23 17:00"),
        Case(
            name: "evening notarisation before its cut-off", unit: "27010", procedure: Fixture.sameDay,
            received: "2022-05-17 16:30", start: "2022-05-17 16:30", due: "2022-05-17 19:00"),
        Case(
            name: "evening notarisation after its cut-off", unit: "27010", procedure: Fixture.sameDay,
            received: "2022-05-17 17:30", start: "2022-05-17 17:30", due: "2022-05-18 17:00"),
        Case(
            name: "catalog cut-off 16:00", unit: "760", procedure: Fixture.sameDayCutoff16,
            received: "2022-05-18 15:30", start: "2022-05-18 15:30", due: "2022-05-18 17:00"),
        Case(
            name: "days:3 across a weekend", unit: "760", procedure: Fixture.days3, received: "2022-05-20 10:00",
            start: "2022-05-20 10:00", due: "2022-05-25 10:00"),
        Case(
            name: "days:1 across a holiday", unit: "760", procedure: Fixture.days1, received: "2022-08-31 10:00",
            start: "2022-08-31 10:00", due: "2022-09-05 10:00"),
        Case(
            name: "days:1 across a weekend and two holidays", unit: "760", procedure: Fixture.days1,
            received: "2022-04-29 10:00", start: "2022-04-29 10:00", due: "2022-05-04 10:00"),
        Case(
            name: "hours:4 across lunch", unit: "760", procedure: Fixture.hours4, received: "2022-05-18 10:00",
            start: "2022-05-18 10:00", due: "2022-05-18 15:30"),
        Case(
            name: "07:30 + 480 minutes is 17:00 the same day", unit: "760", procedure: Fixture.days1,
            received: "2022-05-18 07:30", start: "2022-05-18 07:30", due: "2022-05-18 17:00"),
        // Revision 2: extra sessions serve same-day procedures only, and may name the ones they serve.
        Case(
            name: "days:3 received Wednesday at a Saturday unit is due Monday, as the appointment slip says",
            unit: "769", procedure: Fixture.days3, received: "2022-05-18 10:00", start: "2022-05-18 10:00",
            due: "2022-05-23 10:00"),
        Case(
            name: "hours:4 received in a Saturday extra session starts at Monday's first regular session",
            unit: "769", procedure: Fixture.hours4, received: "2022-05-21 08:00", start: "2022-05-23 07:30",
            due: "2022-05-23 11:30"),
        Case(
            name: "evening session serves notarisation only: another same-day procedure at 16:30 is due next day",
            unit: "27010", procedure: Fixture.sameDayCutoff16, received: "2022-05-17 16:30",
            start: "2022-05-17 16:30", due: "2022-05-18 17:00"),
        Case(
            name: "evening session before its first date does not count", unit: "27010", procedure: Fixture.sameDay,
            received: "2022-04-26 16:30", start: "2022-04-26 16:30", due: "2022-04-27 17:00"),
        Case(
            name: "catalog cut-off 16:00 does not stretch a Saturday closing at 11:30 (day's own 09:30 applies)",
            unit: "769", procedure: Fixture.sameDayCutoff16, received: "2022-05-21 11:00", start: "2022-05-21 11:00",
            due: "2022-05-23 17:00"),
        Case(
            name: "catalog cut-off 16:00 on a Saturday, before the day's own cut-off", unit: "769",
            procedure: Fixture.sameDayCutoff16, received: "2022-05-21 09:00", start: "2022-05-21 09:00",
            due: "2022-05-21 11:30"),
        Case(
            name: "not in catalog: default days:1", unit: "760", procedure: "9.999", received: "2022-05-18 07:00",
            start: "2022-05-18 07:30", due: "2022-05-18 17:00"),
    ]

    @Test(arguments: cases)
    func deadline(_ c: Case) {
        let unit = config.unitID(c.unit)!
        let ref = config.procedureRef(c.procedure, unit: unit)
        let d = config.deadline(unit: unit, procedure: ref, received: t(c.received))
        #expect(fmt(d.start) == c.start)
        #expect(fmt(d.due) == c.due)
    }

    func schedule(_ unit: String, _ procedure: String, _ received: String) -> AlertSchedule {
        let u = config.unitID(unit)!
        let ref = config.procedureRef(procedure, unit: u)
        let cal = config.workingCalendar(unit: u, procedure: ref)
        let d = config.deadline(unit: u, procedure: ref, received: t(received))
        return AlertRules.schedule(
            deadline: d, clock: EpisodeClock(calendar: cal, start: d.start, pauses: []), rescheduledTo: nil,
            thresholds: config.alerting.thresholds(for: procedure, sla: d.sla))
    }

    @Test("same-day received 14:00: warning 15:30, critical 16:30, overdue 17:00, escalated 08:30 next working day")
    func sameDayThresholds() {
        let s = schedule("760", Fixture.sameDay, "2022-05-20 14:00")
        #expect(fmt(s.instants[.warning]) == "2022-05-20 15:30")
        #expect(fmt(s.instants[.critical]) == "2022-05-20 16:30")
        #expect(fmt(s.instants[.overdue]) == "2022-05-20 17:00")
        #expect(fmt(s.instants[.escalated]) == "2022-05-23 08:30")
    }

    @Test("thresholds that fall before T0 fire at T0")
    func thresholdsBeforeT0() {
        // Cut-off 16:00, received 16:00: 60 working minutes to 17:00, so warning (90 before) is before T0.
        let s = schedule("760", Fixture.sameDayCutoff16, "2022-05-18 16:00")
        #expect(fmt(s.instants[.warning]) == "2022-05-18 16:00")
        #expect(fmt(s.instants[.critical]) == "2022-05-18 16:30")
        // Received in the lunch break: T0 is 13:00, warning would be 13:30 anyway; received 16:45 with cut-off 16:00
        // moves to the next day.
        let late = schedule("760", Fixture.sameDayCutoff16, "2022-05-18 16:45")
        #expect(fmt(late.instants[.overdue]) == "2022-05-19 17:00")
    }

    @Test("30 working minutes before a 13:30 deadline is 11:30")
    func minutesBeforeAcrossLunch() {
        let cal = config.calendar(id: "hcmc-standard")!
        let start = t("2022-05-18 07:30")
        let due = t("2022-05-18 13:30")
        let offset = ThresholdRule.minutesBefore(30).offset(dueOffset: cal.workingSeconds(from: start, to: due))
        #expect(fmt(cal.add(workingSeconds: offset, to: start)) == "2022-05-18 11:30")
    }

    @Test("days:N thresholds: warning at 75 %, critical at 90 %, escalated one day after")
    func daysThresholds() {
        let s = schedule("760", Fixture.days3, "2022-05-20 10:00")  // due Wed 25 10:00
        // 75 % of 1440 = 1080 minutes: Fri 330, Mon 480, Tue 07:30 + 270 = 13:30.
        #expect(fmt(s.instants[.warning]) == "2022-05-24 13:30")
        // 90 % of 1440 = 1296 minutes: Fri 330, Mon 480, Tue 480, Wed 07:30 + 6 = 07:36.
        #expect(fmt(s.instants[.critical]) == "2022-05-25 07:36")
        #expect(fmt(s.instants[.escalated]) == "2022-05-26 10:00")
        // A catalog override: warning 120 minutes before (days:1 due Thu 10:00 → Wed 15:00).
        let o = schedule("760", Fixture.days1, "2022-05-18 10:00")
        #expect(fmt(o.instants[.warning]) == "2022-05-19 08:00")
    }

    @Test("hours:N thresholds: 75 % and 90 % used")
    func hoursThresholds() {
        let s = schedule("760", Fixture.hours4, "2022-05-18 10:00")  // 240 min, due 15:30
        #expect(fmt(s.instants[.warning]) == "2022-05-18 14:30")  // 180 used
        #expect(fmt(s.instants[.critical]) == "2022-05-18 15:06")  // 216 used
        #expect(fmt(s.instants[.escalated]) == "2022-05-18 16:30")
    }

    @Test("working minutes: adjacent sessions form one stretch; counts are symmetric")
    func workingMinutes() {
        let u = config.unitID("27010")!
        let cal = config.workingCalendar(unit: u, procedure: config.procedureRef(Fixture.sameDay, unit: u))
        #expect(config.calendar(id: "notary-evening")!.workingSeconds(from: t("2022-05-17 16:30"), to: t("2022-05-17 17:30")) == 1800)
        #expect(cal.workingSeconds(from: t("2022-05-17 16:30"), to: t("2022-05-17 17:30")) == 3600)
        #expect(fmt(cal.add(workingSeconds: 3600, to: t("2022-05-17 16:30"))) == "2022-05-17 17:30")
        let std = config.calendar(id: "hcmc-standard")!
        #expect(std.workingSeconds(from: t("2022-05-20 10:00"), to: t("2022-05-25 10:00")) == 1440 * 60)
        #expect(std.workingSeconds(from: t("2022-05-25 10:00"), to: t("2022-05-20 10:00")) == -1440 * 60)
        #expect(fmt(std.nextWorkingInstant(atOrAfter: t("2022-05-18 11:30"))) == "2022-05-18 13:00")
    }

    @Test("fee pause across a weekend moves the deadline by the paused working time")
    func pauseAcrossWeekend() {
        let cal = config.calendar(id: "hcmc-standard")!
        let d = cal.deadline(sla: .days(1), received: t("2022-05-20 10:00"))
        #expect(fmt(d.due) == "2022-05-23 10:00")
        let clock = EpisodeClock(
            calendar: cal, start: d.start, pauses: [Pause(start: t("2022-05-20 16:00"), end: t("2022-05-23 09:00"))])
        #expect(fmt(clock.instant(atOffset: d.dueOffset)) == "2022-05-23 14:00")
        let open = EpisodeClock(calendar: cal, start: d.start, pauses: [Pause(start: t("2022-05-20 16:00"), end: nil)])
        #expect(open.instant(atOffset: d.dueOffset) == nil)
    }

    @Test("RFC 3339 parsing and formatting")
    func rfc3339() {
        #expect(RFC3339.parse("2022-05-18T08:15:00+07:00") == RFC3339.parse("2022-05-18T01:15:00Z"))
        #expect(RFC3339.parse("2022-05-18T08:15:00.123+07:00") == RFC3339.parse("2022-05-18T08:15:00+07:00"))
        #expect(RFC3339.format(RFC3339.parse("2022-05-18T01:15:00Z")!) == "2022-05-18T08:15:00+07:00")
        #expect(RFC3339.parse("2022-05-18T08:15:00") == nil)
        #expect(RFC3339.parse("2022-02-30T08:15:00Z") == nil)
        #expect(RFC3339.parse("2022-05-18 08:15:00Z") == nil)
        #expect(LocalDate("2022-05-18")?.weekday == 2)
    }
}
