import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore

/// What became of one source record.
public enum MappedRecord: Sendable {
    /// A canonical event and its broker message.
    case event(DossierEvent, OutboundMessage)
    /// A status the profile maps to `skip` (not a change SameDay tracks).
    case skipped
    /// Not usable, with the reason for the rejects file.
    case rejected(String)
}

/// Turns source records into canonical events with a profile: finds the columns, parses times, maps statuses,
/// derives event ids, and validates the result with the core's strict decoder (so an event the worker would
/// refuse is refused here, with the same field-naming reason).
public struct RecordMapper: Sendable {
    public let profile: MappingProfile
    public let configuration: Configuration
    public let names: SameDayProducerNames
    /// The window of plausible event times; nil checks nothing (DossierEvent's own limits still apply).
    public var eventBounds: EventTimeBounds?
    /// The clock the window's upper end is measured from.
    public var now: Instant
    /// Column index per field (CSV).
    private var indexes: [MappingProfile.Field: Int] = [:]
    private var headerCount = 0

    /// For CSV, `header` is the file's header line: every column the profile names must be in it.
    public init(
        profile: MappingProfile, configuration: Configuration, names: SameDayProducerNames, header: [String]?,
        file: String = "input", eventBounds: EventTimeBounds? = .standard, now: Instant = wallClockNow()
    ) throws {
        self.eventBounds = eventBounds
        self.now = now
        self.profile = profile
        self.configuration = configuration
        self.names = names
        if let header {
            headerCount = header.count
            for field in MappingProfile.Field.allCases {
                guard let column = profile.columns[field] else { continue }
                let wanted = column.trimmingCharacters(in: .whitespaces)
                guard let index = header.firstIndex(where: { $0 == wanted }) else {
                    throw AdapterError(
                        "\(file): the profile's columns.\(field.rawValue) names column \"\(column)\", which is not in the header (\(header.joined(separator: ", ")))"
                    )
                }
                indexes[field] = index
            }
        }
    }

