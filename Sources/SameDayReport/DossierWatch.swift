import SameDayCore
import SameDayFormats

/// The dossiers overdue or at risk at the end of a period, read from the alerts: a dossier whose latest alert up
/// to the period's end is a warning, critical, overdue or escalated one was still open then (its resolution would
/// have raised `cleared` or `resolved_late`, docs/rules.md §5.3). Only dossiers that raised an alert are seen; a
/// dossier that went on to wait for a supplement or fees after its alert is still listed (it raises nothing more).
public enum DossierWatch {
    static let openLevels: Set<String> = ["warning", "critical", "overdue", "escalated"]
    static let levelOrder = ["warning", "critical", "overdue", "escalated", "resolved_late", "cleared"]

    /// The period's alerts (fired in `[start, end)`), each alert id once.
    public static func inPeriod(_ alerts: [ReportAlert], period: Period) -> [ReportAlert] {
        var seen = Set<String>()
        return alerts.filter { a in
            guard let t = a.firedInstant, t >= period.start, t < period.end else { return false }
            return seen.insert(a.alertId).inserted
        }
    }

    /// Per dossier, its latest alert fired before `end` when that alert leaves it open; sorted by dossier code.
    public static func openAtEnd(_ alerts: [ReportAlert], end: Instant) -> [ReportAlert] {
        var latest: [String: (alert: ReportAlert, at: Instant)] = [:]
        for a in alerts where !a.dossier.isEmpty {
            guard let t = a.firedInstant, t < end else { continue }
            if let current = latest[a.dossier], !isLater(a, t, than: current.alert, current.at) { continue }
            latest[a.dossier] = (a, t)
        }
        return latest.values.map(\.alert).filter { openLevels.contains($0.level) }.sorted { $0.dossier < $1.dossier }
    }

    /// Episode first (a restart starts a new one), then firing time, then level (a resolution fired in the same
    /// second as a threshold closes it).
    static func isLater(_ a: ReportAlert, _ at: Instant, than b: ReportAlert, _ bt: Instant) -> Bool {
        let ea = a.episode ?? 1
        let eb = b.episode ?? 1
        if ea != eb { return ea > eb }
        if at != bt { return at > bt }
        return (levelOrder.firstIndex(of: a.level) ?? -1) > (levelOrder.firstIndex(of: b.level) ?? -1)
    }

    /// Working minutes from `at` to the alert's deadline on the dossier's calendar (negative once it has passed);
    /// nil when the unit is not in the configuration or the alert has no deadline.
    public static func workingMinutesLeft(_ a: ReportAlert, at: Instant, configuration c: Configuration) -> Int? {
        guard let due = a.dueInstant, let unit = c.unitID(a.unit) else { return nil }
        let calendar = c.workingCalendar(unit: unit, procedure: c.procedureRef(a.procedure, unit: unit))
        let seconds =
            due >= at ? calendar.workingSeconds(from: at, to: due) : -calendar.workingSeconds(from: due, to: at)
        return Int(seconds / 60)
    }
}
