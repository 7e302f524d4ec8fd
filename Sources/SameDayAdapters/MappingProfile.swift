import Foundation
import SameDayCore

/// How one unit system's export maps to canonical events (docs/adapters.md, "Writing a profile"). A JSON file:
///
/// ```json
/// {
///   "source": "motcua-q1",                 // the event's `source`, and the prefix of derived event ids
///   "format": "csv",                       // "csv" or "jsonl"
///   "delimiter": "auto",                   // csv only: ";", "," or "auto" (from the header line)
///   "columns": {"dossier": "Mã hồ sơ", "procedure": "Mã TTHC", "status": "Trạng thái",
///               "occurredAt": "Thời gian", "unit": "Mã đơn vị", "eventId": …, "seq": …, "channel": …,
///               "outcome": …, "newDueAt": …},   // source column (csv) or key (jsonl) per canonical field
///   "unit": "760",                         // the unit when there is no unit column
///   "units": ["760", "26734"],             // optional: the only units this system may publish for
///   "timeFormats": ["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm", "rfc3339"],
///   "statuses": {"Đã tiếp nhận": "received", "Đang xử lý": "skip"},
///   "nationalStatusCodes": true,           // also map the national codes 1–10
///   "channels": {"Trực tiếp": "direct"}, "outcomes": {"Đạt": "approved"},
///   "eventIdFrom": ["dossier", "status", "occurredAt"]   // derived ids from these fields (default: all)
/// }
/// ```
///
/// Columns the profile does not name are never read, so personal data in an export (names, ID numbers, phone
/// numbers) never reaches an event.
public struct MappingProfile: Sendable {
    public enum Format: String, Sendable { case csv, jsonl }
    /// The canonical fields a profile can take from the source.
    public enum Field: String, CaseIterable, Sendable {
        case dossier, procedure, status, occurredAt, unit, eventId, seq, channel, outcome, newDueAt
    }
    /// What a status value becomes: an event type, or nothing (a status that is not a change SameDay tracks).
    public enum StatusMapping: Sendable, Equatable {
        case event(EventType)
        case skip
    }

    public var source: String
    public var format: Format
    /// nil: detect from the header line.
    public var delimiter: UInt8?
    public var columns: [Field: String]
    public var fixedUnit: String?
    public var allowedUnits: Set<String>?
    public var timeFormats: [TimeFormat]
    /// Keys are normalised with `MappingProfile.normalise` (trimmed, lower-cased).
    public var statuses: [String: StatusMapping]
    public var channels: [String: SameDayCore.Channel]
    public var outcomes: [String: Outcome]
    /// The canonical fields a derived event id is computed from (when the source has no id column).
    public var eventIdFrom: [Field]

    /// Every canonical field: two records differing in anything get different ids.
    public static let defaultEventIdFields: [Field] = [
        .dossier, .unit, .procedure, .status, .occurredAt, .seq, .channel, .outcome, .newDueAt,
    ]

    /// The national status codes (docs/rules.md §3.3) and the event types they stand for.
    public static let nationalStatusCodes: [String: EventType] = [
        "1": .submitted, "2": .received, "3": .refused, "4": .transferred, "5": .supplementRequested,
        "6": .feeRequested, "7": .withdrawn, "8": .stopped, "9": .resolved, "10": .returned,
    ]

