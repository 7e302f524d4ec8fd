/// One stretch of working time within a local day, in seconds after local midnight, `start < end`.
public struct Stretch: Hashable, Sendable {
    public var start: Int32
    public var end: Int32
    public init(start: Int32, end: Int32) {
        self.start = start
        self.end = end
    }
    public var text: String { ClockTime.format(Int(start)) + "-" + ClockTime.format(Int(end)) }
}

/// One session of a day as configured (docs/rules.md §2.3, §7.4).
public struct Session: Hashable, Sendable {
    public var time: Stretch
    /// Extra sessions (Saturday mornings, after-hours, fair-day hours) serve same-day procedures only and add no
    /// working time to `hours:N`/`days:N` dossiers (docs/rules.md §2.3, §4.3).
    public var extra: Bool
    /// What an extra session serves: procedure codes and `field:<lĩnh vực>`; empty serves every same-day procedure.
    public var procedures: [String]
    /// An extra session's own intake cut-off: it applies when the session is the day's last applicable one.
    public var cutoff: Int32?
    /// Inclusive local day numbers on which the session exists (a service that starts or ends on a known date).
    public var from: Int64?
    public var until: Int64?

    public init(
        time: Stretch, extra: Bool = false, procedures: [String] = [], cutoff: Int32? = nil, from: Int64? = nil,
        until: Int64? = nil
    ) {
        self.time = time
        self.extra = extra
        self.procedures = procedures
        self.cutoff = cutoff
        self.from = from
        self.until = until
    }

    public func exists(onDay day: Int64) -> Bool { day >= (from ?? Int64.min) && day <= (until ?? Int64.max) }

    /// Whether an extra session with this `procedures` list serves a same-day procedure of that code and field.
    public static func serves(_ procedures: [String], code: String, field: String?) -> Bool {
        procedures.isEmpty || procedures.contains(code) || field.map { procedures.contains("field:" + $0) } ?? false
    }

    public var text: String {
        var s = time.text
        guard extra else { return s }
        s += " extra"
        if !procedures.isEmpty { s += " for " + procedures.joined(separator: ", ") }
        if let cutoff { s += ", cut-off " + ClockTime.format(Int(cutoff)) }
        if let from { s += ", from " + LocalDate(dayNumber: from).description }
        if let until { s += ", until " + LocalDate(dayNumber: until).description }
        return s
    }
}

/// One day of a calendar as configured: its sessions (regular and extra) and its own cut-off.
public struct DayDefinition: Hashable, Sendable {
    public var sessions: [Session]
    public var cutoff: Int32?
    public static let none = DayDefinition(sessions: [], cutoff: nil)
    public init(sessions: [Session], cutoff: Int32?) {
        self.sessions = sessions
        self.cutoff = cutoff
    }
    /// Some session exists on some dates only, so the day's schedule depends on the date.
    var isDated: Bool { sessions.contains { $0.from != nil || $0.until != nil } }
}

/// A calendar as configured and merged with its `base`: weekly days, dated days, holidays. Views of it
/// (`WorkCalendar`) do the arithmetic; this keeps what `explain` shows.
public struct CalendarDefinition: Sendable {
    public let id: String
    /// Distinct day definitions; `weekly` (Monday = 0) and `dates` index into it.
    let days: [DayDefinition]
    let weekly: [Int]
    let dates: [Int64: Int]
    public let holidays: Set<Int64>
    /// The last local day whose holidays and swapped days are listed (`holidaysThrough`, or the end of the year of
    /// the last holiday); nil without holidays. Past it every weekday counts as a working day: the calendar has run
    /// out, which the worker and `check-config.py` report.
    public let holidaysThrough: Int64?

