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

/// The working sessions of one day and its intake cut-off.
public struct DaySchedule: Hashable, Sendable {
    /// Sessions as configured (for explanations).
    public let sessions: [Stretch]
    /// Sessions with adjacent ones joined: working time runs on across 11:30|11:30 boundaries.
    public let stretches: [Stretch]
    /// The cut-off set on the day in the calendar, if any.
    public let configuredCutoff: Int32?
    public let workingSeconds: Int64

    public static let none = DaySchedule(sessions: [], cutoff: nil)

    public init(sessions: [Stretch], cutoff: Int32?) {
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
        configuredCutoff = cutoff
        workingSeconds = merged.reduce(0) { $0 + Int64($1.end - $1.start) }
    }

    public var isWorkingDay: Bool { !stretches.isEmpty }
    /// End of the day's last session.
    public var close: Int32 { stretches.last?.end ?? 0 }

    /// Convention (DOMAIN.md §4.2): without a cut-off of its own, a day stops taking same-day dossiers
    /// 120 minutes before it closes.
    public static let defaultCutoffBeforeClose: Int32 = 120 * 60

    /// The day's intake cut-off: its own, else 120 minutes before close.
    public var cutoff: Int32 { configuredCutoff ?? (close - DaySchedule.defaultCutoffBeforeClose) }
}

/// A unit's working calendar: weekly sessions, holidays, dated overrides (make-up and fair days), already merged
/// with its `base`. All working-time arithmetic of the domain happens here, in seconds, on UTC+07:00 local days.
/// A class (immutable, shared) so that handing a calendar around costs one reference count, not one per array.
public final class WorkCalendar: Sendable {
    public let id: String
    /// Index into `schedules` per weekday, Monday = 0.
    let weekly: [Int]
    let overrides: [Int64: Int]
    public let holidays: Set<Int64>
    let schedules: [DaySchedule]
    /// Dense per-day schedule index for the years the system lives in, so a lookup is one array read.
    let cacheStartDay: Int64
    let cache: [UInt16]

    /// Arithmetic gives up after this many days without work (a calendar that never works).
    static let maxScanDays: Int64 = 3700
    /// What `add` returns when no working time is ever available.
    public static let never: Instant = Int64.max / 4

    /// - Parameters:
    ///   - weekly: Monday … Sunday.
    ///   - dates: day number → schedule (override of the weekly one).
    ///   - holidays: day numbers without work, whatever the rest says.
    public init(id: String, weekly: [DaySchedule], dates: [Int64: DaySchedule], holidays: Set<Int64>) {
        precondition(weekly.count == 7)
        self.id = id
        var schedules: [DaySchedule] = [.none]
        func index(_ d: DaySchedule) -> Int {
            if let i = schedules.firstIndex(of: d) { return i }
            schedules.append(d)
            return schedules.count - 1
        }
        let weeklyIdx = weekly.map(index)
        var overrideIdx: [Int64: Int] = [:]
        for (day, s) in dates { overrideIdx[day] = index(s) }
        self.weekly = weeklyIdx
        self.overrides = overrideIdx
        self.holidays = holidays
        self.schedules = schedules
        let start = CivilCalendar.days(year: 2000, month: 1, day: 1)
        let end = CivilCalendar.days(year: 2045, month: 1, day: 1)
        var cache = [UInt16](repeating: 0, count: Int(end - start))
        for k in 0..<cache.count {
            let day = start + Int64(k)
            cache[k] = UInt16(
                holidays.contains(day) ? 0 : (overrideIdx[day] ?? weeklyIdx[LocalTime.weekday(ofDay: day)]))
        }
        self.cacheStartDay = start
        self.cache = cache
    }

    /// The schedule of local day `day`.
    @inline(__always) public func schedule(ofDay day: Int64) -> DaySchedule {
        let k = day - cacheStartDay
        if k >= 0 && k < Int64(cache.count) { return schedules[Int(cache[Int(k)])] }
        if holidays.contains(day) { return schedules[0] }
        return schedules[overrides[day] ?? weekly[LocalTime.weekday(ofDay: day)]]
    }

    public func schedule(of date: LocalDate) -> DaySchedule { schedule(ofDay: date.dayNumber) }

    public func isHoliday(_ date: LocalDate) -> Bool { holidays.contains(date.dayNumber) }

    /// `t` if it is inside a session, else the start of the next session (DOMAIN.md §4.1: T0 moves there).
    public func nextWorkingInstant(atOrAfter t: Instant) -> Instant {
        var day = LocalTime.day(of: t)
        var sod = t - LocalTime.start(ofDay: day)
        for _ in 0..<WorkCalendar.maxScanDays {
            let s = schedule(ofDay: day)
            for st in s.stretches where sod < Int64(st.end) {
                return LocalTime.start(ofDay: day) + max(sod, Int64(st.start))
            }
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
            let s = schedule(ofDay: day)
            if sod <= 0 && w > s.workingSeconds {
                w -= s.workingSeconds  // a whole day at once
            } else {
                for st in s.stretches where sod < Int64(st.end) {
                    let from = max(sod, Int64(st.start))
                    let avail = Int64(st.end) - from
                    if w <= avail { return LocalTime.start(ofDay: day) + from + w }
                    w -= avail
                }
            }
            day += 1
            sod = 0
        }
        return WorkCalendar.never
    }

    /// Working seconds between `a` and `b`, negative when `b` is before `a`.
    public func workingSeconds(from a: Instant, to b: Instant) -> Int64 {
        if b < a { return -workingSeconds(from: b, to: a) }
        if b == a || a >= WorkCalendar.never { return 0 }
        let endDay = LocalTime.day(of: min(b, WorkCalendar.never))
        var day = LocalTime.day(of: a)
        var total: Int64 = 0
        while day <= endDay {
            let s = schedule(ofDay: day)
            let ds = LocalTime.start(ofDay: day)
            let lo = a - ds
            let hi = b - ds
            if lo <= 0 && hi >= LocalTime.secondsPerDay {
                total += s.workingSeconds
            } else {
                for st in s.stretches {
                    let x = max(lo, Int64(st.start))
                    let y = min(hi, Int64(st.end))
                    if y > x { total += y - x }
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
            if schedule(ofDay: d).isWorkingDay { return d }
            d += 1
        }
        return nil
    }

    /// True when at least one weekday has sessions (otherwise no deadline could ever be computed).
    var hasWeeklyWork: Bool { weekly.contains { schedules[$0].isWorkingDay } }
}
