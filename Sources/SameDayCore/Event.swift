/// The kind of change an event reports (docs/rules.md §3.3), with its national status code in the comment.
public enum EventType: UInt8, CaseIterable, Sendable, Hashable {
    case submitted = 0  // [1]
    case received  // [2] starts the clock (T0)
    case refused  // [3]
    case transferred  // [4]
    case supplementRequested  // [5] stops the clock
    case supplementReceived  // restarts it from zero
    case feeRequested  // [6] pauses it
    case feePaid  // resumes it
    case rescheduled  // moves the promise, not the lateness
    case resolved  // [9] stops it for good
    case returned  // [10]
    case withdrawn  // [7] stops it for good
    case stopped  // [8] stops it for good
    case extended  // moves the deadline itself, within what the law allows (Decree 23/2015: many copies)

    /// The wire name (`supplement_requested`, …).
    public var name: String {
        switch self {
        case .submitted: "submitted"
        case .received: "received"
        case .refused: "refused"
        case .transferred: "transferred"
        case .supplementRequested: "supplement_requested"
        case .supplementReceived: "supplement_received"
        case .feeRequested: "fee_requested"
        case .feePaid: "fee_paid"
        case .rescheduled: "rescheduled"
        case .resolved: "resolved"
        case .returned: "returned"
        case .withdrawn: "withdrawn"
        case .stopped: "stopped"
        case .extended: "extended"
        }
    }

    public init?(name: String) {
        guard let t = EventType.allCases.first(where: { $0.name == name }) else { return nil }
        self = t
    }
}

/// How a `received` dossier came in.
public enum Channel: UInt8, CaseIterable, Sendable, Hashable {
    case direct = 1, online, postal
    public var name: String {
        switch self {
        case .direct: "direct"
        case .online: "online"
        case .postal: "postal"
        }
    }
}

/// The result of a `resolved` dossier.
public enum Outcome: UInt8, CaseIterable, Sendable, Hashable {
    case approved = 1, rejected
    public var name: String { self == .approved ? "approved" : "rejected" }
}

/// One canonical dossier event (`sameday.dossier-event/1`, docs/rules.md §3.1). It carries no personal data.
public struct DossierEvent: Sendable, Hashable {
    /// The only schema this build reads and writes.
    public static let schema = "sameday.dossier-event/1"
    /// Limits on string fields, in UTF-8 bytes.
    public static let maxEventIdLength = 128
    public static let maxCodeLength = 64
    public static let maxSourceLength = 128
    /// The largest body a consumer reads (checked before decoding): a valid event is under 1 KiB, even with every
    /// field at its limit and every character escaped six-fold, so 64 KiB only leaves room for whitespace. The
    /// broker's `max_message_size` is set to the same.
    public static let maxBodyBytes = 65_536

    public var eventId: String
    public var dossier: String
    public var unit: String
    public var procedure: String
    public var type: EventType
    public var occurredAt: Instant
    public var seq: Int64?
    public var channel: Channel?
    public var outcome: Outcome?
    public var newDueAt: Instant?
    /// `received` only: the return date the desk wrote on the appointment slip (phiếu hẹn), compared with the
    /// deadline SameDay computes (docs/rules.md §3.1).
    public var promisedAt: Instant?
    public var source: String

    public init(
        eventId: String, dossier: String, unit: String, procedure: String, type: EventType, occurredAt: Instant,
        seq: Int64? = nil, channel: Channel? = nil, outcome: Outcome? = nil, newDueAt: Instant? = nil,
        promisedAt: Instant? = nil, source: String
    ) {
        self.eventId = eventId
        self.dossier = dossier
        self.unit = unit
        self.procedure = procedure
        self.type = type
        self.occurredAt = occurredAt
        self.seq = seq
        self.channel = channel
        self.outcome = outcome
        self.newDueAt = newDueAt
        self.promisedAt = promisedAt
        self.source = source
    }
}

