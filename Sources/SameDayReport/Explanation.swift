import Foundation
import SameDayCore

/// The human-readable explanation of a dossier: `sameday explain`'s text, and the board's dossier timeline.
public enum Explanation {
    /// The sessions of one day, each marked counted or not and why (docs/rules.md §2.3, §4).
    public static func sessionLines(
        day: Int64, calendar cal: WorkCalendar, procedure p: ProcedureRef, config cfg: Configuration
    )
        -> [String]
    {
        let def = cal.definition
        let date = LocalDate(dayNumber: day)
        if def.holidays.contains(day) { return ["     \(date): holiday, no sessions"] }
        let sessions = def.day(day).sessions
        if sessions.isEmpty { return ["     \(date): no sessions"] }
        var out = ["     sessions on \(date):"]
        for s in sessions {
            let why: String
            if !s.exists(onDay: day) {
                why = "not counted: the session does not exist on this date"
            } else if !s.extra {
                why = "counted: regular session"
            } else if cfg.sla(p) != .sameDay {
                why = "not counted: extra sessions serve same-day procedures only"
            } else if cal.serving?.contains(s.procedures) == true {
                why =
                    "counted: extra session serving "
                    + (s.procedures.isEmpty ? "every same-day procedure" : "this procedure")
            } else {
                why = "not counted: extra session for " + s.procedures.joined(separator: ", ") + " only"
            }
            out.append("       \(s.text)  \(why)")
        }
        return out
    }