    /// - Parameters:
    ///   - weekly: Monday … Sunday.
    ///   - dates: day number → definition (overrides the weekly one).
    ///   - holidays: day numbers without work, whatever the rest says.
    ///   - holidaysThrough: the last day the holidays cover; nil: the end of the last holiday's year.
    public init(
        id: String, weekly: [DayDefinition], dates: [Int64: DayDefinition], holidays: Set<Int64>,
        holidaysThrough: Int64? = nil
    ) {
        precondition(weekly.count == 7)
        self.id = id
        var days = Interner<DayDefinition>(first: .none)
        self.weekly = weekly.map { days.intern($0) }
        self.dates = dates.mapValues { days.intern($0) }
        self.holidays = holidays
        self.days = days.values
        self.holidaysThrough =
            holidaysThrough
            ?? holidays.max().flatMap { last in
                LocalDate(year: LocalDate(dayNumber: last).components.year, month: 12, day: 31)?.dayNumber
            }
    }

    /// Whether local day `day` is past the listed holidays (false when the calendar lists none).
    public func isBeyondHolidays(day: Int64) -> Bool { holidaysThrough.map { day > $0 } ?? false }

    /// Index into `days` of local day `day` (0, no work, on a holiday).
    func dayIndex(_ day: Int64) -> Int {
        holidays.contains(day) ? 0 : dates[day] ?? weekly[LocalTime.weekday(ofDay: day)]
    }

    /// The definition in force on local day `day`.
    public func day(_ day: Int64) -> DayDefinition { days[dayIndex(day)] }

    /// The distinct `procedures` lists of its extra sessions: extra sessions with the same list serve the same
    /// procedures, so these lists are what tells two same-day views of the calendar apart.
    public var extraServiceLists: [[String]] {
        var out: [[String]] = []
        for d in days { for s in d.sessions where s.extra && !out.contains(s.procedures) { out.append(s.procedures) } }
        return out
    }

    /// The extra services (see `extraServiceLists`) that serve a same-day procedure of that code and field.
    public func services(code: String, field: String?) -> Set<[String]> {
        Set(extraServiceLists.filter { Session.serves($0, code: code, field: field) })
    }
}

/// Distinct values, each stored once and referred to by its index (a calendar has few distinct days).
struct Interner<Value: Hashable> {
    private(set) var values: [Value]
    private var index: [Value: Int]

    init(first: Value) {
        values = [first]
        index = [first: 0]
    }

    mutating func intern(_ value: Value) -> Int {
        if let i = index[value] { return i }
        values.append(value)
        index[value] = values.count - 1
        return values.count - 1
    }
}

/// Where a same-day intake cut-off comes from (docs/rules.md §4.2), for explanations.
public enum CutoffSource: String, Sendable, Hashable {
    case catalog = "catalog entry"
    case session = "the last session's own"
    case day = "the calendar day's"
    case beforeClose = "120 minutes before the close"
}

/// The sessions that count on one day for one view of a calendar, and the day's intake cut-off.
public struct DaySchedule: Hashable, Sendable {
    /// Sessions that count, as configured (for explanations).
    public let sessions: [Stretch]
    /// Sessions with adjacent ones joined: working time runs on across 11:30|11:30 boundaries.
    public let stretches: [Stretch]
    /// The intake cut-off in force (seconds after midnight) and where it comes from.
    public let cutoff: Int32
    public let cutoffSource: CutoffSource
    public let workingSeconds: Int64

    public static let none = DaySchedule(sessions: [], resolvedCutoff: nil)

    /// A day whose sessions all count; `cutoff` is the day's own (nil: 120 minutes before close).
    public init(sessions: [Stretch], cutoff: Int32?) {
        self.init(sessions: sessions, resolvedCutoff: cutoff.map { ($0, .day) })
    }

    init(sessions: [Stretch], resolvedCutoff cutoff: (Int32, CutoffSource)?) {
        self.sessions = sessions
        var merged: [Stretch] = []
        for s in sessions {
            if let last = merged.last, last.end == s.start {
                merged[merged.count - 1].end = s.end
            } else {
                merged.append(s)
            }
        }
        stretches = merged
        workingSeconds = merged.reduce(0) { $0 + Int64($1.end - $1.start) }
        let close = merged.last?.end ?? 0
        (self.cutoff, cutoffSource) = cutoff ?? (close - DaySchedule.defaultCutoffBeforeClose, .beforeClose)
    }

