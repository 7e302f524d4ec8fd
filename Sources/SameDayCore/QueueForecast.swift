#if canImport(Glibc)
    import Glibc  // log and exp only: the core does no I/O
#elseif canImport(Darwin)
    import Darwin
#endif

/// Predicts, from each unit's live queue, which open same-day dossiers will miss their deadline (docs/rules.md §5.7,
/// the `at_risk` alert). Fixed thresholds warn when most of the working time is gone; a unit that received sixty
/// certifications in an hour and resolves twelve an hour will miss the day for the last of them, and that is
/// knowable hours earlier from the queue and the unit's pace.
///
/// Per unit it keeps:
/// - the queue: its open same-day dossiers that are running (not paused, not waiting for a supplement), in order of
///   receipt, each with its current deadline;
/// - its pace: resolutions of queued dossiers per working second *while the queue was not empty* (idle time says
///   nothing about capacity), per working day for the last `historyDays` days it worked, weighted toward recent days
///   and the same weekday;
/// - its errors: how far its own past predictions were off (the log of actual over predicted working time, from
///   each dossier's entry in the queue to its resolution), as a running mean and variance.
///
/// The dossier at position `k` is predicted to take `k / pace` working seconds, scaled by the error's quantile at
/// the configured confidence; it is at risk when that passes its deadline on the unit's calendar. Everything is a
/// function of the events and the instants they are applied at, so a replay predicts what the live worker did,
/// minute for minute; the state is bounded by units × (`historyDays` + the queue), never by history.
public struct QueueForecast: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Flag when the chance of missing the deadline is at least this.
        public var confidence: Double = 0.5
        /// Working days of pace kept per unit.
        public var historyDays = 10
        /// Each older working day counts this much less than the one after it.
        public var dayDecay = 0.7
        /// A day of the same weekday as today counts this many times more (Monday mornings are Mondays).
        public var sameWeekdayWeight = 2.0
        /// How often a unit whose queue is not empty is looked at again even without events (its pace drops while
        /// nothing is resolved).
        public var recheckSeconds: Int64 = 15 * 60
        /// Most dossiers queued per unit (beyond, the newest are not tracked: the state stays bounded).
        public var maxQueue = 4096
        public init() {}
    }

    /// A change of a dossier's prediction.
    public struct Flag: Sendable, Equatable {
        public var slot: Int
        public var unit: UnitID
        /// True: now at risk; false: back on track.
        public var atRisk: Bool
        public var at: Instant
        /// The predicted completion (at the configured confidence).
        public var predictedAt: Instant
        /// Dossiers of the unit's queue received before this one.
        public var queueAhead: Int
        /// The pace used, in dossiers per working hour.
        public var perHour: Double
        public var due: Instant
    }

    /// What the forecast says of one queued dossier now (`sameday explain`).
    public struct Prediction: Sendable, Equatable {
        public var queueAhead: Int
        public var perHour: Double
        public var predictedAt: Instant
        public var due: Instant
        public var atRisk: Bool
        public var confidence: Double
    }

    struct Queued: Sendable {
        var slot: Int
        var receivedAt: Instant
        var due: Instant
        /// When it entered the queue and the working seconds predicted then (the error is measured against it).
        var enteredAt: Instant
        var predictedSeconds: Double
        var atRisk = false
    }

    /// Counted in integers, so the sums do not depend on how the time was split between calls (a replay and a live
    /// worker look at a unit at different instants between events).
    struct Day: Sendable {
        var day: Int64
        var served: Int64
        var busySeconds: Int64
    }

    struct UnitModel: Sendable {
        var queue: [Queued] = []
        /// Working days, oldest first, at most `historyDays`.
        var days: [Day] = []
        /// Busy time is credited up to here while the queue is not empty.
        var busySince: Instant?
        var errorMean = 0.0
        var errorVariance = 0.25
        var errors = 0
    }

    public let settings: Settings
    private(set) var units: [UnitModel]
    private let z: Double

    public init(unitCount: Int, settings: Settings = Settings()) {
        self.settings = settings
        units = Array(repeating: UnitModel(), count: unitCount)
        nextCheckAt = Array(repeating: nil, count: unitCount)
        z = QueueForecast.normalQuantile(1 - min(max(settings.confidence, 0.01), 0.99))
    }

    /// Prior pace before a unit has a working hour of its own: what all units together show, or one dossier per
    /// ten working minutes before anything is known.
    private var pooled: (served: Int64, busy: Int64) = (0, 0)

    public func isQueued(unit: UnitID, slot: Int) -> Bool {
        units[Int(unit)].queue.contains { $0.slot == slot }
    }

    // MARK: Observations

    /// The dossier in `slot` changed at `t`: `due` is its deadline while it is a running same-day dossier of `unit`
    /// (queued), nil otherwise; `resolved` when the change is its resolution. Returns the flags that changed at the
    /// unit.
    public mutating func observe(
        unit u: UnitID, slot: Int, receivedAt: Instant, due: Instant?, resolved: Bool, at t: Instant,
        calendar: WorkCalendar
    ) -> [Flag] {
        guard Int(u) < units.count else { return [] }
        credit(u, to: t, calendar: calendar)
        var m = units[Int(u)]
        if let i = m.queue.firstIndex(where: { $0.slot == slot }) {
            let q = m.queue.remove(at: i)
            if resolved {
                record(&m, served: 1, at: t)
                let actual = Double(max(0, calendar.workingSeconds(from: q.enteredAt, to: t)))
                let error = log((actual + 600) / (q.predictedSeconds + 600))
                let alpha = m.errors < 20 ? 1 / Double(m.errors + 2) : 0.05
                let delta = error - m.errorMean
                m.errorMean += alpha * delta
                m.errorVariance = (1 - alpha) * (m.errorVariance + alpha * delta * delta)
                m.errors += 1
            }
        }
        if let due, m.queue.count < settings.maxQueue {
            var i = m.queue.count
            while i > 0 && (m.queue[i - 1].receivedAt, m.queue[i - 1].slot) > (receivedAt, slot) { i -= 1 }
            let pace = self.pace(m, day: LocalTime.day(of: t))
            m.queue.insert(
                Queued(
                    slot: slot, receivedAt: receivedAt, due: due, enteredAt: t,
                    predictedSeconds: Double(i + 1) / pace),
                at: i)
        }
        if m.queue.isEmpty {
            m.busySince = nil
        } else if m.busySince == nil {
            m.busySince = t
        }
        units[Int(u)] = m
        return evaluate(u, at: t, calendar: calendar)
    }

    /// The dossier left the engine (retired): it leaves the queue without counting as served.
    public mutating func forget(unit u: UnitID, slot: Int) {
        guard Int(u) < units.count else { return }
        units[Int(u)].queue.removeAll { $0.slot == slot }
        if units[Int(u)].queue.isEmpty {
            units[Int(u)].busySince = nil
            nextCheckAt[Int(u)] = nil
        }
    }

    /// Looks at the unit again at `t` (its timer): the pace may have dropped, and deadlines come closer.
    public mutating func recheck(unit u: UnitID, at t: Instant, calendar: WorkCalendar) -> [Flag] {
        guard Int(u) < units.count else { return [] }
        credit(u, to: t, calendar: calendar)
        return evaluate(u, at: t, calendar: calendar)
    }

    /// When each unit must be looked at again (nil: its queue is empty).
    public private(set) var nextCheckAt: [Instant?]

    // MARK: The model

    /// Dossiers per working second, from the unit's recent days and the pooled prior.
    func pace(_ m: UnitModel, day: Int64) -> Double {
        var served = 0.0
        var busy = 0.0
        var weight = 1.0
        let weekday = LocalTime.weekday(ofDay: day)
        for d in m.days.reversed() {
            let w = weight * (LocalTime.weekday(ofDay: d.day) == weekday ? settings.sameWeekdayWeight : 1)
            served += w * Double(d.served)
            busy += w * Double(d.busySeconds)
            weight *= settings.dayDecay
        }
        let prior = pooled.busy >= 3600 && pooled.served > 0 ? Double(pooled.served) / Double(pooled.busy) : 1.0 / 600
        // One working hour at the prior's pace: a unit's first dossiers are judged by the city's pace.
        return (served + prior * 3600) / (busy + 3600)
    }

    /// Credits the busy time since `busySince` to the working days it fell on.
    private mutating func credit(_ u: UnitID, to t: Instant, calendar: WorkCalendar) {
        var m = units[Int(u)]
        guard let since = m.busySince, t > since, !m.queue.isEmpty else { return }
        var a = since
        var guardDays = 0
        while a < t && guardDays < 62 {
            let day = LocalTime.day(of: a)
            let end = min(t, LocalTime.start(ofDay: day + 1))
            let seconds = calendar.workingSeconds(from: a, to: end)
            if seconds > 0 { record(&m, busy: seconds, day: day) }
            a = end
            guardDays += 1
        }
        m.busySince = t
        units[Int(u)] = m
    }

    private mutating func record(_ m: inout UnitModel, served: Int64, at t: Instant) {
        let day = LocalTime.day(of: t)
        append(&m, day: day)
        m.days[m.days.count - 1].served += served
        pooled.served += served
    }

    private mutating func record(_ m: inout UnitModel, busy: Int64, day: Int64) {
        append(&m, day: day)
        if m.days[m.days.count - 1].day == day {
            m.days[m.days.count - 1].busySeconds += busy
            pooled.busy += busy
        }
    }

    /// Makes `day` the unit's last day record (an older day, from an event applied late, is counted on the last).
    private mutating func append(_ m: inout UnitModel, day: Int64) {
        if let last = m.days.last, last.day >= day { return }
        m.days.append(Day(day: day, served: 0, busySeconds: 0))
        if m.days.count > settings.historyDays {
            let dropped = m.days.removeFirst()
            pooled.served -= dropped.served
            pooled.busy -= dropped.busySeconds
        }
    }

    /// The factor the predicted working time is scaled by: the unit's error at the configured confidence.
    private func errorFactor(_ m: UnitModel) -> Double {
        // Until the unit has a few errors of its own, its spread is a wide prior.
        exp(m.errorMean + z * m.errorVariance.squareRoot())
    }

    /// Re-judges every queued dossier of the unit at `t`; arms the unit's next check.
    private mutating func evaluate(_ u: UnitID, at t: Instant, calendar: WorkCalendar) -> [Flag] {
        var m = units[Int(u)]
        defer { units[Int(u)] = m }
        guard !m.queue.isEmpty else {
            nextCheckAt[Int(u)] = nil
            return []
        }
        let pace = self.pace(m, day: LocalTime.day(of: t))
        let factor = errorFactor(m)
        var flags: [Flag] = []
        var next = t + settings.recheckSeconds
        var lastDue: Instant?
        var remaining: Int64 = 0
        for i in m.queue.indices {
            let q = m.queue[i]
            if q.due != lastDue {
                lastDue = q.due
                remaining = calendar.workingSeconds(from: t, to: q.due)
            }
            let needed = Double(i + 1) / pace * factor
            m.queue[i].enteredAt = t
            m.queue[i].predictedSeconds = Double(i + 1) / pace
            // Past its deadline a dossier is judged by the clock (overdue), no longer by the forecast.
            guard q.due > t else { continue }
            let atRisk = Double(remaining) < needed
            if atRisk != q.atRisk {
                m.queue[i].atRisk = atRisk
                flags.append(
                    Flag(
                        slot: q.slot, unit: u, atRisk: atRisk, at: t,
                        predictedAt: calendar.add(workingSeconds: Int64(needed.rounded(.up)), to: t), queueAhead: i,
                        perHour: pace * 3600, due: q.due))
            }
            if !atRisk {
                // When it will cross at this pace: `needed` working seconds before its deadline.
                let crossing = calendar.subtract(workingSeconds: Int64(needed.rounded(.up)), from: q.due)
                if crossing > t { next = min(next, crossing) }
            }
        }
        nextCheckAt[Int(u)] = next
        return flags
    }

    /// The forecast for a queued dossier at `t` (nil when it is not queued).
    public func prediction(unit u: UnitID, slot: Int, at t: Instant, calendar: WorkCalendar) -> Prediction? {
        guard Int(u) < units.count else { return nil }
        let m = units[Int(u)]
        guard let i = m.queue.firstIndex(where: { $0.slot == slot }) else { return nil }
        let pace = self.pace(m, day: LocalTime.day(of: t))
        let needed = Double(i + 1) / pace * errorFactor(m)
        return Prediction(
            queueAhead: i, perHour: pace * 3600,
            predictedAt: calendar.add(workingSeconds: Int64(needed.rounded(.up)), to: t), due: m.queue[i].due,
            atRisk: m.queue[i].atRisk, confidence: settings.confidence)
    }

    /// The standard normal quantile (Acklam's rational approximation, relative error under 1.2e-9).
    static func normalQuantile(_ p: Double) -> Double {
        let a = [
            -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716,
            2.506628277459239,
        ]
        let b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572]
        let c = [
            -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
            4.374664141464968, 2.938163982698783,
        ]
        let d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
        let low = 0.02425
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}
