import SameDayCore

/// A date-time pattern of the unit system's exports, read as local time in UTC+07:00 (docs/rules.md §2.4).
///
/// Tokens: `yyyy`, `MM`/`M`, `dd`/`d`, `HH`/`H`, `mm`, `ss`; any other character must appear as is.
/// `rfc3339` accepts a full timestamp with offset.
public struct TimeFormat: Sendable, Equatable {
    enum Token: Equatable {
        case year, month(minDigits: Int), day(minDigits: Int), hour(minDigits: Int), minute, second
        case literal(UInt8)
    }
    public let pattern: String
    let tokens: [Token]?

    public static let rfc3339 = TimeFormat(pattern: "rfc3339", tokens: nil)

    private init(pattern: String, tokens: [Token]?) {
        self.pattern = pattern
        self.tokens = tokens
    }

    public struct PatternError: Error { var message: String }

    public init(_ pattern: String) throws(PatternError) {
        if pattern == "rfc3339" {
            self = .rfc3339
            return
        }
        var tokens: [Token] = []
        let bytes = Array(pattern.utf8)
        var i = 0
        func run(_ c: UInt8) -> Int {
            var n = 0
            while i + n < bytes.count && bytes[i + n] == c { n += 1 }
            return n
        }
        while i < bytes.count {
            let c = bytes[i]
            let n = run(c)
            switch (c, n) {
            case (UInt8(ascii: "y"), 4): tokens.append(.year)
            case (UInt8(ascii: "M"), 1...2): tokens.append(.month(minDigits: n))
            case (UInt8(ascii: "d"), 1...2): tokens.append(.day(minDigits: n))
            case (UInt8(ascii: "H"), 1...2): tokens.append(.hour(minDigits: n))
            case (UInt8(ascii: "m"), 2): tokens.append(.minute)
            case (UInt8(ascii: "s"), 2): tokens.append(.second)
            case (UInt8(ascii: "y"), _), (UInt8(ascii: "M"), _), (UInt8(ascii: "d"), _), (UInt8(ascii: "H"), _),
                (UInt8(ascii: "m"), _), (UInt8(ascii: "s"), _):
                throw PatternError(
                    message:
                        "\"\(pattern)\": \"\(String(repeating: Character(UnicodeScalar(c)), count: n))\" is not a token (use yyyy, MM, M, dd, d, HH, H, mm, ss or \"rfc3339\")"
                )
            default:
                guard c < 0x80, !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c | 0x20) else {
                    throw PatternError(
                        message: "\"\(pattern)\": letter \"\(Character(UnicodeScalar(c)))\" is not a token")
                }
                for _ in 0..<n { tokens.append(.literal(c)) }
            }
            i += n
        }
        guard tokens.contains(.year), tokens.contains(where: { if case .day = $0 { true } else { false } }),
            tokens.contains(where: { if case .month = $0 { true } else { false } })
        else { throw PatternError(message: "\"\(pattern)\": a pattern needs yyyy, MM and dd") }
        self.init(pattern: pattern, tokens: tokens)
    }

    /// What a text is under a pattern.
    public enum Match: Sendable, Equatable {
        case instant(Instant)
        /// The text does not have the pattern's shape.
        case mismatch
        /// The text has the pattern's shape but names no real date or time (32/05/2022, 29/02/2022, 24:00): why.
        case impossible(String)
    }

    /// The instant `text` names, or nil if it does not match or is not a real date and time.
    public func parse(_ text: some StringProtocol) -> Instant? {
        if case .instant(let t) = match(text) { return t }
        return nil
    }

    public func match(_ text: some StringProtocol) -> Match {
        guard let tokens else { return Self.matchRFC3339(String(text)) }
        let bytes = Array(text.utf8)
        var i = 0
        var (year, month, day, hour, minute, second) = (0, 0, 0, 0, 0, 0)
        func digits(min: Int, max: Int) -> Int? {
            var n = 0
            var value = 0
            while n < max, i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
                value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
                n += 1
                i += 1
            }
            return n >= min ? value : nil
        }
        for token in tokens {
            switch token {
            case .year: guard let v = digits(min: 4, max: 4) else { return .mismatch }; year = v
            case .month(let m): guard let v = digits(min: m, max: 2) else { return .mismatch }; month = v
            case .day(let m): guard let v = digits(min: m, max: 2) else { return .mismatch }; day = v
            case .hour(let m): guard let v = digits(min: m, max: 2) else { return .mismatch }; hour = v
            case .minute: guard let v = digits(min: 2, max: 2) else { return .mismatch }; minute = v
            case .second: guard let v = digits(min: 2, max: 2) else { return .mismatch }; second = v
            case .literal(let c):
                guard i < bytes.count, bytes[i] == c else { return .mismatch }
                i += 1
            }
        }
        guard i == bytes.count else { return .mismatch }
        if let why = Self.impossibility(year, month, day, hour, minute, second) { return .impossible(why) }
        guard let date = LocalDate(year: year, month: month, day: day) else { return .impossible("no such date") }
        return .instant(date.startInstant + Int64(hour * 3600 + minute * 60 + second))
    }

    static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]

    /// Why these fields name no real date and time, or nil when they do.
    static func impossibility(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int)
        -> String?
    {
        guard (1...12).contains(month) else { return "no such date: there is no month \(month)" }
        let length = (28...31).last { LocalDate(year: year, month: month, day: $0) != nil } ?? 31
        if day < 1 || day > length {
            var why = "no such date: \(monthNames[month - 1]) \(year) has \(length) days"
            if month == 2 && day == 29 { why += " (\(year) is not a leap year)" }
            return why
        }
        if hour > 23 {
            return hour == 24 && minute == 0 && second == 0
                ? "no such time: 24:00 is not a time of day (hours go 00–23; midnight is 00:00 of the next day)"
                : "no such time: hour \(hour) (hours go 00–23)"
        }
        if minute > 59 { return "no such time: minute \(minute) (minutes go 00–59)" }
        if second > 59 { return "no such time: second \(second) (seconds go 00–59)" }
        return nil
    }

    /// RFC 3339 through the core's parser; a text of the right shape (`yyyy-MM-ddTHH:mm:ss[.f][Z|±hh:mm]`) that it
    /// refuses names an impossible date or time, and says which.
    static func matchRFC3339(_ text: String) -> Match {
        if let t = RFC3339.parse(text) { return .instant(t) }
        let b = Array(text.utf8)
        func isDigit(_ i: Int) -> Bool { i < b.count && b[i] >= 0x30 && b[i] <= 0x39 }
        func number(_ from: Int, _ count: Int) -> Int? {
            guard (from..<(from + count)).allSatisfy(isDigit) else { return nil }
            return b[from..<(from + count)].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, [0x54, 0x74, 0x20].contains(b[10]), b[13] == 0x3A,
            b[16] == 0x3A, let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return .mismatch }
        var i = 19
        if i < b.count && b[i] == 0x2E {
            i += 1
            guard isDigit(i) else { return .mismatch }
            while isDigit(i) { i += 1 }
        }
        if i < b.count && (b[i] == 0x5A || b[i] == 0x7A) {
            i += 1
        } else if i + 6 == b.count, b[i] == 0x2B || b[i] == 0x2D, b[i + 3] == 0x3A, let oh = number(i + 1, 2),
            let om = number(i + 4, 2)
        {
            if oh > 23 || om > 59 { return .impossible("no such offset: \(String(decoding: b[i...], as: UTF8.self))") }
            i += 6
        } else {
            return .mismatch
        }
        guard i == b.count else { return .mismatch }
        return .impossible(impossibility(year, month, day, hour, minute, second) ?? "no such date")
    }
}
