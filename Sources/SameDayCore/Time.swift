/// An instant on the time line: whole seconds since 1970-01-01T00:00:00Z.
///
/// Hot structures keep instants as plain integers, not `Date`: they are compared and added millions of times a second.
/// Sub-second parts of event timestamps are dropped (truncated towards the past); no rule of the domain needs them.
public typealias Instant = Int64

/// Local time for every unit: Asia/Ho_Chi_Minh is UTC+07:00 with no daylight saving (convention, docs/rules.md §2.4).
public enum LocalTime {
    /// The one fixed offset of the domain, in seconds.
    public static let offsetSeconds: Int64 = 7 * 3600
    public static let secondsPerDay: Int64 = 86_400

    /// The local civil day number (days since 1970-01-01 local) that contains `t`.
    @inlinable public static func day(of t: Instant) -> Int64 {
        floorDiv(t + offsetSeconds, secondsPerDay)
    }

    /// The instant at which local day `day` starts (00:00 +07:00).
    @inlinable public static func start(ofDay day: Int64) -> Instant {
        day * secondsPerDay - offsetSeconds
    }

    /// Weekday of a local day number, Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
    @inlinable public static func weekday(ofDay day: Int64) -> Int {
        Int(floorMod(day + 3, 7))
    }

    @inlinable static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    @inlinable static func floorMod(_ a: Int64, _ b: Int64) -> Int64 {
        a - floorDiv(a, b) * b
    }
}

