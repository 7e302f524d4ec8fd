#if canImport(Glibc)
    import Glibc  // log and exp only: the core does no I/O
#elseif canImport(Darwin)
    import Darwin
#endif

/// Predicts, from each unit's live queue, which open same-day dossiers will miss their deadline (docs/rules.md §5.6,
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
/// - its errors: how far its queue was off at each resolution (the log of the working time the service took over
///   what the resolved dossier's position said), as a running mean and variance.
///
/// The dossier at position `k` is predicted to take `k / pace` working seconds, scaled by the error's quantile at
/// the configured confidence; it is at risk when that passes its deadline on the unit's calendar. Everything is a
/// function of the events, their order and the instants they are applied at, so a replay of the events in the order
/// a worker took them predicts what it did, minute for minute; a worker stores each unit's part with its commits
/// (`encode(unit:)`) and rebuilds the queues from its dossiers, so a restart changes nothing. The state is bounded
/// by units × (`historyDays` + the queue), never by history.
public struct QueueForecast: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Flag when the chance of missing the deadline is at least this.
        public var confidence: Double = 0.7
        /// Working days of pace kept per unit.
        public var historyDays = 10
        /// Each older working day counts this much less than the one after it.
        public var dayDecay = 0.7
        /// A day of the same weekday as today counts this many times more (Monday mornings are Mondays).
        public var sameWeekdayWeight = 2.0
        /// How often (in the unit's working time) a unit with a queued dossier on track is looked at again even
        /// without events (its pace drops while nothing is resolved).
        public var recheckSeconds: Int64 = 30 * 60
        /// Most dossiers queued per unit (beyond, the newest are not tracked: the state stays bounded).
        public var maxQueue = 4096
        /// A unit is judged only once it has resolved this many queued dossiers in its kept days: a first morning's
        /// pace (no resolution yet, or one) says nothing, and a flag from it would be noise.
        public var minimumResolutions: Int64 = 20
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
        /// Receipt order: when the episode's clock started, then the code (the same after a restart).
        var receivedAt: Instant
        var code: String
        var due: Instant
        var atRisk = false

        func isBefore(_ receivedAt: Instant, _ code: String) -> Bool {
            self.receivedAt != receivedAt ? self.receivedAt < receivedAt : self.code < code
        }
    }

    /// Counted in integers, so the sums do not depend on how the time was split between calls (a replay and a live
    /// worker look at a unit at different instants between events).
    struct Day: Sendable, Equatable {
        var day: Int64
        var served: Int64
        var busySeconds: Int64
    }

    /// What a unit's forecast keeps besides its queue (which is rebuilt from the held dossiers): stored by the
    /// worker with each commit that changed it (`encode(unit:)`).
    struct UnitModel: Sendable {
        var queue: [Queued] = []
        /// Working days, oldest first, at most `historyDays`.
        var days: [Day] = []
        /// Busy time is credited up to here while the queue is not empty.
        var busySince: Instant?
        /// The last resolution of a queued dossier, and since when the queue has not been empty: the time between
        /// two services is what a resolution is compared with.
        var servedAt: Instant?
        var queueSince: Instant?
        var errorMean = 0.0
        var errorVariance = 0.25
        var errors: Int64 = 0
        var nextCheckAt: Instant?
    }

    public let settings: Settings
    private(set) var units: [UnitModel]
    private let z: Double
    /// Units whose stored part changed since `takeChangedUnits()`.
    private var changed: Set<UnitID> = []

    public init(unitCount: Int, settings: Settings = Settings()) {
        self.settings = settings
        units = Array(repeating: UnitModel(), count: unitCount)
        z = QueueForecast.normalQuantile(1 - min(max(settings.confidence, 0.01), 0.99))
    }

    /// Prior pace before a unit has a working hour of its own: what all units together show, or one dossier per
    /// ten working minutes before anything is known.
    private var pooled: (served: Int64, busy: Int64) = (0, 0)

    /// When the unit must be looked at again (nil: its queue is empty).
    public func nextCheckAt(_ unit: UnitID) -> Instant? { units[Int(unit)].nextCheckAt }

    // MARK: Observations

    /// The dossier in `slot` changed at `t`: `due` is its deadline while it is a running same-day dossier of `unit`
    /// (queued), nil otherwise; `resolved` when the change is its resolution. Returns the flags that changed at the
    /// unit.
    public mutating func observe(
        unit u: UnitID, slot: Int, code: String, receivedAt: Instant, due: Instant?, resolved: Bool, at t: Instant,
        calendar: WorkCalendar
    ) -> [Flag] {
        guard Int(u) < units.count else { return [] }
        let queued = units[Int(u)].queue.firstIndex { $0.slot == slot }
        guard queued != nil || due != nil else { return [] }
        credit(u, to: t, calendar: calendar)
        // Moved out and back rather than copied: a copy would duplicate the queue on every event.
        var m = takeUnit(u)
        if let i = queued {
            m.queue.remove(at: i)
            if resolved {
                // It was `i + 1` services away and took one service time (since the last resolution, or since the
                // queue filled). A unit that serves in order is right on average (error near 0); one that serves in
                // any order resolves dossiers far down its queue, and learns to trust the queue less.
                let pace = self.pace(m, day: LocalTime.day(of: t))
                let predicted = Double(i + 1) / pace
                // Within the days before `t` that `credit` scans: a start further back (a unit idle for months) or
                // after `t` (a stored part damaged on disk) cost a walk over every day between, and 62 days already
                // say the unit served far slower than its queue predicted.
                let since = min(
                    t, max(m.servedAt ?? .min, m.queueSince ?? t, t - Self.scannedDays * LocalTime.secondsPerDay))
                let actual = Double(max(0, calendar.workingSeconds(from: since, to: t)))
                let error = log((actual + 600) / (predicted + 600))
                let alpha = m.errors < 20 ? 1 / Double(m.errors + 2) : 0.05
                let delta = error - m.errorMean
                m.errorMean += alpha * delta
                m.errorVariance = (1 - alpha) * (m.errorVariance + alpha * delta * delta)
                m.errors += 1
                m.servedAt = t
                record(&m, served: 1, at: t)
            }
        }
        if let due, m.queue.count < settings.maxQueue {
            var i = m.queue.count
            while i > 0 && !m.queue[i - 1].isBefore(receivedAt, code) { i -= 1 }
            m.queue.insert(Queued(slot: slot, receivedAt: receivedAt, code: code, due: due), at: i)
        }
        if m.queue.isEmpty {
            m.busySince = nil
            m.queueSince = nil
        } else if m.busySince == nil {
            m.busySince = t
            m.queueSince = t
        }
        changed.insert(u)
        let flags = evaluate(&m, unit: u, at: t, calendar: calendar)
        units[Int(u)] = m
        return flags
    }

    /// The dossier left the engine (retired): it leaves the queue without counting as served.
    public mutating func forget(unit u: UnitID, slot: Int) {
        guard Int(u) < units.count, let i = units[Int(u)].queue.firstIndex(where: { $0.slot == slot }) else {
            return
        }
        units[Int(u)].queue.remove(at: i)
        if units[Int(u)].queue.isEmpty {
            units[Int(u)].busySince = nil
            units[Int(u)].queueSince = nil
            units[Int(u)].nextCheckAt = nil
        }
        changed.insert(u)
    }

    /// Looks at the unit again at `t` (its timer): the pace may have dropped, and deadlines come closer.
    public mutating func recheck(unit u: UnitID, at t: Instant, calendar: WorkCalendar) -> [Flag] {
        guard Int(u) < units.count else { return [] }
        credit(u, to: t, calendar: calendar)
        changed.insert(u)
        var m = takeUnit(u)
        let flags = evaluate(&m, unit: u, at: t, calendar: calendar)
        units[Int(u)] = m
        return flags
    }

    private mutating func takeUnit(_ u: UnitID) -> UnitModel {
        var m = UnitModel()
        swap(&m, &units[Int(u)])
        return m
    }

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
        // The pooled pace only once it rests on enough resolutions (resolutions lag receptions at a day's start).
        let prior =
            pooled.served >= 100 && pooled.busy >= 36_000 ? Double(pooled.served) / Double(pooled.busy) : 1.0 / 600
        // One working hour at the prior's pace: a unit's first dossiers are judged by the city's pace.
        return (served + prior * 3600) / (busy + 3600)
    }

    /// The most days a unit's busy time or time since its last service is counted over: what is older says
    /// nothing more about its pace, and bounds the calendar walk.
    static let scannedDays: Int64 = 62

    /// Credits the busy time since `busySince` to the working days it fell on.
    private mutating func credit(_ u: UnitID, to t: Instant, calendar: WorkCalendar) {
        var m = takeUnit(u)
        defer { units[Int(u)] = m }
        guard let since = m.busySince, t > since, !m.queue.isEmpty else { return }
        var a = since
        var scanned: Int64 = 0
        while a < t && scanned < Self.scannedDays {
            let day = LocalTime.day(of: a)
            let end = min(t, LocalTime.start(ofDay: day + 1))
            let seconds = calendar.workingSeconds(from: a, to: end)
            if seconds > 0 { record(&m, busy: seconds, day: day) }
            a = end
            scanned += 1
        }
        m.busySince = t
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

    /// A predicted working time as whole seconds, at most a year's: a unit whose pace says "never" predicts past
    /// any deadline, where converting the seconds themselves (beyond `Int64`, or not a number) would trap.
    static func workingSeconds(_ needed: Double) -> Int64 {
        let most = Double(LocalTime.secondsPerDay * 366)
        return needed.isNaN ? Int64(most) : Int64(min(max(needed, 0), most).rounded(.up))
    }

    /// The factor the predicted working time is scaled by: the unit's error at the configured confidence.
    private func errorFactor(_ m: UnitModel) -> Double {
        exp(m.errorMean + z * m.errorVariance.squareRoot())
    }

    /// Re-judges every queued dossier of unit `u` (`m`, taken out of `units` so its queue is not shared and
    /// changes in place) at `t`; arms the unit's next check.
    private func evaluate(_ m: inout UnitModel, unit u: UnitID, at t: Instant, calendar: WorkCalendar) -> [Flag] {
        guard !m.queue.isEmpty else {
            m.nextCheckAt = nil
            return []
        }
        let pace = self.pace(m, day: LocalTime.day(of: t))
        let factor = errorFactor(m)
        let judged = m.days.reduce(0) { $0 + $1.served } >= settings.minimumResolutions
        var flags: [Flag] = []
        var next: Instant?
        var lastDue: Instant?
        var remaining: Int64 = 0
        // Per deadline, the most working time a dossier on track needs: the first of them to cross (one calendar
        // step per deadline, not per dossier).
        var mostNeeded: [(due: Instant, needed: Double)] = []
        for i in m.queue.indices {
            // Fields read in place: a copy of the element would retain and release its code on every dossier of
            // every evaluation (a unit's queue is evaluated on each of its events).
            let due = m.queue[i].due
            // Past its deadline a dossier is judged by the clock (overdue), no longer by the forecast.
            guard due > t else { continue }
            if due != lastDue {
                lastDue = due
                remaining = calendar.workingSeconds(from: t, to: due)
            }
            let needed = Double(i + 1) / pace * factor
            let atRisk = judged && Double(remaining) < needed
            if atRisk != m.queue[i].atRisk {
                m.queue[i].atRisk = atRisk
                flags.append(
                    Flag(
                        slot: m.queue[i].slot, unit: u, atRisk: atRisk, at: t,
                        predictedAt: calendar.add(workingSeconds: Self.workingSeconds(needed), to: t), queueAhead: i,
                        perHour: pace * 3600, due: due))
            }
            if !atRisk {
                // Receipt order keeps a deadline's dossiers together: the last entry is nearly always the one.
                if let j = mostNeeded.indices.last, mostNeeded[j].due == due {
                    mostNeeded[j].needed = max(mostNeeded[j].needed, needed)
                } else if let j = mostNeeded.firstIndex(where: { $0.due == due }) {
                    mostNeeded[j].needed = max(mostNeeded[j].needed, needed)
                } else {
                    mostNeeded.append((due, needed))
                }
            }
        }
        if !mostNeeded.isEmpty {
            // Looked at again after `recheckSeconds` of the unit's working time (nights and holidays cost nothing),
            // or when the first dossier on track would cross at this pace: `needed` working seconds before its
            // deadline. A queue of dossiers all past their deadline needs no forecast, and no timer.
            next = calendar.add(workingSeconds: settings.recheckSeconds, to: t)
            for (due, needed) in mostNeeded {
                let crossing = calendar.subtract(workingSeconds: Self.workingSeconds(needed), from: due)
                if crossing > t { next = min(next!, crossing) }
            }
        }
        m.nextCheckAt = next
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
            predictedAt: calendar.add(workingSeconds: Self.workingSeconds(needed), to: t), due: m.queue[i].due,
            atRisk: m.queue[i].atRisk, confidence: settings.confidence)
    }

    // MARK: Restart

    /// The units whose stored part changed since the last call (the worker writes them with its next commit).
    public mutating func takeChangedUnits() -> [UnitID] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.sorted()
    }

    /// A unit's stored part: version (1), the days (count u8, then day i64, served i64, busy i64 each), busySince,
    /// servedAt, queueSince and nextCheckAt (i64, `Int64.min` for none), the error's mean and variance (f64 bits), its count
    /// (i64). Little-endian.
    public func encode(unit u: UnitID) -> [UInt8] {
        let m = units[Int(u)]
        var out: [UInt8] = [1, UInt8(m.days.count)]
        out.reserveCapacity(2 + m.days.count * 24 + 56)
        func put(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        for d in m.days {
            put(d.day)
            put(d.served)
            put(d.busySeconds)
        }
        put(m.busySince ?? .min)
        put(m.servedAt ?? .min)
        put(m.queueSince ?? .min)
        put(m.nextCheckAt ?? .min)
        put(Int64(bitPattern: m.errorMean.bitPattern))
        put(Int64(bitPattern: m.errorVariance.bitPattern))
        put(m.errors)
        return out
    }

    public struct Unreadable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Instants a stored part may name: those RFC 3339 can write (years 0001–9999), far from `Int64`'s ends.
    static let storedInstants: ClosedRange<Instant> = -62_135_596_800...253_402_300_799

    /// Why a unit's stored part cannot be worked with, or nil when it can. What the model itself writes always
    /// passes: days in order, a day's resolutions and busy seconds within what a day holds, the error's mean and
    /// variance within what `log((actual + 600) / (predicted + 600))` gives. Anything else (a row damaged on disk or
    /// edited by hand) would overflow a sum or turn a pace into an instant that is not one at the next event.
    static func rangeProblem(of m: UnitModel, historyDays: Int) -> String? {
        func instant(_ t: Instant?) -> Bool { t.map { storedInstants.contains($0) } ?? true }
        if m.days.count > historyDays { return "\(m.days.count) days kept, at most \(historyDays)" }
        let dayRange = LocalTime.day(of: storedInstants.lowerBound)...LocalTime.day(of: storedInstants.upperBound)
        for (k, d) in m.days.enumerated() {
            guard dayRange.contains(d.day), k == 0 || d.day > m.days[k - 1].day else {
                return "day \(k + 1) out of order or range"
            }
            guard (0...1_000_000).contains(d.served), (0...LocalTime.secondsPerDay).contains(d.busySeconds) else {
                return "day \(k + 1): \(d.served) served in \(d.busySeconds) busy seconds"
            }
        }
        guard instant(m.busySince), instant(m.servedAt), instant(m.queueSince), instant(m.nextCheckAt) else {
            return "an instant out of range"
        }
        guard (0...(1 << 40)).contains(m.errors), m.errorMean.isFinite, abs(m.errorMean) <= 50,
            m.errorVariance.isFinite, (0...2_500).contains(m.errorVariance)
        else { return "error model: mean \(m.errorMean), variance \(m.errorVariance), count \(m.errors)" }
        return nil
    }

    /// Restores a unit's stored part (before its queue is rebuilt with `restoreQueued`).
    public mutating func restore(unit u: UnitID, from bytes: [UInt8]) throws(Unreadable) {
        guard Int(u) < units.count else { return }
        guard bytes.count >= 2, bytes[0] == 1, bytes.count == 2 + Int(bytes[1]) * 24 + 56 else {
            throw Unreadable(description: "a stored forecast of \(bytes.count) bytes does not read back")
        }
        var at = 2
        func take() -> Int64 {
            var v: Int64 = 0
            for i in 0..<8 { v |= Int64(bytes[at + i]) << (8 * i) }
            at += 8
            return v
        }
        var m = UnitModel()
        for _ in 0..<Int(bytes[1]) {
            m.days.append(Day(day: take(), served: take(), busySeconds: take()))
        }
        func instant(_ v: Int64) -> Instant? { v == .min ? nil : v }
        m.busySince = instant(take())
        m.servedAt = instant(take())
        m.queueSince = instant(take())
        m.nextCheckAt = instant(take())
        m.errorMean = Double(bitPattern: UInt64(bitPattern: take()))
        m.errorVariance = Double(bitPattern: UInt64(bitPattern: take()))
        m.errors = take()
        if let problem = Self.rangeProblem(of: m, historyDays: settings.historyDays) {
            throw Unreadable(description: "a stored forecast holds values out of range: \(problem)")
        }
        for d in units[Int(u)].days {
            pooled.served -= d.served
            pooled.busy -= d.busySeconds
        }
        for d in m.days {
            pooled.served += d.served
            pooled.busy += d.busySeconds
        }
        m.queue = units[Int(u)].queue
        units[Int(u)] = m
    }

    /// Puts a held dossier back in its unit's queue at a restart; `atRisk` when its `at_risk` already fired in
    /// this episode (it is not raised twice). The dossiers come in storage order: each is appended, and
    /// `finishRestore()` puts the queues in receipt order once (a sorted insert per dossier is quadratic in a unit's
    /// queue, seconds for a million held dossiers).
    public mutating func restoreQueued(
        unit u: UnitID, slot: Int, code: String, receivedAt: Instant, due: Instant, atRisk: Bool
    ) {
        guard Int(u) < units.count else { return }
        units[Int(u)].queue.append(Queued(slot: slot, receivedAt: receivedAt, code: code, due: due, atRisk: atRisk))
    }

    /// After the restored dossiers: each unit's queue in receipt order, cut at `maxQueue` (the earliest received
    /// are kept, as the live queue keeps them).
    public mutating func finishRestore() {
        for u in units.indices where !units[u].queue.isEmpty {
            var queue: [Queued] = []
            swap(&queue, &units[u].queue)
            queue.sort { $0.isBefore($1.receivedAt, $1.code) }
            if queue.count > settings.maxQueue { queue.removeLast(queue.count - settings.maxQueue) }
            units[u].queue = queue
        }
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
