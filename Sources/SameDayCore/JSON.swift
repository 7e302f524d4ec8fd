/// A small JSON document model for the configuration files (which are small): objects keep their key order so that
/// errors and output are deterministic, and each value remembers its line for error messages.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(Double, text: String)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
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

/// A JSON value with the line it starts on.
struct JSONNode: Equatable {
    var value: JSONValue
    var line: Int

    /// An object's keys in text order; nil for any other value.
    var objectKeys: [String]? {
        if case .object(let members) = value { return members.map(\.key) }
        return nil
    }

    subscript(key: String) -> JSONNode? {
        if case .object(let members) = value { return members.first { $0.key == key }?.value }
        return nil
    }

    var kindName: String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A syntax error in a JSON text, with its line.
struct JSONSyntaxError: Error {
    var message: String
    var line: Int
}

/// Recursive-descent JSON parser (RFC 8259), strict: no trailing commas, no comments, duplicate keys rejected.
struct JSONParser {
    private let b: [UInt8]
    private var i = 0
    private var line = 1
    private var depth = 0

    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var p = JSONParser(b: bytes)
        if p.b.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3 }
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.b.count else { throw p.fail("unexpected text after the JSON value") }
        return v
    }

    private init(b: [UInt8]) { self.b = b }

    private func fail(_ m: String) -> JSONSyntaxError { JSONSyntaxError(message: m, line: line) }

    private mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x0A: line += 1; i += 1
            case 0x20, 0x09, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONNode {
        guard i < b.count else { throw fail("unexpected end of the file") }
        let startLine = line
        switch b[i] {
        case UInt8(ascii: "{"):
            depth += 1
            guard depth < 64 else { throw fail("nesting too deep") }
            defer { depth -= 1 }
            i += 1
            var members: [(key: String, value: JSONNode)] = []
            var keys = Set<String>()  // duplicate check in constant time per key (objects can be large)
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
                return JSONNode(value: .object(members), line: startLine)
            }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
                let k = try string()
                guard keys.insert(k).inserted else { throw fail("duplicate key \"\(k)\"") }
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(k)\"") }
                i += 1
                skipSpace()
                members.append((k, try value()))
                skipSpace()
                guard i < b.count else { throw fail("unexpected end of the file in an object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; break }
                throw fail("expected ',' or '}'")
            }
            return JSONNode(value: .object(members), line: startLine)
        case UInt8(ascii: "["):
            depth += 1
            guard depth < 64 else { throw fail("nesting too deep") }
            defer { depth -= 1 }
            i += 1
            var items: [JSONNode] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "]") {
                i += 1
                return JSONNode(value: .array(items), line: startLine)
            }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                guard i < b.count else { throw fail("unexpected end of the file in an array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; break }
                throw fail("expected ',' or ']'")
            }
            return JSONNode(value: .array(items), line: startLine)
        case UInt8(ascii: "\""):
            return JSONNode(value: .string(try string()), line: startLine)
        case UInt8(ascii: "t"): try literal("true"); return JSONNode(value: .bool(true), line: startLine)
        case UInt8(ascii: "f"): try literal("false"); return JSONNode(value: .bool(false), line: startLine)
        case UInt8(ascii: "n"): try literal("null"); return JSONNode(value: .null, line: startLine)
        default:
            return JSONNode(value: try number(), line: startLine)
        }
    }

    /// A number exactly as RFC 8259 writes it: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as a
    /// `Double` (so no `+1`, `01`, `.5`, `1.`, `1e400`).
    private mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let s = i
        func isDigit(_ k: Int) -> Bool { k < b.count && b[k] &- 0x30 < 10 }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else {
            throw fail(i == s ? "unexpected character" : "a number needs a digit after '-'")
        }
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
        guard i + w.count <= b.count, b[i..<(i + w.count)].elementsEqual(w) else { throw fail("unexpected word") }
        i += w.count
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        i += 1
        var out = [UInt8]()
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                return s
            }
            if c < 0x20 { throw fail("control character in a string") }
            if c == UInt8(ascii: "\\") {
                guard JSONEscapes.unescape(b, &i, into: &out) != nil else { throw fail("bad escape in a string") }
                continue
            }
            out.append(c)
            i += 1
        }
        throw fail("unterminated string")
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
    public mutating func int(_ v: some BinaryInteger) { raw(String(v)) }
    public mutating func bool(_ v: Bool) { raw(v ? "true" : "false") }
    public mutating func null() { raw("null") }

    public mutating func field(_ k: String, _ s: String) { key(k); string(s) }
    public mutating func field(_ k: String, _ v: Int) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Int64) { key(k); int(v) }

    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out.append(contentsOf: s.utf8)  // the usual case: nothing to escape
            out.append(0x22)
            return
        }
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }
}