    /// Status, channel and outcome values are compared trimmed and lower-cased (Swift compares Vietnamese text
    /// by canonical equivalence, so composed and decomposed diacritics match).
    public static func normalise(_ value: some StringProtocol) -> String {
        value.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The keys a profile may have.
    public static let keys = [
        "channels", "columns", "delimiter", "description", "eventIdFrom", "format", "nationalStatusCodes", "outcomes",
        "source", "statuses", "timeFormats", "unit", "units",
    ]

    /// Reads and checks a profile; every error names the file, the line and column, the key path and what is wrong.
    public static func parse(_ bytes: [UInt8], file: String) throws(ProfileError) -> MappingProfile {
        do throws(ConfigurationError) {
            return try read(bytes, file: file)
        } catch {
            throw ProfileError(error)
        }
    }

    static func read(_ bytes: [UInt8], file: String) throws(ConfigurationError) -> MappingProfile {
        let reader = JSONReader(file: file)
        let document = try reader.document(bytes)
        guard case .object = document.value else {
            throw reader.error(document, "$", "the profile must be a JSON object, found \(document.found)")
        }
        let object = try JSONObject(reader: reader, node: document, path: "$")
        try object.only(keys)
        func fail(_ key: String, _ message: String) -> ConfigurationError { object.error(key, message) }
        func string(_ key: String, required: Bool) throws(ConfigurationError) -> String? {
            guard let text = try object.string(key) else {
                if required { throw fail(key, "missing") }
                return nil
            }
            guard !text.isEmpty else { throw fail(key, "expected a non-empty string, found \"\"") }
            return text
        }
        func stringMap(_ key: String) throws(ConfigurationError) -> [(key: String, value: String)] {
            try object.stringMap(key)
        }
        /// An error about a key of `columns`, `statuses`, … (at its value, else at the map, else at the profile).
        func failIn(_ map: String, _ key: String, _ message: String) -> ConfigurationError {
            let node = object[map].flatMap { $0[key] } ?? object[map] ?? document
            return reader.error(node, object.path(map) + "." + key, message)
        }

        let source = try string("source", required: true)!
        guard source.utf8.count <= 64, source.allSatisfy({ !$0.isWhitespace }) else {
            throw fail("source", "at most 64 bytes, no spaces (it prefixes derived event ids, which are ≤ 128 bytes)")
        }
        let formatText = try string("format", required: true)!
        guard let format = Format(rawValue: formatText) else {
            throw fail("format", "\"\(formatText)\" is not a format (expected \"csv\" or \"jsonl\")")
        }
        var delimiter: UInt8?
        if let text = try string("delimiter", required: false) {
            guard format == .csv else { throw fail("delimiter", "only for the csv format") }
            switch text {
            case ";": delimiter = UInt8(ascii: ";")
            case ",": delimiter = UInt8(ascii: ",")
            case "auto": delimiter = nil
            default: throw fail("delimiter", "\"\(text)\" is not a delimiter (expected \";\", \",\" or \"auto\")")
            }
        }

        var columns: [Field: String] = [:]
        for (key, name) in try stringMap("columns") {
            guard let field = Field(rawValue: key) else {
                throw failIn(
                    "columns", key,
                    "not a canonical field (expected one of \(Field.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw failIn("columns", key, "the column name is empty")
            }
            columns[field] = name
        }
        for field in [Field.dossier, .procedure, .status, .occurredAt] where columns[field] == nil {
            throw failIn("columns", field.rawValue, "missing: every event needs its \(field.rawValue)")
        }
        let fixedUnit = try string("unit", required: false)
        switch (columns[.unit], fixedUnit) {
        case (nil, nil):
            throw failIn("columns", "unit", "missing: name a unit column, or set \"unit\" to a fixed unit code")
        case (.some, .some): throw fail("unit", "set either a fixed unit or columns.unit, not both")
        default: break
        }
        var allowedUnits: Set<String>?
        if let list = try object.strings("units") {
            guard !list.isEmpty else { throw fail("units", "expected a non-empty array of unit codes, found []") }
            allowedUnits = Set(list)
        }
        if let fixedUnit, let allowedUnits, !allowedUnits.contains(fixedUnit) {
            throw fail("unit", "\"\(fixedUnit)\" is not in \"units\"")
        }

        var timeFormats: [TimeFormat] = []
        if let list = try object.array("timeFormats") {
            guard !list.isEmpty else { throw fail("timeFormats", "expected a non-empty array of patterns, found []") }
            for (index, item) in list.enumerated() {
                let pattern = try reader.string(item, "timeFormats[\(index)]")
                do {
                    timeFormats.append(try TimeFormat(pattern))
                } catch {
                    throw reader.error(item, "timeFormats[\(index)]", error.message)
                }
            }
        } else {
            timeFormats = [.rfc3339]
        }

        var statuses: [String: StatusMapping] = [:]
        if let flag = try object.bool("nationalStatusCodes") {
            if flag { for (code, type) in nationalStatusCodes { statuses[code] = .event(type) } }
        }
        for (label, target) in try stringMap("statuses") {
            let mapping: StatusMapping
            if target == "skip" {
                mapping = .skip
            } else if let type = EventType(name: target) {
                mapping = .event(type)
            } else {
                throw failIn(
                    "statuses", label,
                    "\"\(target)\" is not an event type (expected \"skip\" or one of \(EventType.allCases.map(\.name).joined(separator: ", ")))"
                )
            }
            statuses[normalise(label)] = mapping
            // The label as written too, so that an export using the profile's own spelling needs no lower-casing.
            statuses[label.trimmingCharacters(in: .whitespaces)] = mapping
        }
        guard !statuses.isEmpty else {
            throw fail(
                "statuses", "missing: map the unit system's status values, or set \"nationalStatusCodes\": true")
        }

        var channels: [String: SameDayCore.Channel] = [
            "direct": .direct, "online": .online, "postal": .postal, "trực tiếp": .direct, "trực tuyến": .online,
            "bưu chính": .postal, "bưu chính công ích": .postal,
        ]
        for (label, target) in try stringMap("channels") {
            guard let channel = SameDayCore.Channel.allCases.first(where: { $0.name == target }) else {
                throw failIn("channels", label, "\"\(target)\" is not a channel (expected direct, online or postal)")
            }
            channels[normalise(label)] = channel
        }
        var outcomes: [String: Outcome] = ["approved": .approved, "rejected": .rejected]
        for (label, target) in try stringMap("outcomes") {
            guard let outcome = Outcome.allCases.first(where: { $0.name == target }) else {
                throw failIn("outcomes", label, "\"\(target)\" is not an outcome (expected approved or rejected)")
            }
            outcomes[normalise(label)] = outcome
        }
        var eventIdFrom = defaultEventIdFields
        if let list = try object.array("eventIdFrom") {
            guard !list.isEmpty else {
                throw fail("eventIdFrom", "expected a non-empty array of canonical field names, found []")
            }
            eventIdFrom = []
            for (index, item) in list.enumerated() {
                guard case .string(let name) = item.value, let field = Field(rawValue: name), field != .eventId else {
                    throw reader.error(
                        item, "eventIdFrom[\(index)]",
                        "not a canonical field (expected one of \(defaultEventIdFields.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                eventIdFrom.append(field)
            }
            for needed in [Field.dossier, .status, .occurredAt] where !eventIdFrom.contains(needed) {
                throw fail(
                    "eventIdFrom",
                    "must include \(needed.rawValue): without it, different changes of a dossier would get the same id")
            }
        }
        return MappingProfile(
            source: source, format: format, delimiter: delimiter, columns: columns, fixedUnit: fixedUnit,
            allowedUnits: allowedUnits, timeFormats: timeFormats, statuses: statuses, channels: channels,
            outcomes: outcomes, eventIdFrom: eventIdFrom)
    }

    /// Reads a profile file.
    public static func load(path: String) throws(ProfileError) -> MappingProfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProfileError(file: path, path: "$", message: "cannot read the file")
        }
        return try parse([UInt8](data), file: path)
    }
}

/// A profile that cannot be used: the file, where (line and column), the key path (`columns.status`; `$` for the
/// whole profile) and what is wrong.
public struct ProfileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var path: String
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    init(_ error: ConfigurationError) {
        self.init(
            file: error.file, line: error.line, column: error.column, path: error.keyPath ?? "$",
            message: error.message)
    }

    public var description: String {
        ConfigurationError(file: file, line: line, column: column, path: path, message: message).description
    }
}

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