    /// Maps one record.
    public func map(_ record: SourceRecord) -> MappedRecord {
        if let error = record.syntaxError { return .rejected("malformed CSV: \(error)") }
        var values: [MappingProfile.Field: String] = [:]
        if profile.format == .csv {
            guard record.fields.count == headerCount else {
                return .rejected("malformed CSV: \(record.fields.count) fields, the header has \(headerCount)")
            }
            for (field, index) in indexes {
                let value = record.fields[index].trimmingBlanks
                if !value.isEmpty { values[field] = value }
            }
        } else {
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(record.text)) as? [String: Any] else {
                    return .rejected("malformed JSON: a line must be one JSON object")
                }
                object = parsed
            } catch {
                return .rejected("malformed JSON: the line is not a valid JSON object")
            }
            for (field, key) in profile.columns {
                switch object[key] {
                case let text as String:
                    let trimmed = text.trimmingCharacters(in: .whitespaces)
                    if !trimmed.isEmpty { values[field] = trimmed }
                case let number as NSNumber:
                    values[field] = number.stringValue
                case nil, is NSNull:
                    break
                default:
                    return .rejected("field \"\(key)\" (\(field.rawValue)): expected a string or a number")
                }
            }
        }
        return map(values)
    }

    func map(_ values: [MappingProfile.Field: String]) -> MappedRecord {
        func column(_ field: MappingProfile.Field) -> String {
            "\(profile.format == .csv ? "column" : "field") \"\(profile.columns[field] ?? field.rawValue)\""
        }
        for field in [MappingProfile.Field.dossier, .procedure, .status, .occurredAt] where values[field] == nil {
            return .rejected("\(column(field)) (\(field.rawValue)) is empty")
        }
        // A NUL or another control character would be cut or refused further on (SQLite's text reader,
        // PostgreSQL): the column that holds it is named here, where the unit's IT staff can find it.
        for (field, value) in values.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where Printable.hasControlCharacter(value) {
            return .rejected(
                "\(column(field)) (\(field.rawValue)): control character (U+0000–U+001F or U+007F) in "
                    + Printable.quoted(value))
        }
        let status = values[.status]!
        let type: EventType
        switch profile.statuses[status] ?? profile.statuses[MappingProfile.normalise(status)] {
        case .event(let t)?: type = t
        case .skip?: return .skipped
        case nil: return .rejected("\(column(.status)): unknown status \"\(status)\" (not in the profile's statuses)")
        }
        let occurredAt: Instant
        switch parseTime(values[.occurredAt]!) {
        case .success(let t): occurredAt = t
        case .failure(let why): return .rejected("\(column(.occurredAt)): \(why)")
        }
        guard let unit = profile.fixedUnit ?? values[.unit] else {
            return .rejected("\(column(.unit)) (unit) is empty")
        }
        if let allowed = profile.allowedUnits, !allowed.contains(unit) {
            return .rejected(
                "unit \"\(unit)\" is not one of this unit system's units (profile \"units\": \(allowed.sorted().joined(separator: ", ")))"
            )
        }
        guard configuration.unitID(unit) != nil else {
            return .rejected("unit \"\(unit)\" is not in the units registry (units.csv)")
        }
        if let why = Self.foreignDossier(values[.dossier]!, unit: unit, configuration: configuration) {
            return .rejected("\(column(.dossier)): \(why)")
        }
        var seq: Int64?
        if let text = values[.seq] {
            guard let value = Int64(text), value >= 0 else {
                return .rejected("\(column(.seq)): \"\(text)\" is not a whole number ≥ 0")
            }
            seq = value
        }
        var channel: SameDayCore.Channel?
        if type == .received, let text = values[.channel] {
            guard let value = profile.channels[MappingProfile.normalise(text)] else {
                return .rejected("\(column(.channel)): unknown channel \"\(text)\"")
            }
            channel = value
        }
        var outcome: Outcome?
        if type == .resolved, let text = values[.outcome] {
            guard let value = profile.outcomes[MappingProfile.normalise(text)] else {
                return .rejected("\(column(.outcome)): unknown outcome \"\(text)\"")
            }
            outcome = value
        }
        var newDueAt: Instant?
        if type == .rescheduled || type == .extended, let text = values[.newDueAt] {
            switch parseTime(text) {
            case .success(let t): newDueAt = t
            case .failure(let why): return .rejected("\(column(.newDueAt)): \(why)")
            }
        }
        var promisedAt: Instant?
        if type == .received, let text = values[.promisedAt] {
            switch parseTime(text) {
            case .success(let t): promisedAt = t
            case .failure(let why): return .rejected("\(column(.promisedAt)): \(why)")
            }
        }
        var event = DossierEvent(
            eventId: "", dossier: values[.dossier]!, unit: unit, procedure: values[.procedure]!, type: type,
            occurredAt: occurredAt, seq: seq, channel: channel, outcome: outcome, newDueAt: newDueAt,
            promisedAt: promisedAt, source: profile.source)
        event.eventId = values[.eventId] ?? Self.derivedEventID(event, from: profile.eventIdFrom)
        let message = EventMessage.make(event, configuration: configuration, names: names)
        // The core's decoder is the definition of a valid event: run the encoded body through it.
        do {
            _ = try DossierEvent.decode(bytes: message.body)
        } catch {
            return .rejected("invalid event: \(error)")
        }
        if let eventBounds, let why = eventBounds.violation(of: event, now: now) {
            return .rejected("implausible time: \(why)")
        }
        return .event(event, message)
    }

    /// Why a dossier code cannot be the unit's (tenant isolation, docs/rules.md §1.1: a dossier code starts with its
    /// agency, the unit code, unless `interlevel.csv` lets the unit resolve another's dossiers), or nil when it is.
    /// The workers apply the same rule (`Configuration.ownershipRefusal`); without a registry (a receiver that has
    /// none) only the unit's own prefix passes.
    public static func foreignDossier(_ dossier: String, unit: String, configuration: Configuration?) -> String? {
        if let configuration, let id = configuration.unitID(unit) {
            return configuration.ownershipRefusal(dossier: dossier, unit: id)?.description
        }
        if DossierCode.belongs(dossier, to: unit) { return nil }
        return EventRefusal.foreignDossier(
            dossier: dossier, agency: DossierCode.agency(of: dossier).map(String.init), unit: unit
        ).description
    }

    /// The instant, or the reason: "no such date" when a format matches the text's shape but the date or time
    /// does not exist; otherwise the formats tried.
    private func parseTime(_ text: String) -> Result<Instant, TimeProblem> {
        var impossible: String?
        for format in profile.timeFormats {
            switch format.match(text) {
            case .instant(let t): return .success(t)
            case .impossible(let why): impossible = impossible ?? "\"\(text)\": \(why) (format \(format.pattern))"
            case .mismatch: continue
            }
        }
        return .failure(
            TimeProblem(
                description: impossible
                    ?? "\"\(text)\" matches none of the time formats (\(profile.timeFormats.map(\.pattern).joined(separator: ", ")))"
            ))
    }

    /// `<source>:<first 128 bits of SHA-256 of the normalised record>`: the same record always gets the same id,
    /// so re-running an export publishes duplicates that the worker drops, never new events. The normalised record
    /// is the canonical values of `fields` (not the source's text), so reformatting a date or reordering columns
    /// changes nothing. Default: every canonical field.
    public static func derivedEventID(
        _ event: DossierEvent, from fields: [MappingProfile.Field] = MappingProfile.defaultEventIdFields
    ) -> String {
        var key: [String] = []
        key.reserveCapacity(fields.count)
        for field in fields {
            switch field {
            case .dossier: key.append(event.dossier)
            case .unit: key.append(event.unit)
            case .procedure: key.append(event.procedure)
            case .status: key.append(event.type.name)
            case .occurredAt: key.append(String(event.occurredAt))
            case .seq: key.append(event.seq.map { String($0) } ?? "")
            case .channel: key.append(event.channel?.name ?? "")
            case .outcome: key.append(event.outcome?.name ?? "")
            case .newDueAt: key.append(event.newDueAt.map { String($0) } ?? "")
            case .promisedAt: key.append(event.promisedAt.map { String($0) } ?? "")
            case .eventId: break
            }
        }
        let digest = SHA256.digest(Array(key.joined(separator: "\u{1F}").utf8))
        return event.source + ":" + SHA256.hexString(digest.prefix(16))
    }
}

struct TimeProblem: Error, CustomStringConvertible { var description: String }

extension String {
    /// Without leading and trailing spaces and tabs; cheaper than Foundation's `trimmingCharacters` (which goes
    /// through NSString on Linux) on the per-field hot path.
    var trimmingBlanks: String {
        let utf8 = self.utf8
        guard let first = utf8.first, let last = utf8.last else { return self }
        let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        if !blank(first) && !blank(last) { return self }
        guard let start = utf8.firstIndex(where: { !blank($0) }), let end = utf8.lastIndex(where: { !blank($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}