/// Why an event was rejected; `field` names the offending field when there is one.
public struct EventDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case syntax(String)
        case missingField
        case unknownField
        case personalData
        case duplicateField
        case wrongType(expected: String)
        case badSchema(String)
        case unknownEventType(String)
        case badTimestamp
        case tooLong(limit: Int)
        case empty
        case badValue(String)
        case notAllowed(onType: String)
        /// A C0 control character or DEL in a string, raw or escaped (at this byte of the body).
        case controlCharacter(at: Int)
    }

    public var field: String?
    public var reason: Reason

    public init(field: String?, reason: Reason) {
        self.field = field
        self.reason = reason
    }

    public var description: String {
        let f = field.map { "field \"\($0)\": " } ?? ""
        switch reason {
        case .syntax(let m): return f + "malformed JSON: " + m
        case .missingField: return f + "missing"
        case .unknownField: return f + "unknown field (schema \(DossierEvent.schema) is closed)"
        case .personalData: return f + "personal data is not allowed in events; the adapter must drop it"
        case .duplicateField: return f + "appears twice"
        case .wrongType(let e): return f + "expected " + e
        case .badSchema(let s): return f + "unsupported schema \"\(s)\" (expected \"\(DossierEvent.schema)\")"
        case .unknownEventType(let t): return f + "unknown event type \"\(t)\""
        case .badTimestamp: return f + "not an RFC 3339 timestamp with offset (e.g. 2022-05-18T08:15:00+07:00)"
        case .tooLong(let n): return f + "longer than \(n) bytes"
        case .empty: return f + "empty"
        case .badValue(let m): return f + m
        case .notAllowed(let t): return f + "not allowed on a \"\(t)\" event"
        case .controlCharacter(let at): return f + "control character (U+0000–U+001F or U+007F) at byte \(at)"
        }
    }
}

/// Field names that look like personal data (compared lower-cased, without `_` or `-`). Keys starting with
/// `applicant` or `citizen` are refused too.
let personalDataFields: Set<String> = [
    "name", "fullname", "firstname", "lastname", "idnumber", "id", "cccd", "cmnd", "cmt", "passport",
    "passportnumber", "phone", "phonenumber", "mobile", "telephone", "tel", "address", "email", "mail", "dob",
    "dateofbirth", "birthdate", "birthday", "gender", "sex", "nationalid", "personalid", "taxcode", "socialinsurance",
]

func isPersonalDataField(_ key: String) -> Bool {
    let k = String(key.lowercased().filter { $0 != "_" && $0 != "-" })
    return personalDataFields.contains(k) || k.hasPrefix("applicant") || k.hasPrefix("citizen")
        || k.hasPrefix("owner")
}

extension DossierEvent {
    /// The most top-level keys an event object may have for the receiver to name its personal-data fields: the
    /// schema has 12, so more is not an event (and naming 90,000 keys would be work for nobody).
    public static let maxKeysNamed = 64

    /// The keys of a JSON object that are personal data, in the order of the text, found in one pass; `tooMany`
    /// when the object has more than `maxKeysNamed` keys; nil when the text is not a JSON object.
    public static func personalDataKeys(_ element: [UInt8]) -> (keys: [String], tooMany: Bool)? {
        guard let keys = (try? JSONParser.parse(element))?.objectKeys else { return nil }
        guard keys.count <= maxKeysNamed else { return ([], true) }
        return (keys.filter(isPersonalDataField), false)
    }
}

// MARK: - Decoding

