/// Why a delivered event is not applied (docs/worker.md, "Bad input never stops the line"). Each case has a stable
/// `code` that travels with the dead letter (header `x-sameday-refusal`, beside the readable `x-sameday-reason`), so
/// tools decide by the code and never by matching words in a message.
public enum EventRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The body is larger than any event can be (checked before decoding).
    case tooLarge(bytes: Int, limit: Int)
    /// The body does not decode or validate (the field is named).
    case invalid(EventDecodingError)
    /// A control character in a message property or header (the event's own strings are the decoder's).
    case controlCharacter(field: String)
    /// `occurredAt` or `newDueAt` outside the plausible window.
    case implausibleTime(String)
    case unknownUnit(String)
    /// The routing key is not `<block>.<unit>.<type>` of the body.
    case routingKeyMismatch(got: String, expected: String)
    /// The `dossier` header (what the shards hash) is missing or not the body's dossier.
    case shardHeaderMismatch(header: String?, dossier: String)
    /// The dossier code's agency is not the event's unit, nor a unit that `interlevel.csv` lets it act for
    /// (`agency` is nil when the code has no agency prefix at all).
    case foreignDossier(dossier: String, agency: String?, unit: String)
    /// The dossier is held with events of another unit, and the two are not a declared inter-level pair.
    case unitChanged(dossier: String, held: String, unit: String)
    /// The dossier was retired; its figures are final.
    case retired(dossier: String, closedDays: Int)
    /// A dossier not held, with an event older than the window in which retired dossiers are remembered: it could
    /// be one retired long ago (an old export sent again).
    case tooOld(occurredAt: Instant, horizon: Instant)
    /// The unit already holds its configured maximum of dossiers.
    case unitFull(unit: String, limit: Int)
    /// The core refused to apply it.
    case rejected(DossierError)

    /// The stable name of the refusal (a header value, a metric label, what `dead-letters replay` decides on).
    public var code: String {
        switch self {
        case .tooLarge: "too_large"
        case .invalid: "invalid_event"
        case .controlCharacter: "control_character"
        case .implausibleTime: "implausible_time"
        case .unknownUnit: "unknown_unit"
        case .routingKeyMismatch: "routing_key_mismatch"
        case .shardHeaderMismatch: "shard_header_mismatch"
        case .foreignDossier: "foreign_dossier"
        case .unitChanged: "unit_changed"
        case .retired: "dossier_retired"
        case .tooOld: "too_old"
        case .unitFull: "unit_full"
        case .rejected: "rejected"
        }
    }

    /// Every code, for documentation and metrics.
    public static let allCodes = [
        "too_large", "invalid_event", "control_character", "implausible_time", "unknown_unit", "routing_key_mismatch",
        "shard_header_mismatch", "foreign_dossier", "unit_changed", "dossier_retired", "too_old", "unit_full",
        "rejected",
    ]

    /// Refusals that a change of configuration can cure, so `sameday dead-letters replay` may send them again: a unit
    /// added to the registry, or a unit whose dossier limit was raised. Every other refusal is about the message
    /// itself, and replaying it would only launder it through a fresh routing key.
    public static let replayableCodes: Set<String> = ["unknown_unit", "unit_full"]

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit):
            "body of \(bytes) bytes is larger than the \(limit) bytes an event may have"
        case .invalid(let error): "invalid event: \(error)"
        case .controlCharacter(let field): "\(field): control character (U+0000–U+001F or U+007F)"
        case .implausibleTime(let why): why
        case .unknownUnit(let unit):
            "field \"unit\": unit \(Printable.quoted(unit)) is not in units.csv"
        case .routingKeyMismatch(let got, let expected):
            "routing key \(Printable.quoted(got, limit: 200)) does not match the event's block, unit and type "
                + "(expected \"\(expected)\")"
        case .shardHeaderMismatch(let header, let dossier):
            "header \"dossier\" \(header.map { Printable.quoted($0) } ?? "missing") differs from the body's "
                + "dossier \(Printable.quoted(dossier))"
        case .foreignDossier(let dossier, let agency, let unit):
            if let agency {
                "dossier \(Printable.quoted(dossier)) belongs to unit \(Printable.quoted(agency)) (its prefix), not "
                    + "to the event's unit \(Printable.quoted(unit)), and interlevel.csv declares no such pair"
            } else {
                "dossier \(Printable.quoted(dossier)) is not of the form <unit>-<yymmdd>-<number>, so it cannot be "
                    + "shown to belong to unit \(Printable.quoted(unit))"
            }
        case .unitChanged(let dossier, let held, let unit):
            "dossier \(Printable.quoted(dossier)) is held with events of unit \(Printable.quoted(held)); unit "
                + "\(Printable.quoted(unit)) may not act on it (interlevel.csv declares no such pair)"
        case .retired(let dossier, let days):
            "dossier retired: \(Printable.quoted(dossier)) was closed more than \(days) days before and its "
                + "figures are final"
        case .tooOld(let at, let horizon):
            "field \"occurredAt\": \(RFC3339.format(at)) is before \(RFC3339.format(horizon)), the start of the "
                + "window in which retired dossiers are remembered, and the dossier is not held"
        case .unitFull(let unit, let limit):
            "unit \(Printable.quoted(unit)) already holds \(limit) dossiers (maxDossiersPerUnit)"
        case .rejected(let error): "\(error)"
        }
    }
}

