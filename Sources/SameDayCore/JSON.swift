/// A small JSON document model for the files operators write (which are small): objects keep their key order so that
/// errors and output are deterministic, and each value remembers where it starts for error messages.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double, text: String)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

/// A JSON value with the line and column it starts on (both 1-based; columns count characters, not bytes).
public struct JSONNode: Equatable, Sendable {
    public var value: JSONValue
    public var line: Int
    public var column: Int

    public init(value: JSONValue, line: Int, column: Int = 1) {
        self.value = value
        self.line = line
        self.column = column
    }

    /// An object's keys in text order; nil for any other value.
    public var objectKeys: [String]? {
        if case .object(let members) = value { return members.map(\.key) }
        return nil
    }

    public subscript(key: String) -> JSONNode? {
        if case .object(let members) = value { return members.first { $0.key == key }?.value }
        return nil
    }

    public var kindName: String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as an error message shows what was found: scalars as written (a long string cut short), containers
    /// by kind.
    public var found: String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(_, let text): return text
        case .string(let s):
            var bytes: [UInt8] = []
            JSONWriter.appendString(s.count > 40 ? String(s.prefix(40)) + "…" : s, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A syntax error in a JSON text, with its line and column.
public struct JSONSyntaxError: Error, Equatable, Sendable {
    public var message: String
    public var line: Int
    public var column: Int
}

/// Recursive-descent JSON parser (RFC 8259), strict: no trailing commas, no comments, duplicate keys rejected, at most
/// `maxDepth` levels of nesting. Errors say where (line and column) and what was found, for a person to act on.
public struct JSONParser {
    /// Arrays and objects nest at most this deep (a file an operator writes needs a handful of levels).
    public static let maxDepth = 64

    private let b: [UInt8]
    private var i = 0
    private var line = 1
    /// Where the current line starts, and the UTF-8 continuation bytes read since: columns count characters.
    private var lineStart = 0
    private var continuationBytes = 0
    private var depth = 0

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var p = JSONParser(b: bytes)
        if p.b.starts(with: [0xEF, 0xBB, 0xBF]) {
            p.i = 3
            p.lineStart = 3
        }
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.b.count else { throw p.fail("unexpected text after the end of the JSON value") }
        return v
    }

    private init(b: [UInt8]) { self.b = b }

    private var column: Int { i - lineStart - continuationBytes + 1 }

    private func fail(_ m: String) -> JSONSyntaxError { JSONSyntaxError(message: m, line: line, column: column) }

    /// What stands at the current position, for "expected …; unexpected …" messages.
    private var found: String {
        guard i < b.count else {
            return "the file ends too early (a closing quote, } or ] is missing: is the file truncated?)"
        }
        let c = b[i]
        return c >= 0x20 && c < 0x7F ? "unexpected \"\(Character(UnicodeScalar(c)))\"" : "unexpected byte"
    }

    private mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x0A:
                line += 1
                i += 1
                lineStart = i
                continuationBytes = 0
            case 0x20, 0x09, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONNode {
        guard i < b.count else { throw fail("expected a value; \(found)") }
        let (startLine, startColumn) = (line, column)
        func node(_ v: JSONValue) -> JSONNode { JSONNode(value: v, line: startLine, column: startColumn) }
        switch b[i] {
        case UInt8(ascii: "{"):
            depth += 1
            guard depth <= JSONParser.maxDepth else {
                throw fail("nested more than \(JSONParser.maxDepth) levels deep")
            }
            defer { depth -= 1 }
            i += 1
            var members: [(key: String, value: JSONNode)] = []
            var keys = Set<String>()  // duplicate check in constant time per key (objects can be large)
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
                return node(.object(members))
            }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else {
                    throw fail("expected a key in double quotes; \(found)")
                }
                let keyError = fail("")
                let k = try string()
                guard keys.insert(k).inserted else {
                    throw JSONSyntaxError(
                        message: "duplicate key \"\(k)\"", line: keyError.line, column: keyError.column)
                }
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else {
                    throw fail("expected ':' after the key \"\(k)\"; \(found)")
                }
                i += 1
                skipSpace()
                members.append((k, try value()))
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "}") else {
                    throw fail("expected ',' or '}'; \(found)")
                }
                i += 1
                if b[i - 1] == UInt8(ascii: "}") { break }
            }
            return node(.object(members))
        case UInt8(ascii: "["):
            depth += 1
            guard depth <= JSONParser.maxDepth else {
                throw fail("nested more than \(JSONParser.maxDepth) levels deep")
            }
            defer { depth -= 1 }
            i += 1
            var items: [JSONNode] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "]") {
                i += 1
                return node(.array(items))
            }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "]") else {
                    throw fail("expected ',' or ']'; \(found)")
                }
                i += 1
                if b[i - 1] == UInt8(ascii: "]") { break }
            }
            return node(.array(items))
        case UInt8(ascii: "\""):
            return node(.string(try string()))
        case UInt8(ascii: "t"): try literal("true"); return node(.bool(true))
        case UInt8(ascii: "f"): try literal("false"); return node(.bool(false))
        case UInt8(ascii: "n"): try literal("null"); return node(.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return node(try number())
        default:
            throw fail("expected a value; \(found)")
        }
    }

    /// A number exactly as RFC 8259 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as a
    /// `Double` (so no `+1`, `01`, `.5`, `1.`, `1e400`).
    private mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let s = i
        func isDigit(_ k: Int) -> Bool { k < b.count && b[k] &- 0x30 < 10 }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { throw fail("a number needs a digit after '-'") }
        if b[i] == 0x30 {
            i += 1
            if isDigit(i) { throw fail("a number cannot have a leading zero") }
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw fail("a number needs a digit after '.'") }
            while isDigit(i) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw fail("a number needs a digit in its exponent") }
            while isDigit(i) { i += 1 }
        }
        let text = String(decoding: b[s..<i], as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw fail("number \(text) is out of range") }
        return .number(d, text: text)
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard i + w.count <= b.count, b[i..<(i + w.count)].elementsEqual(w) else {
            throw fail("expected a value (true, false, null, a number, a string, [ or {); \(found)")
        }
        i += w.count
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        let opening = fail("this string has no closing quote (is the file truncated?)")
        i += 1
        var out = [UInt8]()
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return s
            }
            if c < 0x20 {
                throw fail("a line break or control character inside a string (a closing quote is missing?)")
            }
            if c == UInt8(ascii: "\\") {
                guard JSONEscapes.unescape(b, &i, into: &out) != nil else { throw fail("bad escape in a string") }
                continue
            }
            if c & 0xC0 == 0x80 { continuationBytes += 1 }
            out.append(c)
            i += 1
        }
        throw opening
    }
}