extension DossierEvent {
    /// Decodes one event from its JSON text (one line of a JSON-lines file, or one message body).
    public static func decode(_ text: String) throws(EventDecodingError) -> DossierEvent {
        var text = text
        let result: Result<DossierEvent, EventDecodingError> = text.withUTF8 { buf in
            do throws(EventDecodingError) {
                return .success(try decode(UnsafeRawBufferPointer(buf)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Decodes one event from UTF-8 bytes with a hand-written scanner for this flat schema: Foundation's decoder is
    /// an order of magnitude slower and the worker decodes every message.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(EventDecodingError) -> DossierEvent {
        var s = EventScanner(bytes)
        return try s.event()
    }

    /// Decodes one event from a byte array.
    public static func decode(bytes: [UInt8]) throws(EventDecodingError) -> DossierEvent {
        let r: Result<DossierEvent, EventDecodingError> = bytes.withUnsafeBytes { buf in
            do throws(EventDecodingError) { return .success(try decode(buf)) } catch { return .failure(error) }
        }
        return try r.get()
    }
}

private enum EventField: Int, CaseIterable {
    case schema, eventId, dossier, unit, procedure, type, occurredAt, seq, channel, outcome, newDueAt, promisedAt,
        source
    var name: String {
        switch self {
        case .schema: "schema"
        case .eventId: "eventId"
        case .dossier: "dossier"
        case .unit: "unit"
        case .procedure: "procedure"
        case .type: "type"
        case .occurredAt: "occurredAt"
        case .seq: "seq"
        case .channel: "channel"
        case .outcome: "outcome"
        case .newDueAt: "newDueAt"
        case .promisedAt: "promisedAt"
        case .source: "source"
        }
    }
}

private struct EventScanner {
    let b: UnsafeRawBufferPointer
    var i = 0
    /// Scratch space for strings with escapes (rare).
    var scratch: [UInt8] = []

    init(_ b: UnsafeRawBufferPointer) { self.b = b }

    // Fields are passed as `EventField` and named only when an error is built: no strings on the happy path.
    @inline(__always) func syntax(_ m: String, _ field: EventField? = nil) -> EventDecodingError {
        EventDecodingError(field: field?.name, reason: .syntax(m + " at byte \(i)"))
    }

    func controlCharacter(_ field: EventField?) -> EventDecodingError {
        EventDecodingError(field: field?.name, reason: .controlCharacter(at: i))
    }

    @inline(__always) mutating func space() {
        while i < b.count {
            let c = b[i]
            guard c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D else { return }
            i += 1
        }
    }

    /// The raw bytes of a string token (between quotes) when it has no escapes; otherwise unescaped into `scratch`.
    /// Returns (start, count, escaped).
    @inline(__always) mutating func stringToken(_ field: EventField?) throws(EventDecodingError) -> (Int, Int, Bool) {
        guard i < b.count, b[i] == 0x22 else {
            guard let field else { throw syntax("expected a quoted key") }
            throw EventDecodingError(field: field.name, reason: .wrongType(expected: "a string"))
        }
        i += 1
        let start = i
        while i < b.count {
            let c = b[i]
            if c == 0x22 { i += 1; return (start, i - 1 - start, false) }
            if c == 0x5C { break }
            if c < 0x20 || c == 0x7F { throw controlCharacter(field) }
            i += 1
        }
        guard i < b.count else { throw syntax("unterminated string", field) }
        // Slow path: escapes.
        scratch.removeAll(keepingCapacity: true)
        for k in start..<i { scratch.append(b[k]) }
        while i < b.count {
            let c = b[i]
            if c == 0x22 { i += 1; return (0, scratch.count, true) }
            if c == 0x5C {
                guard JSONEscapes.unescape(b, &i, into: &scratch) != nil else { throw syntax("bad escape", field) }
                // An escaped control character (`\u0000`) is as unprintable as a raw one: a NUL cuts C strings
                // (SQLite's text reader) and PostgreSQL refuses it in text outright.
                if let last = scratch.last, last < 0x20 || last == 0x7F { throw controlCharacter(field) }
                continue
            }
            if c < 0x20 || c == 0x7F { throw controlCharacter(field) }
            scratch.append(c)
            i += 1
        }
        throw syntax("unterminated string", field)
    }

    @inline(__always) func bytesOf(_ tok: (Int, Int, Bool)) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: b[tok.0..<(tok.0 + tok.1)])
    }

    @inline(__always) mutating func stringValue(_ f: EventField, limit: Int) throws(EventDecodingError) -> String {
        let tok = try stringToken(f)
        guard tok.1 <= limit else { throw EventDecodingError(field: f.name, reason: .tooLong(limit: limit)) }
        guard tok.1 > 0 else { throw EventDecodingError(field: f.name, reason: .empty) }
        let s: String? = tok.2 ? String(validating: scratch, as: UTF8.self) : EventScanner.string(bytesOf(tok))
        guard let s else { throw EventDecodingError(field: f.name, reason: .badValue("invalid UTF-8")) }
        return s
    }

    /// ASCII (the usual case for codes) takes the fast non-generic path; anything else is validated as UTF-8.
    @inline(__always) static func string(_ raw: UnsafeRawBufferPointer) -> String? {
        var bits: UInt8 = 0
        for c in raw { bits |= c }  // branch-free, vectorised
        if bits < 0x80 { return String(decoding: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) }
        return String(validating: raw, as: UTF8.self)
    }

    /// Compares a token with an ASCII word without creating a String.
    @inline(__always) func tokenEquals(_ tok: (Int, Int, Bool), _ word: StaticString) -> Bool {
        guard tok.1 == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        if tok.2 {
            for k in 0..<tok.1 where scratch[k] != w[k] { return false }
        } else {
            for k in 0..<tok.1 where b[tok.0 + k] != w[k] { return false }
        }
        return true
    }

    func tokenString(_ tok: (Int, Int, Bool)) -> String {
        tok.2 ? String(decoding: scratch, as: UTF8.self) : String(decoding: bytesOf(tok), as: UTF8.self)
    }

    @inline(__always) mutating func timestamp(_ f: EventField) throws(EventDecodingError) -> Instant {
        let tok = try stringToken(f)
        let t: Instant?
        if tok.2 {
            t = scratch.withUnsafeBytes { RFC3339.parse($0) }
        } else {
            t = RFC3339.parse(bytesOf(tok))
        }
        guard let t else { throw EventDecodingError(field: f.name, reason: .badTimestamp) }
        return t
    }

    mutating func isNull() -> Bool {
        if i + 4 <= b.count, b[i] == 0x6E, b[i + 1] == 0x75, b[i + 2] == 0x6C, b[i + 3] == 0x6C {
            i += 4
            return true
        }
        return false
    }

    /// Skips any JSON value (for the value of a rejected key, so the error names the key and not the value).
    mutating func fieldKey(_ tok: (Int, Int, Bool)) -> EventField? {
        switch tok.1 {
        case 3: if tokenEquals(tok, "seq") { return .seq }
        case 4:
            if tokenEquals(tok, "unit") { return .unit }
            if tokenEquals(tok, "type") { return .type }
        case 6:
            if tokenEquals(tok, "schema") { return .schema }
            if tokenEquals(tok, "source") { return .source }
        case 7:
            if tokenEquals(tok, "eventId") { return .eventId }
            if tokenEquals(tok, "dossier") { return .dossier }
            if tokenEquals(tok, "channel") { return .channel }
            if tokenEquals(tok, "outcome") { return .outcome }
        case 8: if tokenEquals(tok, "newDueAt") { return .newDueAt }
        case 9: if tokenEquals(tok, "procedure") { return .procedure }
        case 10:
            if tokenEquals(tok, "occurredAt") { return .occurredAt }
            if tokenEquals(tok, "promisedAt") { return .promisedAt }
        default: break
        }
        return nil
    }

    mutating func event() throws(EventDecodingError) -> DossierEvent {
        space()
        guard i < b.count, b[i] == 0x7B else { throw syntax("expected a JSON object") }
        i += 1
        var seen = 0
        var eventId = "", dossier = "", unit = "", procedure = "", source = ""
        var type = EventType.submitted
        var occurredAt: Instant = 0
        var seq: Int64? = nil
        var channel: Channel? = nil
        var outcome: Outcome? = nil
        var newDueAt: Instant? = nil
        var promisedAt: Instant? = nil
        space()
        if i < b.count, b[i] == 0x7D {
            i += 1
        } else {
            while true {
                space()
                let keyTok = try stringToken(nil)
                guard let f = fieldKey(keyTok) else {
                    let k = tokenString(keyTok)
                    throw EventDecodingError(field: k, reason: isPersonalDataField(k) ? .personalData : .unknownField)
                }
                let bit = 1 << f.rawValue
                if seen & bit != 0 { throw EventDecodingError(field: f.name, reason: .duplicateField) }
                seen |= bit
                space()
                guard i < b.count, b[i] == 0x3A else { throw syntax("expected ':'", f) }
                i += 1
                space()
                switch f {
                case .schema:
                    let tok = try stringToken(f)
                    guard tokenEquals(tok, "sameday.dossier-event/1") else {
                        throw EventDecodingError(field: f.name, reason: .badSchema(tokenString(tok)))
                    }
                case .eventId: eventId = try stringValue(f, limit: DossierEvent.maxEventIdLength)
                case .dossier: dossier = try stringValue(f, limit: DossierEvent.maxCodeLength)
                case .unit: unit = try stringValue(f, limit: DossierEvent.maxCodeLength)
                case .procedure: procedure = try stringValue(f, limit: DossierEvent.maxCodeLength)
                case .source: source = try stringValue(f, limit: DossierEvent.maxSourceLength)
                case .type:
                    let tok = try stringToken(f)
                    guard let t = eventType(tok) else {
                        throw EventDecodingError(field: f.name, reason: .unknownEventType(tokenString(tok)))
                    }
                    type = t
                case .occurredAt: occurredAt = try timestamp(f)
                case .newDueAt:
                    if !isNull() { newDueAt = try timestamp(f) }
                case .promisedAt:
                    if !isNull() { promisedAt = try timestamp(f) }
                case .seq:
                    if !isNull() { seq = try integer(f) }
                case .channel:
                    if !isNull() {
                        let tok = try stringToken(f)
                        if tokenEquals(tok, "direct") {
                            channel = .direct
                        } else if tokenEquals(tok, "online") {
                            channel = .online
                        } else if tokenEquals(tok, "postal") {
                            channel = .postal
                        } else {
                            throw EventDecodingError(
                                field: f.name,
                                reason: .badValue("must be direct, online or postal, not \"\(tokenString(tok))\""))
                        }
                    }
                case .outcome:
                    if !isNull() {
                        let tok = try stringToken(f)
                        if tokenEquals(tok, "approved") {
                            outcome = .approved
                        } else if tokenEquals(tok, "rejected") {
                            outcome = .rejected
                        } else {
                            throw EventDecodingError(
                                field: f.name,
                                reason: .badValue("must be approved or rejected, not \"\(tokenString(tok))\""))
                        }
                    }
                }
                space()
                guard i < b.count else { throw syntax("unterminated object") }
                if b[i] == 0x2C { i += 1; continue }
                if b[i] == 0x7D { i += 1; break }
                throw syntax("expected ',' or '}'")
            }
        }
        space()
        guard i == b.count else { throw syntax("text after the object") }
        // Required fields, in the schema's order so the first missing one is named.
        for f in [EventField.schema, .eventId, .dossier, .unit, .procedure, .type, .occurredAt, .source]
        where seen & (1 << f.rawValue) == 0 {
            throw EventDecodingError(field: f.name, reason: .missingField)
        }
        if channel != nil && type != .received {
            throw EventDecodingError(field: "channel", reason: .notAllowed(onType: type.name))
        }
        if outcome != nil && type != .resolved {
            throw EventDecodingError(field: "outcome", reason: .notAllowed(onType: type.name))
        }
        if type == .rescheduled || type == .extended {
            if newDueAt == nil { throw EventDecodingError(field: "newDueAt", reason: .missingField) }
        } else if newDueAt != nil {
            throw EventDecodingError(field: "newDueAt", reason: .notAllowed(onType: type.name))
        }
        if promisedAt != nil && type != .received {
            throw EventDecodingError(field: "promisedAt", reason: .notAllowed(onType: type.name))
        }
        return DossierEvent(
            eventId: eventId, dossier: dossier, unit: unit, procedure: procedure, type: type, occurredAt: occurredAt,
            seq: seq, channel: channel, outcome: outcome, newDueAt: newDueAt, promisedAt: promisedAt, source: source)
    }

    mutating func integer(_ f: EventField) throws(EventDecodingError) -> Int64 {
        let start = i
        var v: Int64 = 0
        while i < b.count, b[i] &- 48 < 10 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(b[i] - 48))
            guard !o1, !o2 else { throw EventDecodingError(field: f.name, reason: .badValue("too large")) }
            v = a
            i += 1
        }
        guard i > start else {
            throw EventDecodingError(field: f.name, reason: .wrongType(expected: "an integer ≥ 0"))
        }
        if i < b.count, b[i] == 0x2E || b[i] == 0x65 || b[i] == 0x45 {
            throw EventDecodingError(field: f.name, reason: .wrongType(expected: "an integer ≥ 0"))
        }
        if i - start > 1 && b[start] == 0x30 { throw syntax("leading zero in a number", f) }
        return v
    }