/// Text from outside made safe to print and store: control characters are escaped (`\u{0}`), so a log line or a
/// stored reason always reads back as written, and long text is cut.
public enum Printable {
    /// Whether the text holds a C0 control character or DEL.
    public static func hasControlCharacter(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// The text with control characters escaped, cut to `limit` characters.
    public static func escaped(_ text: String, limit: Int = 100) -> String {
        let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
        guard hasControlCharacter(cut) else { return cut }
        var out = ""
        for scalar in cut.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `escaped` in double quotes.
    public static func quoted(_ text: String, limit: Int = 100) -> String { "\"" + escaped(text, limit: limit) + "\"" }
}

/// The broker's part of a delivery that admission checks besides the body.
public struct DeliveryEnvelope: Sendable {
    public var routingKey: String
    /// The `dossier` header the consistent-hash exchange shards on (nil when absent).
    public var dossierHeader: String?
    /// The AMQP `message_id` (nil when absent).
    public var messageID: String?

    public init(routingKey: String, dossierHeader: String?, messageID: String? = nil) {
        self.routingKey = routingKey
        self.dossierHeader = dossierHeader
        self.messageID = messageID
    }
}

extension Configuration {
    /// What a consumer checks of every delivered event before it trusts its unit (the worker and `sameday sources`
    /// alike): the message properties hold no control characters; the unit is in the registry; the routing key
    /// says the body's block, unit and type (topic permissions check only the key); the `dossier` header is the
    /// body's dossier; and the unit may act on the dossier (`ownershipRefusal`). Nil when all hold.
    public func admissionRefusal(of event: DossierEvent, envelope: DeliveryEnvelope) -> EventRefusal? {
        if let id = envelope.messageID, Printable.hasControlCharacter(id) {
            return .controlCharacter(field: "property \"message_id\"")
        }
        if let header = envelope.dossierHeader, Printable.hasControlCharacter(header) {
            return .controlCharacter(field: "header \"dossier\"")
        }
        guard let unit = unitID(event.unit) else { return .unknownUnit(event.unit) }
        let block = self.unit(unit).block
        guard Unit.routingKey(envelope.routingKey, is: block, code: event.unit, type: event.type) else {
            return .routingKeyMismatch(
                got: envelope.routingKey, expected: Unit.routingKey(block: block, code: event.unit, type: event.type))
        }
        guard let header = envelope.dossierHeader, header.hasSameBytes(as: event.dossier) else {
            return .shardHeaderMismatch(header: envelope.dossierHeader, dossier: event.dossier)
        }
        return ownershipRefusal(dossier: event.dossier, unit: unit)
    }

    /// Why `unit` may not send events for `dossier`, or nil when it may: a dossier code starts with the agency id of
    /// the unit that registered it (docs/worker.md, "Ownership"), and only that unit, or one `interlevel.csv` pairs
    /// with it as the resolving unit, acts on it. Codes compare as bytes.
    public func ownershipRefusal(dossier: String, unit: UnitID) -> EventRefusal? {
        let code = units[Int(unit)].code
        guard let agency = DossierCode.agency(of: dossier) else {
            return .foreignDossier(dossier: dossier, agency: nil, unit: code)
        }
        if agency.hasSameBytes(as: code) { return nil }
        if let owner = unitID(String(agency)), sharesDossiers(receiving: owner, resolving: unit) { return nil }
        return .foreignDossier(dossier: dossier, agency: String(agency), unit: code)
    }

    /// Why an event of `unit` may not join a dossier held with events of the units `held` (nil when it may): each
    /// of them is `unit` itself or a declared inter-level pair with it, either way. Order-independent, so a
    /// restart gives the same answer.
    public func heldUnitRefusal(dossier: String, held: [UnitID], unit: UnitID) -> EventRefusal? {
        for other in held
        where other != unit && !sharesDossiers(receiving: other, resolving: unit)
            && !sharesDossiers(receiving: unit, resolving: other)
        {
            return .unitChanged(dossier: dossier, held: units[Int(other)].code, unit: units[Int(unit)].code)
        }
        return nil
    }
}

extension Unit {
    /// `<block>.<unit word>.<type>`: the routing key of an event (the broker module's `SameDayRoutingKey.event`).
    public static func routingKey(block: Block, code: String, type: EventType) -> String {
        block.rawValue + "." + routingWord(code) + "." + type.name
    }

    /// Whether `key` is `routingKey(block:code:type:)`, compared byte by byte without building it (every event
    /// delivered is checked).
    public static func routingKey(_ key: String, is block: Block, code: String, type: EventType) -> Bool {
        var rest = key.utf8.makeIterator()
        let dot = UInt8(ascii: ".")
        for byte in block.rawValue.utf8 where rest.next() != byte { return false }
        guard rest.next() == dot else { return false }
        for byte in code.utf8 where rest.next() != (byte == dot ? UInt8(ascii: "_") : byte) { return false }
        guard rest.next() == dot else { return false }
        for byte in type.name.utf8 where rest.next() != byte { return false }
        return rest.next() == nil
    }
}