    /// The sessions of `day` that count in a view: regular ones, plus the extra ones whose `procedures` list is in
    /// `serving` (nil: none, the view of `hours:N`/`days:N`). The cut-off is the last counted session's own when it
    /// is extra and has one, else the day's (docs/rules.md §4.2).
    init(_ d: DayDefinition, day: Int64, serving: Set<[String]>?) {
        let counted = d.sessions.filter { s in
            s.exists(onDay: day) && (!s.extra || serving?.contains(s.procedures) == true)
        }
        let own: (Int32, CutoffSource)? =
            counted.last.flatMap { s in s.extra ? s.cutoff.map { ($0, .session) } : nil } ?? d.cutoff.map { ($0, .day) }
        self.init(sessions: counted.map(\.time), resolvedCutoff: own)
    }

    public var isWorkingDay: Bool { !stretches.isEmpty }
    /// End of the day's last session.
    public var close: Int32 { stretches.last?.end ?? 0 }

    /// Convention (docs/rules.md §4.2): without a cut-off of its own, a day stops taking same-day dossiers
    /// 120 minutes before it closes.
    public static let defaultCutoffBeforeClose: Int32 = 120 * 60
}

/// A view of a unit's working calendar: the sessions that count for one kind of dossier (regular sessions only
/// for `hours:N`/`days:N`; regular plus the extra sessions that serve the procedure for `same-day`), over weekly
/// days, holidays and dated days. All working-time arithmetic of the domain happens here, in seconds, on UTC+07:00
/// local days. A class (immutable, shared) so that handing a calendar around costs one reference count.
public final class WorkCalendar: Sendable {
    public let id: String
    public let definition: CalendarDefinition
    /// Which extra services count (nil: regular sessions only).
    public let serving: Set<[String]>?
    let schedules: [DaySchedule]
    /// Dense per-day schedule index for the years the system lives in, so a lookup is one array read.
    let cacheStartDay: Int64
    let cache: [UInt16]
    /// The schedules' stretches, flattened for the arithmetic below: schedule `i` has
    /// `stretchStarts/stretchEnds[stretchBounds[i] ..< stretchBounds[i + 1]]` and `daySeconds[i]` of working time.
    /// Handing out a `DaySchedule` copies it (a retain and a release of each of its two arrays) for every day
    /// looked at: half of a deadline's time, in a profile of a restart that computes a million of them.
    private let stretchBounds: [Int32]
    private let stretchStarts: [Int32]
    private let stretchEnds: [Int32]
    private let daySeconds: [Int64]
    /// Per schedule: its cut-off, where that comes from, and its close (`sameDayLimits(ofDay:)`).
    private let dayLimits: [SameDayLimits]

    /// What a same-day deadline reads of its day (`DaySchedule.cutoff`, `.cutoffSource`, `.close`).
    struct SameDayLimits {
        var cutoff: Int32
        var cutoffSource: CutoffSource
        var close: Int32
    }

    /// Arithmetic gives up after this many days without work (a calendar that never works).
    static let maxScanDays: Int64 = 3700
    /// What `add` returns when no working time is ever available.
    public static let never: Instant = Int64.max / 4
    /// The dense cache covers these years; days outside are computed from the definition (slower, same answer).
    static let cacheYears = (first: 2000, last: 2044)

    /// The view of `definition` counting regular sessions plus the extra ones whose `procedures` list is in
    /// `serving` (nil: regular sessions only).
    public init(definition: CalendarDefinition, serving: Set<[String]>? = nil) {
        id = definition.id
        self.definition = definition
        self.serving = serving
        var schedules = Interner<DaySchedule>(first: .none)
        let start = CivilCalendar.days(year: WorkCalendar.cacheYears.first, month: 1, day: 1)
        let end = CivilCalendar.days(year: WorkCalendar.cacheYears.last + 1, month: 1, day: 1)
        // Undated day definitions give the same schedule on every date: compute each once.
        var undated = [Int?](repeating: nil, count: definition.days.count)
        var cache = [UInt16](repeating: 0, count: Int(end - start))
        for k in cache.indices {
            let day = start + Int64(k)
            let di = definition.dayIndex(day)
            let si: Int
            if let known = undated[di] {
                si = known
            } else {
                let d = definition.days[di]
                si = schedules.intern(DaySchedule(d, day: day, serving: serving))
                if !d.isDated { undated[di] = si }
            }
            // The loader bounds dated days well below this; a larger calendar is a programming error.
            precondition(si <= Int(UInt16.max), "calendar \(definition.id): too many distinct day schedules")
            cache[k] = UInt16(si)
        }
        self.schedules = schedules.values
        self.cacheStartDay = start
        self.cache = cache
        var bounds: [Int32] = [0]
        for schedule in schedules.values { bounds.append(bounds.last! + Int32(schedule.stretches.count)) }
        stretchBounds = bounds
        stretchStarts = schedules.values.flatMap { $0.stretches.map(\.start) }
        stretchEnds = schedules.values.flatMap { $0.stretches.map(\.end) }
        daySeconds = schedules.values.map(\.workingSeconds)
        dayLimits = schedules.values.map {
            SameDayLimits(cutoff: $0.cutoff, cutoffSource: $0.cutoffSource, close: $0.close)
        }
    }