    func eventType(_ tok: (Int, Int, Bool)) -> EventType? {
        switch tok.1 {
        case 8:
            if tokenEquals(tok, "extended") { return .extended }
            if tokenEquals(tok, "received") { return .received }
            if tokenEquals(tok, "resolved") { return .resolved }
            if tokenEquals(tok, "returned") { return .returned }
            if tokenEquals(tok, "fee_paid") { return .feePaid }
        case 7:
            if tokenEquals(tok, "refused") { return .refused }
            if tokenEquals(tok, "stopped") { return .stopped }
        case 9:
            if tokenEquals(tok, "submitted") { return .submitted }
            if tokenEquals(tok, "withdrawn") { return .withdrawn }
        case 11:
            if tokenEquals(tok, "transferred") { return .transferred }
            if tokenEquals(tok, "rescheduled") { return .rescheduled }
        case 13: if tokenEquals(tok, "fee_requested") { return .feeRequested }
        case 19: if tokenEquals(tok, "supplement_received") { return .supplementReceived }
        case 20: if tokenEquals(tok, "supplement_requested") { return .supplementRequested }
        default: break
        }
        return nil
    }
}

// MARK: - Encoding

extension DossierEvent {
    /// The canonical JSON text: keys in the schema's order, absent optionals omitted, times in +07:00.
    public func encoded() -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("schema", DossierEvent.schema)
        w.field("eventId", eventId)
        w.field("dossier", dossier)
        w.field("unit", unit)
        w.field("procedure", procedure)
        w.field("type", type.name)
        w.field("occurredAt", RFC3339.format(occurredAt))
        if let seq { w.field("seq", seq) }
        if let channel { w.field("channel", channel.name) }
        if let outcome { w.field("outcome", outcome.name) }
        if let newDueAt { w.field("newDueAt", RFC3339.format(newDueAt)) }
        if let promisedAt { w.field("promisedAt", RFC3339.format(promisedAt)) }
        w.field("source", source)
        w.endObject()
        return w.text
    }
}
