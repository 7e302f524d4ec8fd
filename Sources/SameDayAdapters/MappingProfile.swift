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
        case dossier, procedure, status, occurredAt, unit, eventId, seq, channel, outcome, newDueAt, promisedAt
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

    /// Every canonical field but `promisedAt`: two records differing in anything else get different ids. (The
    /// list is what ids were derived from before `promisedAt` existed; adding to it would give every record of an
    /// existing export a new id, and a re-read file would be published twice.)
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
