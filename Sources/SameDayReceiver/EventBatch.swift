import Foundation
import SameDayCore

/// The body of `POST /v1/events`: one event object, or an array of them. Each element is decoded by the core's
/// strict decoder, so an error names the event's index and the field.
public enum EventBatch {
    public struct Problem: Sendable, Equatable {
        public var index: Int?
        public var field: String?
        public var message: String
    }

    /// What a body holds: the events that decoded (with their index in the request), and every problem.
    public struct Parsed: Sendable {
        public var events: [DossierEvent] = []
        /// `indexes[i]` is the position of `events[i]` in the request's array.
        public var indexes: [Int] = []
        public var errors: [Problem] = []
        /// The body was one event, not an array (problems then carry no index).
        public var single = false
        /// Events in the request (valid or not).
        public var count = 0
    }

    public static func parse(_ body: [UInt8], maxEvents: Int) -> Parsed {
        var out = Parsed()
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        guard let first = body.firstIndex(where: { !isSpace($0) }) else {
            out.errors = [Problem(index: nil, field: nil, message: "empty body: send one event or an array of events")]
            return out
        }
        let elements: [Range<Int>]
        if body[first] == UInt8(ascii: "[") {
            guard let split = splitArray(body, from: first) else {
                out.errors = [Problem(index: nil, field: nil, message: "malformed JSON: the array is not well formed")]
                return out
            }
            elements = split
        } else {
            elements = [first..<body.count]
            out.single = true
        }
        out.count = elements.count
        guard !elements.isEmpty else {
            out.errors = [Problem(index: nil, field: nil, message: "the array holds no event")]
            return out
        }
        guard elements.count <= maxEvents else {
            out.errors = [
                Problem(index: nil, field: nil, message: "\(elements.count) events; at most \(maxEvents) per request")
            ]
            return out
        }
        for (index, range) in elements.enumerated() {
            let bytes = Array(body[range])
            let at = out.single ? nil : index
            do {
                out.events.append(try DossierEvent.decode(bytes: bytes))
                out.indexes.append(index)
            } catch {
                if error.reason == .personalData || error.reason == .unknownField {
                    // The decoder stops at the first such field: name every one, so one fix is enough.
                    let found = DossierEvent.personalDataKeys(bytes)
                    if found?.tooMany == true {
                        out.errors.append(
                            Problem(
                                index: at, field: nil,
                                message: "more than \(DossierEvent.maxKeysNamed) keys: not an event (the schema has 12)"
                            ))
                        continue
                    }
                    let personal = found?.keys ?? []
                    if !personal.isEmpty {
                        for key in personal {
                            out.errors.append(
                                Problem(
                                    index: at, field: key,
                                    message: EventDecodingError(field: key, reason: .personalData).description))
                        }
                        if error.reason == .personalData { continue }
                    }
                }
                out.errors.append(Problem(index: at, field: error.field, message: error.description))
            }
        }
        return out
    }

    /// The byte ranges of the top-level elements of a JSON array, or nil if brackets or strings do not balance.
    static func splitArray(_ b: [UInt8], from start: Int) -> [Range<Int>]? {
        var ranges: [Range<Int>] = []
        var depth = 0
        var inString = false
        var escaped = false
        var elementStart: Int?
        var i = start
        while i < b.count {
            let c = b[i]
            if inString {
                if escaped {
                    escaped = false
                } else if c == 0x5C {
                    escaped = true
                } else if c == 0x22 {
                    inString = false
                }
                i += 1
                continue
            }
            switch c {
            case 0x22:
                inString = true
                if depth == 1 && elementStart == nil { elementStart = i }
            case 0x5B, 0x7B:
                depth += 1
                if depth == 2 && elementStart == nil { elementStart = i }
            case 0x5D, 0x7D:
                depth -= 1
                if depth == 0 {
                    if let s = elementStart { ranges.append(s..<i) }
                    // Only white space may follow the array.
                    guard b[(i + 1)...].allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
                        return nil
                    }
                    return ranges
                }
                if depth < 0 { return nil }
            case 0x2C where depth == 1:
                guard let s = elementStart else { return nil }
                ranges.append(s..<i)
                elementStart = nil
            case 0x20, 0x0A, 0x0D, 0x09:
                break
            default:
                if depth == 1 && elementStart == nil { elementStart = i }
            }
            i += 1
        }
        return nil
    }
}
