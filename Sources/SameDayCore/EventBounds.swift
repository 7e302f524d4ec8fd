/// The window of plausible event times (issue "hostile input"): an event dated in year 1022 or 9999 is a bug or an
/// attack, and accepting it would make rollups span centuries and calendar arithmetic walk millions of days. Every
/// entry (receiver, file adapter, worker) refuses such an event with the reason.
public struct EventTimeBounds: Sendable, Hashable {
    /// `occurredAt` at or after this instant (default 2000-01-01T00:00+07:00).
    public var earliest: Instant
    /// `occurredAt` at most this long after the clock of the component that checks (default one day).
    public var maxAheadSeconds: Int64
    /// `newDueAt` and `promisedAt` within this long of the event's `occurredAt`, either way (default 366 days).
    public var rescheduleWithinSeconds: Int64

    public static let standard = EventTimeBounds(
        earliest: LocalTime.start(ofDay: CivilCalendar.days(year: 2000, month: 1, day: 1)), maxAheadSeconds: 86_400,
        rescheduleWithinSeconds: 366 * 86_400)

    public init(earliest: Instant, maxAheadSeconds: Int64, rescheduleWithinSeconds: Int64) {
        self.earliest = earliest
        self.maxAheadSeconds = maxAheadSeconds
        self.rescheduleWithinSeconds = rescheduleWithinSeconds
    }

    /// Why the event is outside the window (naming the field), or nil when it is inside. `now` is the checking
    /// component's clock.
    public func violation(of e: DossierEvent, now: Instant) -> EventTimeViolation? {
        let latest = now + maxAheadSeconds
        if e.occurredAt < earliest || e.occurredAt > latest {
            return EventTimeViolation(
                field: .occurredAt,
                reason: "\(RFC3339.format(e.occurredAt)) is outside the accepted window "
                    + "\(RFC3339.format(earliest)) … \(RFC3339.format(latest))")
        }
        // The two dates an event may carry besides its own, held to the same window (checked for every event: no
        // allocation).
        func outside(_ field: EventTimeViolation.Field, _ date: Instant?) -> EventTimeViolation? {
            guard let date,
                date < e.occurredAt - rescheduleWithinSeconds || date > e.occurredAt + rescheduleWithinSeconds
            else { return nil }
            return EventTimeViolation(
                field: field,
                reason: "\(RFC3339.format(date)) is more than \(rescheduleWithinSeconds / 86_400) days from occurredAt")
        }
        return outside(.newDueAt, e.newDueAt) ?? outside(.promisedAt, e.promisedAt)
    }
}

/// An event time outside `EventTimeBounds`: the field, and why (`field "occurredAt": … is outside …`).
public struct EventTimeViolation: Sendable, Hashable, CustomStringConvertible {
    public enum Field: String, Sendable {
        case occurredAt, newDueAt, promisedAt
    }
    public let field: Field
    public let reason: String
    public var description: String { "field \"\(field.rawValue)\": \(reason)" }
}

/// Dossier codes (docs/rules.md §1.1): `<agency id>-<yymmdd>-<daily number>`, e.g. `000.00.15.H29-220518-0042`.
public enum DossierCode {
    /// The agency id a dossier code starts with: the code without its last two `-` parts, when those are a
    /// six-digit date and a number of one to six digits; nil for a code of another shape.
    public static func agency(of code: String) -> Substring? {
        // Read from the end, in place (every event delivered is checked): the number, a dash, six digits, a dash.
        let bytes = code.utf8
        var end = bytes.endIndex
        func digitsBack(upTo limit: Int) -> Int {
            var count = 0
            while end > bytes.startIndex, count <= limit {
                let before = bytes.index(before: end)
                guard bytes[before] >= 0x30 && bytes[before] <= 0x39 else { break }
                end = before
                count += 1
            }
            return count
        }
        func dashBack() -> Bool {
            guard end > bytes.startIndex else { return false }
            let before = bytes.index(before: end)
            guard bytes[before] == UInt8(ascii: "-") else { return false }
            end = before
            return true
        }
        guard (1...6).contains(digitsBack(upTo: 6)), dashBack(), digitsBack(upTo: 6) == 6, dashBack(),
            end > bytes.startIndex
        else { return nil }
        return Substring(code.utf8[bytes.startIndex..<end])
    }

    /// Whether the dossier code is one of `unit`'s: its agency id is the unit code, byte for byte.
    public static func belongs(_ code: String, to unit: String) -> Bool {
        agency(of: code).map { $0.hasSameBytes(as: unit) } ?? false
    }
}