/// A calendar date (local to UTC+07:00), e.g. a holiday or the day of a rollup.
public struct LocalDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Days since 1970-01-01.
    public var dayNumber: Int64

    public init(dayNumber: Int64) { self.dayNumber = dayNumber }

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
            day <= CivilCalendar.daysInMonth(year: year, month: month)
        else { return nil }
        dayNumber = CivilCalendar.days(year: year, month: month, day: day)
    }

    /// Parses `YYYY-MM-DD`.
    public init?(_ text: some StringProtocol) {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
            let y = Digits.parse(b, 0, 4), let m = Digits.parse(b, 5, 2), let d = Digits.parse(b, 8, 2)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public var components: (year: Int, month: Int, day: Int) { CivilCalendar.civil(fromDays: dayNumber) }
    public var weekday: Int { LocalTime.weekday(ofDay: dayNumber) }
    public var startInstant: Instant { LocalTime.start(ofDay: dayNumber) }
    public func adding(days: Int64) -> LocalDate { LocalDate(dayNumber: dayNumber + days) }

    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(10)
        Digits.appendDate(components, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (a: LocalDate, b: LocalDate) -> Bool { a.dayNumber < b.dayNumber }
}

/// Proleptic Gregorian arithmetic (Howard Hinnant's days-from-civil algorithms).
enum CivilCalendar {
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

enum Digits {
    @inline(__always) static func parse(_ b: [UInt8], _ at: Int, _ n: Int) -> Int? {
        var v = 0
        for i in at..<(at + n) {
            let c = b[i] &- 48
            guard c < 10 else { return nil }
            v = v * 10 + Int(c)
        }
        return v
    }

    /// Zero-padded to `width` digits; a negative value gets its sign before the padded magnitude (`-0001`).
    static func pad(_ v: Int, _ width: Int) -> String {
        var out: [UInt8] = []
        append(v, width: width, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DD` (the year as `pad(year, 4)` writes it): a `LocalDate`'s text, and an RFC 3339 time's date.
    static func appendDate(_ c: (year: Int, month: Int, day: Int), to out: inout [UInt8]) {
        append(c.year, width: 4, to: &out)
        out.append(0x2D)
        append(c.month, width: 2, to: &out)
        out.append(0x2D)
        append(c.day, width: 2, to: &out)
    }

    /// Appends `pad(v, width)`'s bytes: digits straight into `out`, no string per field.
    static func append(_ v: Int, width: Int, to out: inout [UInt8]) {
        if v < 0 { out.append(0x2D) }
        var magnitude = v.magnitude
        var digits = 1
        var scale: UInt = 1
        while magnitude / scale >= 10 {
            scale *= 10
            digits += 1
        }
        for _ in digits..<max(width, digits) { out.append(0x30) }
        while scale > 0 {
            out.append(UInt8(48 + magnitude / scale))
            magnitude %= scale
            scale /= 10
        }
    }
}

/// RFC 3339 timestamps: parsed by hand (fast, strict), always written with the +07:00 offset.
public enum RFC3339 {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (years 0000–9999, the only ones RFC 3339 can write).
    /// Returns nil on anything else.
    public static func parse(_ text: String) -> Instant? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Parses from raw UTF-8 bytes (used by the event scanner without creating a `String`).
    public static func parse(_ b: UnsafeRawBufferPointer) -> Instant? {
        let n = b.count
        guard n >= 20 else { return nil }
        @inline(__always) func dig(_ i: Int, _ k: Int) -> Int? {
            var v = 0
            for j in i..<(i + k) {
                let c = b[j] &- 48
                guard c < 10 else { return nil }
                v = v * 10 + Int(c)
            }
            return v
        }
        guard b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3A, b[16] == 0x3A,
            let year = dig(0, 4), let month = dig(5, 2), let day = dig(8, 2),
            let hour = dig(11, 2), let minute = dig(14, 2), let second = dig(17, 2),
            (1...12).contains(month), day >= 1, day <= CivilCalendar.daysInMonth(year: year, month: month),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var i = 19
        if b[i] == 0x2E {  // fraction: digits, dropped
            i += 1
            let s = i
            while i < n, b[i] &- 48 < 10 { i += 1 }
            guard i > s else { return nil }
        }
        guard i < n else { return nil }
        var offset = 0
        switch b[i] {
        case 0x5A, 0x7A:  // Z
            guard i + 1 == n else { return nil }
        case 0x2B, 0x2D:
            guard i + 6 == n, b[i + 3] == 0x3A, let oh = dig(i + 1, 2), let om = dig(i + 4, 2), oh < 24, om < 60
            else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == 0x2D ? -1 : 1)
        default:
            return nil
        }
        let days = CivilCalendar.days(year: year, month: month, day: day)
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS+07:00`, for every instant whose local (+07:00) year is 0000–9999, so that
    /// `parse(format(t)) == t`. Any other instant (never an event's, whose times are bounded by `EventTimeBounds`)
    /// is written with an ISO 8601 expanded year (`-0001-12-31T23:00:00+07:00`, `10000-01-01T00:00:00+07:00`),
    /// which RFC 3339 and `parse` refuse: no text this writes is ever read back as another instant.
    public static func format(_ t: Instant) -> String {
        var out = [UInt8]()
        out.reserveCapacity(25)
        append(t, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `format(t)`'s bytes to `out` (a JSON line writes its times in place, no string per time).
    public static func append(_ t: Instant, to out: inout [UInt8]) {
        // Floor division by whole days without overflow, for any Int64.
        var day = t / LocalTime.secondsPerDay
        var sod = t % LocalTime.secondsPerDay
        if sod < 0 {
            sod += LocalTime.secondsPerDay
            day -= 1
        }
        sod += LocalTime.offsetSeconds
        if sod >= LocalTime.secondsPerDay {
            sod -= LocalTime.secondsPerDay
            day += 1
        }
        Digits.appendDate(CivilCalendar.civil(fromDays: day), to: &out)
        out.append(0x54)
        let s = Int(sod)
        Digits.append(s / 3600, width: 2, to: &out)
        out.append(0x3A)
        Digits.append(s / 60 % 60, width: 2, to: &out)
        out.append(0x3A)
        Digits.append(s % 60, width: 2, to: &out)
        out.append(contentsOf: "+07:00".utf8)
    }
}

/// `HH:MM` clock times of the configuration, as seconds after local midnight.
enum ClockTime {
    static func parse(_ s: some StringProtocol) -> Int? {
        let b = Array(s.utf8)
        guard b.count == 5, b[2] == 0x3A, let h = Digits.parse(b, 0, 2), let m = Digits.parse(b, 3, 2),
            m < 60, h < 24 || (h == 24 && m == 0)
        else { return nil }
        return (h * 60 + m) * 60
    }

    static func format(_ secondsOfDay: Int) -> String {
        Digits.pad(secondsOfDay / 3600, 2) + ":" + Digits.pad(secondsOfDay / 60 % 60, 2)
    }
}