/// JSON string escapes, shared by the configuration parser and the event scanner.
enum JSONEscapes {
    /// Decodes the escape at `b[i]` (a backslash), appends its UTF-8 to `out`, moves `i` past it.
    @inline(__always)
    static func unescape<C: RandomAccessCollection>(_ b: C, _ i: inout Int, into out: inout [UInt8]) -> Bool?
    where C.Element == UInt8, C.Index == Int {
        guard i + 1 < b.endIndex else { return nil }
        let e = b[i + 1]
        i += 2
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            guard var cp = hex4(b, i) else { return nil }
            i += 4
            if cp >= 0xD800 && cp < 0xDC00 {  // high surrogate: a low one must follow
                guard i + 5 < b.endIndex, b[i] == 0x5C, b[i + 1] == UInt8(ascii: "u"), let lo = hex4(b, i + 2),
                    lo >= 0xDC00 && lo < 0xE000
                else { return nil }
                i += 6
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
            } else if cp >= 0xDC00 && cp < 0xE000 {
                return nil
            }
            guard let scalar = Unicode.Scalar(cp) else { return nil }
            out.append(contentsOf: UTF8.encode(scalar)!)
        default: return nil
        }
        return true
    }

    @inline(__always)
    static func hex4<C: RandomAccessCollection>(_ b: C, _ at: Int) -> UInt32? where C.Element == UInt8, C.Index == Int {
        guard at + 4 <= b.endIndex else { return nil }
        var v: UInt32 = 0
        for k in at..<(at + 4) {
            let c = b[k]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }
}

