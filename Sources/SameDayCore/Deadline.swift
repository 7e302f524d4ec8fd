/// A computed deadline for one episode, with what went into it (for `explain` and `deadline`).
public struct Deadline: Sendable, Hashable {
    public var sla: SLA
    /// The raw T0: `occurredAt` of `received` or of the last `supplement_received`.
    public var received: Instant
    /// T0 moved into the next session when it was outside all sessions.
    public var start: Instant
    /// The deadline before pauses and reschedules.
    public var due: Instant
    /// Working seconds from `start` to `due`.
    public var dueOffset: Int64
    /// Same-day only: the cut-off that applied (seconds after midnight), where it came from, and whether T0 was
    /// after it.
    public var cutoff: Int32?
    public var cutoffSource: CutoffSource?
    public var afterCutoff: Bool
    public var calendar: String
}

extension WorkCalendar {
    /// The deadline of an episode whose clock starts at `received` (docs/rules.md §4.1–4.3), on the view of the
    /// calendar that counts for the procedure (`Configuration.workingCalendar`).
    /// - Parameter cutoff: the catalog entry's own cut-off; it replaces the day's on days whose last applicable
    ///   session ends after it, and the day's own applies on the others (docs/rules.md §4.2).
    public func deadline(sla: SLA, received: Instant, cutoff catalogCutoff: Int32? = nil) -> Deadline {
        let start = nextWorkingInstant(atOrAfter: received)
        switch sla {
        case .sameDay:
            let day = LocalTime.day(of: start)
            let limits = sameDayLimits(ofDay: day)
            var cutoff = limits.cutoff
            var source = limits.cutoffSource
            if let catalogCutoff, limits.close > catalogCutoff {
                cutoff = catalogCutoff
                source = .catalog
            }
            let sod = start - LocalTime.start(ofDay: day)
            let after = sod > Int64(cutoff)
            var dueDay: Int64? = day
            if after { dueDay = nextWorkingDay(after: day) }
            let due =
                dueDay.map { LocalTime.start(ofDay: $0) + Int64(sameDayLimits(ofDay: $0).close) } ?? WorkCalendar.never
            return Deadline(
                sla: sla, received: received, start: start, due: due,
                dueOffset: workingSeconds(from: start, to: due), cutoff: cutoff, cutoffSource: source,
                afterCutoff: after, calendar: id)
        case .hours(let n):
            let w = Int64(n) * 3600
            return Deadline(
                sla: sla, received: received, start: start, due: add(workingSeconds: w, to: start), dueOffset: w,
                cutoff: nil, cutoffSource: nil, afterCutoff: false, calendar: id)
        case .days(let n):
            let w = Int64(n) * SLA.workingDaySeconds
            return Deadline(
                sla: sla, received: received, start: start, due: add(workingSeconds: w, to: start), dueOffset: w,
                cutoff: nil, cutoffSource: nil, afterCutoff: false, calendar: id)
        }
    }
}

/// A fee pause of the clock (`fee_requested` … `fee_paid`); `end` is nil while it lasts.
public struct Pause: Sendable, Hashable {
    public var start: Instant
    public var end: Instant?
}

/// The SLA clock of one episode: working time from `start`, not counting pauses.
struct EpisodeClock {
    let calendar: WorkCalendar
    let start: Instant
    let pauses: [Pause]

    /// The earliest instant at which `offset` working seconds have been used; nil when that falls in a pause that
    /// has not ended (the clock is stopped, nothing can be scheduled).
    func instant(atOffset offset: Int64) -> Instant? {
        var cur = start
        var remaining = offset
        for p in pauses where p.end.map({ $0 > cur }) ?? true {
            let ps = max(p.start, cur)
            let avail = calendar.workingSeconds(from: cur, to: ps)
            if remaining <= avail { return calendar.add(workingSeconds: remaining, to: cur) }
            remaining -= avail
            guard let pe = p.end else { return nil }
            cur = pe
        }
        return calendar.add(workingSeconds: remaining, to: cur)
    }

    /// Working seconds used from `start` up to `t`, pauses excluded.
    func offset(of t: Instant) -> Int64 {
        var used = calendar.workingSeconds(from: start, to: t)
        for p in pauses {
            let a = max(p.start, start)
            let b = min(p.end ?? t, t)
            if b > a { used -= calendar.workingSeconds(from: a, to: b) }
        }
        return used
    }
}

/// The threshold instants of an episode for the clock levels.
public struct AlertSchedule: Sendable, Hashable {
    /// Instant per clock level; nil = not scheduled (skipped or clock paused).
    public struct Instants: Sendable, Hashable {
        // Four fixed slots, not a dictionary: this is computed on every event and timer.
        var slots: (Instant?, Instant?, Instant?, Instant?) = (nil, nil, nil, nil)
        public subscript(level: AlertLevel) -> Instant? {
            get {
                switch level {
                case .warning: slots.0
                case .critical: slots.1
                case .overdue: slots.2
                case .escalated: slots.3
                default: nil
                }
            }
            set {
                switch level {
                case .warning: slots.0 = newValue
                case .critical: slots.1 = newValue
                case .overdue: slots.2 = newValue
                case .escalated: slots.3 = newValue
                default: break
                }
            }
        }
        public static func == (a: Instants, b: Instants) -> Bool {
            a.slots.0 == b.slots.0 && a.slots.1 == b.slots.1 && a.slots.2 == b.slots.2 && a.slots.3 == b.slots.3
        }
        public func hash(into h: inout Hasher) {
            h.combine(slots.0)
            h.combine(slots.1)
            h.combine(slots.2)
            h.combine(slots.3)
        }
    }
    public var instants: Instants
    /// The deadline alerts measure against (`newDueAt` after a reschedule, moved by pauses).
    public var alertDue: Instant?
}

enum AlertRules {
    /// Threshold instants per docs/rules.md §5.2 for an episode, given its pauses and reschedule.
    /// - Parameter skipping: bit mask (bit = level raw value) of levels not to compute, e.g. already fired.
    static func schedule(
        deadline: Deadline, clock: EpisodeClock, rescheduledTo newDue: Instant?, thresholds: Thresholds,
        skipping: UInt8 = 0
    ) -> AlertSchedule {
        var dueOffset = deadline.dueOffset
        if let newDue { dueOffset = max(0, clock.offset(of: newDue)) }
        var out = AlertSchedule.Instants()
        func put(_ level: AlertLevel, _ offset: Int64) {
            guard skipping & (1 << level.rawValue) == 0 || level == .overdue else { return }
            if let t = clock.instant(atOffset: max(0, offset)) { out[level] = max(t, deadline.start) }
        }
        put(.warning, thresholds.warning.offset(dueOffset: dueOffset))
        put(.critical, thresholds.critical.offset(dueOffset: dueOffset))
        put(.overdue, dueOffset)
        put(.escalated, thresholds.escalated.offset(dueOffset: dueOffset))
        // Levels always come in order (docs/rules.md §5.2): whatever a configuration mixes (minutes before one level,
        // a percentage for the next), a level is never later than the one after it, so a supervisor never
        // reads `critical` before `warning`.
        for (level, next) in [(AlertLevel.critical, AlertLevel.overdue), (.warning, .critical)] {
            if let a = out[level], let b = out[next], a > b { out[level] = b }
        }
        var alertDue = clock.instant(atOffset: dueOffset)
        if let newDue, let o = out[.overdue], o < newDue {
            // A promise outside working hours is kept until the promised instant itself.
            out[.overdue] = newDue
            alertDue = newDue
        }
        return AlertSchedule(instants: out, alertDue: alertDue)
    }
}
