// Fuzz target `time`: the RFC 3339 parser and formatter, local dates and clock times (docs/fuzzing.md).
// Traps on a round-trip difference: any instant whose local year is 0000–9999 must format to a text that parses
// back to it; any other instant must format to a text that does not parse (never to another instant).
@testable import SameDayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTime(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let t = RFC3339.parse(bytes) {
        check(t, from: String(decoding: bytes, as: UTF8.self))
        // The String entry point agrees with the bytes one.
        if let s = String(validating: bytes, as: UTF8.self), RFC3339.parse(s) != t {
            fatalError("parse(String) differs for \(s)")
        }
    }
    // The first 8 bytes as an instant (any Int64), and near the ends of the range.
    if size >= 8 {
        var raw: UInt64 = 0
        for k in 0..<8 { raw = raw << 8 | UInt64(bytes[k]) }
        let t = Instant(bitPattern: raw)
        check(t, from: "Int64 \(t)")
        check(first &+ (t % 200_000_000), from: "first + \(t % 200_000_000)")
        check(last &+ (t % 200_000_000), from: "last + \(t % 200_000_000)")
        check(t % 400_000_000_000, from: "\(t % 400_000_000_000)")
    }
    if let date = LocalDate(String(decoding: bytes, as: UTF8.self)) {
        guard LocalDate(date.description) == date else {
            fatalError("LocalDate \(date.description) does not read back")
        }
    }
    if let clock = ClockTime.parse(String(decoding: bytes, as: UTF8.self)) {
        guard ClockTime.parse(ClockTime.format(clock)) == clock else {
            fatalError("clock time \(clock) does not read back")
        }
    }
    return 0
}

/// The first and last instants whose local (+07:00) year is 0000–9999.
let first = RFC3339.parse("0000-01-01T00:00:00+07:00")!
let last = RFC3339.parse("9999-12-31T23:59:59+07:00")!

func check(_ t: Instant, from source: String) {
    let text = RFC3339.format(t)
    let back = RFC3339.parse(text)
    if t >= first && t <= last {
        guard back == t else { fatalError("round trip: \(source) → \(t) → \(text) → \(back as Any)") }
        guard text.utf8.count == 25 else { fatalError("\(t) written as \(text)") }
    } else {
        guard back == nil else { fatalError("out of range: \(source) → \(t) → \(text) parses to \(back!)") }
    }
}