/// Writes JSON deterministically: callers choose the key order; strings are escaped minimally (RFC 8259).
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = [false]

    public init() {}

    /// A writer with room for `capacity` bytes, so a text of about that size is built without growing its buffer.
    public init(capacity: Int) { bytes.reserveCapacity(capacity) }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func separator() {
        if needsComma[needsComma.count - 1] { bytes.append(0x2C) }
        needsComma[needsComma.count - 1] = true
    }

    public mutating func beginObject() { separator(); bytes.append(0x7B); needsComma.append(false) }
    public mutating func endObject() { bytes.append(0x7D); needsComma.removeLast() }
    public mutating func beginArray() { separator(); bytes.append(0x5B); needsComma.append(false) }
    public mutating func endArray() { bytes.append(0x5D); needsComma.removeLast() }

    public mutating func key(_ k: String) {
        separator()
        JSONWriter.appendString(k, to: &bytes)
        bytes.append(0x3A)
        needsComma[needsComma.count - 1] = false
    }

    public mutating func string(_ s: String) { separator(); JSONWriter.appendString(s, to: &bytes) }
    public mutating func raw(_ s: String) { separator(); bytes.append(contentsOf: s.utf8) }
    /// Digits written in place (no string per number) for any value an `Int` holds.
    public mutating func int(_ v: some BinaryInteger) {
        guard let small = Int(exactly: v) else { return raw(String(v)) }
        separator()
        Digits.append(small, width: 1, to: &bytes)
    }
    public mutating func bool(_ v: Bool) { raw(v ? "true" : "false") }
    public mutating func null() { raw("null") }

    /// A key written by SameDay's own code, with nothing to escape: its bytes are copied without a scan.
    public mutating func key(literal k: StaticString) {
        separator()
        bytes.append(0x22)
        k.withUTF8Buffer { key in
            assert(!key.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }, "a literal key needs no escape")
            bytes.append(contentsOf: key)
        }
        bytes.append(0x22)
        bytes.append(0x3A)
        needsComma[needsComma.count - 1] = false
    }

    /// An instant as an RFC 3339 string (`RFC3339.format`), its digits written in place.
    public mutating func time(_ t: Instant) {
        separator()
        bytes.append(0x22)
        RFC3339.append(t, to: &bytes)
        bytes.append(0x22)
    }

    public mutating func field(literal k: StaticString, _ s: String) { key(literal: k); string(s) }
    public mutating func field(literal k: StaticString, _ v: Int) { key(literal: k); int(v) }
    public mutating func field(literal k: StaticString, time t: Instant) { key(literal: k); time(t) }

    public mutating func field(_ k: String, _ s: String) { key(k); string(s) }
    public mutating func field(_ k: String, _ v: Int) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Int64) { key(k); int(v) }

    /// Appends `s` as a JSON string. Its UTF-8 is read in place and copied in runs between the bytes that need an
    /// escape (none, usually): iterating a string's `utf8` view byte by byte cost an alert's JSON line half its time.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        var text = s
        text.withUTF8 { bytes in
            var copiedUpTo = 0
            for i in bytes.indices {
                let c = bytes[i]
                guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copiedUpTo..<i]))
                appendEscaped(c, to: &out)
                copiedUpTo = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copiedUpTo...]))
        }
        out.append(0x22)
    }

    private static func appendEscaped(_ c: UInt8, to out: inout [UInt8]) {
        switch c {
        case 0x22: out.append(0x5C); out.append(0x22)
        case 0x5C: out.append(0x5C); out.append(0x5C)
        case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
        case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
        }
    }
}
