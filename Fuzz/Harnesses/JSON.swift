// Fuzz target `json`: the strict JSON parser and the reader of operator files (docs/fuzzing.md). Traps when it
// accepts a number that is not finite or a number text that RFC 8259 does not allow, or an object with a key twice;
// or when a value's or an error's line and column are outside the text; or when an alert it accepts (`Alert.decode`,
// what the notifier reads) does not read back from the line it writes.
@testable import SameDayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let lines = bytes.count(where: { $0 == 0x0A }) + 1
    let node: JSONNode
    do {
        node = try JSONParser.parse(bytes)
    } catch {
        guard (1...lines).contains(error.line), (1...size + 1).contains(error.column) else {
            fatalError("an error at \(error.line):\(error.column) outside the text")
        }
        return 0
    }
    check(node, lines: lines, size: size)
    // An alert the notifier would accept writes a line that reads back as the same alert.
    if let alert = try? Alert.decode(json: bytes) {
        guard (try? Alert.decode(json: Array(alert.jsonLine().utf8))) == alert else {
            fatalError("an accepted alert does not read back from its own line")
        }
    }
    // Every typed accessor on every key of the top object: a value of the wrong type is an error, never a crash.
    if let object = try? JSONObject(reader: JSONReader(file: "fuzz"), node: node, path: "$") {
        for key in object.keys {
            _ = try? object.string(key)
            _ = try? object.int(key, in: 1...65535)
            _ = try? object.bool(key)
            _ = try? object.strings(key)
            _ = try? object.stringMap(key)
        }
    }
    return 0
}

func check(_ node: JSONNode, lines: Int, size: Int) {
    guard (1...lines).contains(node.line), (1...size).contains(node.column) else {
        fatalError("a value at \(node.line):\(node.column) outside the text")
    }
    switch node.value {
    case .number(let d, let text):
        guard d.isFinite, isRFC8259Number(Array(text.utf8)) else { fatalError("accepted the number \(text)") }
    case .array(let items): items.forEach { check($0, lines: lines, size: size) }
    case .object(let members):
        guard Set(members.map(\.key)).count == members.count else { fatalError("accepted a duplicate key") }
        members.forEach { check($0.value, lines: lines, size: size) }
    default: break
    }
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, written independently of the parser.
func isRFC8259Number(_ b: [UInt8]) -> Bool {
    var i = 0
    func digits() -> Int {
        let s = i
        while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }
        return i - s
    }
    if i < b.count, b[i] == 0x2D { i += 1 }
    guard i < b.count else { return false }
    if b[i] == 0x30 { i += 1 } else if digits() == 0 { return false }
    if i < b.count, b[i] == 0x2E {
        i += 1
        guard digits() > 0 else { return false }
    }
    if i < b.count, b[i] == 0x65 || b[i] == 0x45 {
        i += 1
        if i < b.count, b[i] == 0x2B || b[i] == 0x2D { i += 1 }
        guard digits() > 0 else { return false }
    }
    return i == b.count
}