    /// The interned schedule number of local day `day` when the day is in the dense cache (years
    /// `cacheYears`); nil outside it, where the caller computes the schedule.
    @inline(__always)
    private func cachedSchedule(ofDay day: Int64) -> Int? {
        let k = day - cacheStartDay
        return k >= 0 && k < Int64(cache.count) ? Int(cache[Int(k)]) : nil
    }

    /// The cut-off and close of local day `day`, read in place.
    @inline(__always)
    func sameDayLimits(ofDay day: Int64) -> SameDayLimits {
        if let i = cachedSchedule(ofDay: day) { return dayLimits[i] }
        let s = schedule(ofDay: day)
        return SameDayLimits(cutoff: s.cutoff, cutoffSource: s.cutoffSource, close: s.close)
    }

    /// A calendar whose sessions are all regular (tests and benchmarks).
    public convenience init(id: String, weekly: [DaySchedule], dates: [Int64: DaySchedule], holidays: Set<Int64>) {
        func def(_ s: DaySchedule) -> DayDefinition {
            DayDefinition(
                sessions: s.sessions.map { Session(time: $0) }, cutoff: s.cutoffSource == .day ? s.cutoff : nil)
        }
        self.init(
            definition: CalendarDefinition(
                id: id, weekly: weekly.map(def), dates: dates.mapValues(def), holidays: holidays))
    }

    /// The schedule of local day `day`.
    @inline(__always) public func schedule(ofDay day: Int64) -> DaySchedule {
        if let i = cachedSchedule(ofDay: day) { return schedules[i] }
        return DaySchedule(definition.day(day), day: day, serving: serving)
    }

    public func schedule(of date: LocalDate) -> DaySchedule { schedule(ofDay: date.dayNumber) }

    public func isHoliday(_ date: LocalDate) -> Bool { definition.holidays.contains(date.dayNumber) }

    /// Calls `body(start, end)` on each of the day's stretches (seconds after midnight), in order, until it returns
    /// false. Days in the dense cache read the flattened arrays; others compute their schedule.
    @inline(__always)
    private func forEachStretch(ofDay day: Int64, _ body: (_ start: Int64, _ end: Int64) -> Bool) {
        if let i = cachedSchedule(ofDay: day) {
            var j = Int(stretchBounds[i])
            let end = Int(stretchBounds[i + 1])
            while j < end {
                if !body(Int64(stretchStarts[j]), Int64(stretchEnds[j])) { return }
                j += 1
            }
        } else {
            for st in schedule(ofDay: day).stretches {
                if !body(Int64(st.start), Int64(st.end)) { return }
            }
        }
    }

    /// Working seconds of local day `day`.
    @inline(__always)
    private func workingSeconds(ofDay day: Int64) -> Int64 {
        if let i = cachedSchedule(ofDay: day) { return daySeconds[i] }
        return schedule(ofDay: day).workingSeconds
    }

    /// Whether local day `day` has a session that counts (`DaySchedule.isWorkingDay`).
    @inline(__always)
    private func isWorkingDay(_ day: Int64) -> Bool {
        if let i = cachedSchedule(ofDay: day) { return stretchBounds[i + 1] > stretchBounds[i] }
        return schedule(ofDay: day).isWorkingDay
    }

