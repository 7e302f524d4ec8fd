import SameDayCore
import SameDayFormats

/// The dossiers overdue or at risk at the end of a period, read from the alerts: a dossier whose latest alert up
/// to the period's end is a warning, critical, overdue or escalated one was still open then (its resolution would
/// have raised `cleared` or `resolved_late`, docs/rules.md §5.3). Only dossiers that raised an alert are seen; a
/// dossier that went on to wait for a supplement or fees after its alert is still listed (it raises nothing more).
public enum DossierWatch {
    static let openLevels: Set<String> = ["at_risk", "warning", "critical", "overdue", "escalated"]
    static let levelOrder = ["at_risk", "warning", "critical", "overdue", "escalated", "resolved_late", "cleared"]

    /// One unit's `at_risk` flags over a period, by outcome (docs/rules.md §5.6).
    public struct ForecastOutcome: Sendable, Equatable {
        public var unit: String
        /// Flagged, then late (overdue, escalated or resolved late).
        public var flaggedLate = 0
        /// Flagged, then resolved on time (`cleared`).
        public var flaggedSaved = 0
        /// Late same-day dossiers never flagged (nil without a configuration to tell same-day procedures).
        public var missed: Int?
    }

    /// The period's dossiers by what the forecast said of them and how they ended, per unit, from their alerts.
    public static func forecastOutcomes(_ alerts: [ReportAlert], period: Period, configuration: Configuration?)
        -> [ForecastOutcome]
    {
        var levels: [String: (unit: String, procedure: String, levels: Set<String>)] = [:]
        for a in inPeriod(alerts, period: period) where !a.dossier.isEmpty {
            levels[a.dossier, default: (a.unit, a.procedure, [])].levels.insert(a.level)
        }
        var byUnit: [String: ForecastOutcome] = [:]
        for (_, d) in levels {
            let flagged = d.levels.contains("at_risk")
            let late = !d.levels.isDisjoint(with: ["overdue", "escalated", "resolved_late"])
            var outcome = byUnit[d.unit] ?? ForecastOutcome(unit: d.unit, missed: configuration == nil ? nil : 0)
            if flagged && late {
                outcome.flaggedLate += 1
            } else if flagged && d.levels.contains("cleared") {
                outcome.flaggedSaved += 1
            } else if !flagged, late, let cfg = configuration, let unit = cfg.unitID(d.unit),
                cfg.forecastsBlock(cfg.unit(unit).block), cfg.sla(cfg.procedureRef(d.procedure, unit: unit)) == .sameDay
            {
                outcome.missed! += 1
            } else {
                continue
            }
            byUnit[d.unit] = outcome
        }
        return byUnit.values.sorted {
            let a = $0.flaggedLate + $0.flaggedSaved + ($0.missed ?? 0)
            let b = $1.flaggedLate + $1.flaggedSaved + ($1.missed ?? 0)
            return a != b ? a > b : $0.unit < $1.unit
        }
    }

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