    /// - Parameter prediction: what the queue forecast says of the dossier at `clock`, while it is queued.
    public static func text(
        _ d: Dossier, config cfg: Configuration, alerts: [Alert], clock: Instant,
        prediction: QueueForecast.Prediction? = nil
    ) -> String {
        let st = d.state(config: cfg)
        var out: [String] = []
        func f(_ t: Instant?) -> String { t.map(RFC3339.format) ?? "—" }
        out.append("Dossier \(d.code)")
        if let u = st.unit, let p = st.procedure {
            let unit = cfg.unit(u)
            let entry = cfg.catalogEntry(p)
            out.append("  unit:      \(unit.code) \(unit.name) (block \(unit.block.rawValue))")
            out.append(
                "  procedure: \(cfg.procedureCode(p)) "
                    + (entry.map { "\($0.name), SLA \($0.sla)" }
                        ?? "not in catalog, default SLA \(cfg.alerting.defaultSla)"))
            let cal = cfg.workingCalendar(unit: u, procedure: p)
            let services = cal.serving.map { $0.isEmpty ? "" : ", with the extra sessions that serve it" } ?? ""
            out.append(
                "  calendar:  \(cal.id) — "
                    + (cfg.sla(p) == .sameDay
                        ? "same-day: regular sessions\(services.isEmpty ? " (no extra session serves it)" : services)"
                        : "\(cfg.sla(p)): regular sessions only (extra sessions add no working time)"))
            if let entry, case .unit(let owner) = entry.scope {
                out.append("  scope:     registered by unit \(owner) for itself and its child units")
            }
        }
        out.append("Events in applied order (occurredAt, seq, arrival):")
        for (i, e) in st.applied.enumerated() {
            out.append(
                "  \(i + 1). \(f(e.at))  \(e.type.name)" + (e.seq.map { "  seq \($0)" } ?? "")
                    + "  arrival \(e.arrival)")
        }
        out.append("Episodes:")
        if let u = st.unit, let p = st.procedure {
            let cal = cfg.workingCalendar(unit: u, procedure: p)
            for ep in st.episodes {
                let dl = ep.deadline
                out.append(
                    "  #\(ep.number) T0 \(f(dl.received))"
                        + (dl.start != dl.received ? " → moved into the next counted session: \(f(dl.start))" : ""))
                var days = [LocalTime.day(of: dl.start)]
                if LocalTime.day(of: dl.due) != days[0], dl.due < WorkCalendar.never {
                    days.append(LocalTime.day(of: dl.due))
                }
                for day in days {
                    out.append(contentsOf: sessionLines(day: day, calendar: cal, procedure: p, config: cfg))
                }
                if let c = dl.cutoff {
                    out.append(
                        "     same-day cut-off \(String(format: "%02d:%02d", c / 3600, c / 60 % 60)) "
                            + "(\(dl.cutoffSource?.rawValue ?? "")): T0 is "
                            + (dl.afterCutoff
                                ? "after it → end of the next working day" : "at or before it → end of the day"))
                }
                out.append("     \(dl.sla): \(dl.dueOffset / 60) working minutes → due \(f(dl.due))")
                for p in ep.pauses {
                    out.append("     paused (fee) \(f(p.start)) … \(p.end.map(RFC3339.format) ?? "still paused")")
                }
                if let from = ep.extendedFrom {
                    out.append(
                        "     extended from \(f(from)) to \(f(dl.due)) (an extension the law allows for this field, "
                            + "at most \(cfg.alerting.extensionMaxWorkingDays) working day(s)); lateness is judged "
                            + "against it")
                }
                if let s = ep.stoppedAt { out.append("     stopped for a supplement at \(f(s))") }
                if let r = ep.rescheduledTo {
                    out.append("     rescheduled to \(f(r)) (\(ep.reschedules) time(s)); alerts measure against it")
                }
            }
        }
        if let promised = st.promisedAt {
            out.append(
                "Appointment slip (promisedAt of the first received): \(f(promised)); computed due "
                    + "\(f(st.dueAtReception)) — "
                    + (st.promiseDiffers
                        ? "a different day: counted in received_promise_differs (the unit's system or a calendar "
                            + "disagrees with these rules)"
                        : "the same day"))
        }
        out.append("Deadline in force (judges lateness): \(f(st.judgingDue))")
        if let s = d.alertSchedule(state: st, config: cfg) {
            out.append("Alert thresholds of the current episode (alert due \(f(s.alertDue))):")
            for l in AlertLevel.clockLevels {
                out.append("  \(l.name): \(s.instants[l].map(RFC3339.format) ?? "skipped")")
            }
        }
        out.append("Alerts fired (clock run to \(f(clock))):")
        let mine = alerts.filter { $0.dossier == d.code }
        if mine.isEmpty { out.append("  none") }
        for a in mine {
            out.append(
                "  \(a.level.name) at \(f(a.firedAt)) (episode \(a.episode), due \(f(a.due)), minutes left \(a.minutesLeft.map(String.init) ?? "—"))"
                    + (a.lateFired ? " late-fired" : "") + "  id \(a.alertId)"
                    + (a.recipients.isEmpty ? "" : "  → " + a.recipients.joined(separator: ", ")))
        }
        // Why the queue forecast flagged it (docs/rules.md §5.6), and what it says now.
        for a in mine where a.level == .atRisk {
            out.append(
                "Flagged at risk at \(f(a.firedAt)): \(a.queueAhead.map(String.init) ?? "—") dossier(s) of the unit's "
                    + "same-day queue received before it; predicted completion \(f(a.predictedAt)), after the "
                    + "deadline \(f(a.due))")
        }
        if let p = prediction {
            out.append(
                "Queue forecast now: \(p.queueAhead) ahead in the unit's queue at "
                    + "\(String(format: "%.1f", p.perHour)) dossier(s) per working hour; predicted completion "
                    + "\(f(p.predictedAt)) at confidence \(p.confidence), deadline \(f(p.due)): "
                    + (p.atRisk ? "at risk" : "on track"))
        }
        out.append(
            "Status: \(st.status.rawValue)"
                + (st.closure.map { " at \(f($0.at))" + ($0.outcome.map { " (\($0.name))" } ?? "") } ?? ""))
        out.append("Classification: \(st.classification?.rawValue ?? (st.closure == nil ? "open" : "—"))")
        out.append("Anomalies: " + (st.anomalies.names.isEmpty ? "none" : st.anomalies.names.joined(separator: ", ")))
        return out.joined(separator: "\n")
    }
}
