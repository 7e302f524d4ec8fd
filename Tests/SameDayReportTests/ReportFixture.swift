import SameDayCore
import SameDayFormats
import SameDayReport

/// A small period (15–17/05/2022) of four units, one per block, with alerts: enough to see every part of the page.
enum ReportFixture {
    static let from = LocalDate(year: 2022, month: 5, day: 15)!
    static let period = Period(from: from, to: from.adding(days: 2))

    static func figures(
        online: Int, direct: Int, early: Int, onTime: Int, late: Int, sameDay: Int, overdue: Int = 0
    ) -> RollupFigures {
        var f = RollupFigures()
        f.receivedOnline = online
        f.receivedDirectPostal = direct
        f.resolvedEarly = early
        f.resolvedOnTime = onTime
        f.resolvedLate = late
        f.inProgressOverdue = overdue
        f.inProgressOnTime = online + direct - early - onTime - late - overdue
        f.sameDayReceived = sameDay
        f.sameDayResolvedInTime = sameDay
        f.sameDayResolvedSameDay = sameDay
        return f
    }

    static let units = [
        UnitRow(
            unit: "760", unitName: "UBND Quận 1 <b>&</b> \"Bến Nghé\"", block: .district,
            figures: figures(
                online: 150_000, direct: 90_000, early: 200_000, onTime: 29_000, late: 642, sameDay: 229_642)),
        UnitRow(
            unit: "26734", unitName: "UBND Phường Tân Định", block: .commune,
            figures: figures(online: 100_000, direct: 99_275, early: 150_000, onTime: 49_275, late: 0, sameDay: 199_275)
        ),
        UnitRow(
            unit: "SNV", unitName: "Sở Nội vụ", block: .department,
            figures: figures(online: 20_000, direct: 1_000, early: 15_000, onTime: 5_000, late: 300, sameDay: 20_696)),
        UnitRow(
            unit: "CA-Q1", unitName: "Công an Quận 1", block: .vertical,
            figures: figures(online: 0, direct: 250_000, early: 200_000, onTime: 44_696, late: 0, sameDay: 244_696)),
    ]

    static var rollup: Rollup { Rollup(unitRows: units, period: period) }

    /// The city per day: a third of the period's figures each day (the chart only needs a shape).
    static var daily: [RollupFigures] {
        let city = rollup.blocks.first { $0.block == nil }!.figures
        var first = RollupFigures()
        first.receivedOnline = city.receivedOnline / 2
        first.resolvedEarly = city.resolvedEarly / 3
        first.resolvedLate = city.resolvedLate
        var second = first
        second.resolvedLate = 0
        return [first, second, city - first - second]
    }

    static func alert(
        _ id: String, _ level: String, dossier: String, unit: String = "760", block: String = "district",
        due: String = "2022-05-17T17:00:00+07:00", fired: String, left: Int = 0, lateFired: Bool = false
    ) -> ReportAlert {
        ReportAlert(
            alertId: id, level: level, dossier: dossier, unit: unit, block: block, procedure: "1.001.H29", due: due,
            firedAt: fired, minutesLeft: left, lateFired: lateFired)
    }

    static let alerts = [
        // Overdue at the end: escalated on the 17th, never resolved.
        alert("a1", "warning", dossier: "760-220517-0001", fired: "2022-05-17T15:30:00+07:00", left: 90),
        alert("a2", "overdue", dossier: "760-220517-0001", fired: "2022-05-17T17:00:00+07:00", left: 0),
        alert("a3", "escalated", dossier: "760-220517-0001", fired: "2022-05-17T18:00:00+07:00", left: -60),
        alert("a3", "escalated", dossier: "760-220517-0001", fired: "2022-05-17T18:00:00+07:00", left: -60),
        // At risk: a days:N dossier due after the period, warned on the 17th.
        alert(
            "b1", "warning", dossier: "SNV-220515-0002", unit: "SNV", block: "department",
            due: "2022-05-19T10:00:00+07:00", fired: "2022-05-17T09:00:00+07:00", left: 600),
        // Warned, then cleared: not listed.
        alert(
            "c1", "critical", dossier: "26734-220516-0003", unit: "26734", block: "commune",
            fired: "2022-05-16T16:30:00+07:00", left: 30),
        alert(
            "c2", "cleared", dossier: "26734-220516-0003", unit: "26734", block: "commune",
            fired: "2022-05-16T16:40:00+07:00", left: 20),
        // After the period: ignored (the dossier is open at the end and resolved late later).
        alert("d1", "resolved_late", dossier: "760-220517-0001", fired: "2022-05-18T08:00:00+07:00", left: -90),
        // Before the period: not counted, but it would say the dossier was open.
        alert(
            "e1", "warning", dossier: "760-220514-0009", fired: "2022-05-14T15:30:00+07:00", left: 90, lateFired: true),
        alert("e2", "cleared", dossier: "760-220514-0009", fired: "2022-05-15T08:00:00+07:00", left: 90),
    ]

    static func input(alerts: [ReportAlert]? = ReportFixture.alerts) -> HTMLReportInput {
        HTMLReportInput(
            rollup: rollup, daily: daily, alerts: alerts, rollupSources: ["fixture/rollups"],
            alertSources: alerts == nil ? [] : ["fixture/alerts"], configuration: nil)
    }
}