    /// `t` if it is inside a session, else the start of the next session (docs/rules.md §4.1: T0 moves there).
    public func nextWorkingInstant(atOrAfter t: Instant) -> Instant {
        var day = LocalTime.day(of: t)
        var sod = t - LocalTime.start(ofDay: day)
        for _ in 0..<WorkCalendar.maxScanDays {
            var found: Int64?
            forEachStretch(ofDay: day) { start, end in
                guard sod < end else { return true }
                found = max(sod, start)
                return false
            }
            if let found { return LocalTime.start(ofDay: day) + found }
            day += 1
            sod = 0
        }
        return WorkCalendar.never
    }

    /// The earliest instant at which `workingSeconds` of working time have elapsed since `t`
    /// (07:30 + 480 minutes is 17:00 the same day, not 07:30 the next).
    public func add(workingSeconds: Int64, to t: Instant) -> Instant {
        var w = workingSeconds
        if w <= 0 { return t }
        var day = LocalTime.day(of: t)
        var sod = t - LocalTime.start(ofDay: day)
        for _ in 0..<WorkCalendar.maxScanDays {
            let whole = self.workingSeconds(ofDay: day)
            if sod <= 0 && w > whole {
                w -= whole  // a whole day at once
            } else {
                var reached: Int64?
                forEachStretch(ofDay: day) { start, end in
                    guard sod < end else { return true }
                    let from = max(sod, start)
                    let avail = end - from
                    if w <= avail {
                        reached = from + w
                        return false
                    }
                    w -= avail
                    return true
                }
                if let reached { return LocalTime.start(ofDay: day) + reached }
            }
            day += 1
            sod = 0
        }
        return WorkCalendar.never
    }

    /// The latest instant from which `workingSeconds` of working time run until `t` (the inverse of `add`: 17:00
    /// less 480 minutes is 07:30 the same day).
    public func subtract(workingSeconds: Int64, from t: Instant) -> Instant {
        var w = workingSeconds
        if w <= 0 { return t }
        var day = LocalTime.day(of: t)
        var sod = t - LocalTime.start(ofDay: day)
        for _ in 0..<WorkCalendar.maxScanDays {
            let s = schedule(ofDay: day)
            for st in s.stretches.reversed() where sod > Int64(st.start) {
                let to = min(sod, Int64(st.end))
                let available = to - Int64(st.start)
                if w <= available { return LocalTime.start(ofDay: day) + to - w }
                w -= available
            }
            day -= 1
            sod = LocalTime.secondsPerDay
        }
        return -WorkCalendar.never
    }

    /// Working seconds between `a` and `b`, negative when `b` is before `a`.
    public func workingSeconds(from a: Instant, to b: Instant) -> Int64 {
        if b < a { return -workingSeconds(from: b, to: a) }
        if b == a || a >= WorkCalendar.never { return 0 }
        let endDay = LocalTime.day(of: min(b, WorkCalendar.never))
        var day = LocalTime.day(of: a)
        var total: Int64 = 0
        while day <= endDay {
            let ds = LocalTime.start(ofDay: day)
            let lo = a - ds
            let hi = b - ds
            if lo <= 0 && hi >= LocalTime.secondsPerDay {
                total += workingSeconds(ofDay: day)
            } else {
                forEachStretch(ofDay: day) { start, end in
                    let x = max(lo, start)
                    let y = min(hi, end)
                    if y > x { total += y - x }
                    return true
                }
            }
            day += 1
        }
        return total
    }

    /// The first working day strictly after local day `day` (for same-day dossiers received after the cut-off).
    public func nextWorkingDay(after day: Int64) -> Int64? {
        var d = day + 1
        for _ in 0..<WorkCalendar.maxScanDays {
            if isWorkingDay(d) { return d }
            d += 1
        }
        return nil
    }

    /// True when at least one weekday has regular sessions (otherwise no deadline could ever be computed).
    var hasWeeklyWork: Bool {
        definition.weekly.contains { definition.days[$0].sessions.contains { !$0.extra } }
    }
}
