// Fuzz target `json`: the strict configuration JSON parser (docs/fuzzing.md). Traps when it accepts a number that
// is not finite or a number text that RFC 8259 does not allow, or an object with a key twice.
@testable import SameDayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let node = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    check(node)
    return 0
}

func check(_ node: JSONNode) {
    switch node.value {
    case .number(let d, let text):
        guard d.isFinite, isRFC8259Number(Array(text.utf8)) else { fatalError("accepted the number \(text)") }
    case .array(let items): items.forEach(check)
    case .object(let members):
        guard Set(members.map(\.key)).count == members.count else { fatalError("accepted a duplicate key") }
        members.forEach { check($0.value) }
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
