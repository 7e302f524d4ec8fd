import Foundation
import PropertyBased
import Testing

@testable import SameDayCore

/// Regression tests for what the fuzz campaign found (issue 9, item 8; docs/fuzzing.md), and the properties its
/// harnesses check, drawn here too so that `swift test` keeps them.
@Suite("Parser hardening: RFC 3339")
struct RFC3339HardeningTests {
    /// Days from 1970-01-01 to the first of January of `year` (0…9999), counted year by year: an oracle
    /// independent of `CivilCalendar`.
    static func daysToYear(_ year: Int) -> Int64 {
        func leapYearsBefore(_ y: Int) -> Int { (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400 }  // in [0, y)
        func daysBefore(_ y: Int) -> Int64 { Int64(365 * y + leapYearsBefore(y)) }
        return daysBefore(year) - daysBefore(1970)
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
    static let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

    /// The first and last instants whose local (+07:00) year is 0000–9999, by the oracle.
    static let firstLocal = daysToYear(0) * 86_400 - 7 * 3600
    static let lastLocal = daysToYear(10_000) * 86_400 - 7 * 3600 - 1

    @Test("the instants of the first campaign: in range they round-trip, out of range they never parse back")
    func knownCases() {
        #expect(RFC3339.format(Self.firstLocal) == "0000-01-01T00:00:00+07:00")
        #expect(RFC3339.format(Self.lastLocal) == "9999-12-31T23:59:59+07:00")
        // 9999-12-31T23:59:59Z is year 10000 at +07:00: it used to be written as year 0000.
        let late = RFC3339.parse("9999-12-31T23:59:59Z")!
        #expect(RFC3339.format(late) == "10000-01-01T06:59:59+07:00")
        #expect(RFC3339.parse(RFC3339.format(late)) == nil)
        // Year 0000 at +08:00 is year -1 at +07:00: it used to be written as `000/`.
        let early = RFC3339.parse("0000-01-01T00:00:00+08:00")!
        #expect(RFC3339.format(early) == "-0001-12-31T23:00:00+07:00")
        #expect(RFC3339.parse(RFC3339.format(early)) == nil)
        #expect(RFC3339.parse(RFC3339.format(Self.firstLocal - 1)) == nil)
        #expect(RFC3339.parse(RFC3339.format(Self.lastLocal + 1)) == nil)
        // The extremes of Int64 neither trap nor parse back.
        for t in [Instant.min, Instant.min + 1, Instant.max, Instant.max - 25_199, Instant.max - 25_200] {
            #expect(RFC3339.parse(RFC3339.format(t)) == nil)
        }
        // Years outside 0000–9999 are refused by parse.
        for text in [
            "10000-01-01T00:00:00Z", "-0001-12-31T23:00:00+07:00", "+2022-05-18T08:00:00Z", "999-01-01T00:00:00Z",
        ] {
            #expect(RFC3339.parse(text) == nil, "\(text)")
        }
        #expect(LocalDate(dayNumber: -719_529).description == "-0001-12-31")
    }

    @Test("parse of a random valid RFC 3339 text, format, parse again: the same instant (years 0–9999, ±14:00)")
    func parseFormatParse() async {
        await propertyCheck(count: 3000, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let year = Int.random(in: 0...9999, using: &rng)
            let month = Int.random(in: 1...12, using: &rng)
            let days = month == 2 && Self.isLeap(year) ? 29 : Self.monthDays[month - 1]
            let day = Int.random(in: 1...days, using: &rng)
            let (h, mi, s) = (
                Int.random(in: 0...23, using: &rng), Int.random(in: 0...59, using: &rng),
                Int.random(in: 0...59, using: &rng)
            )
            let offsetMinutes = Int.random(in: -14 * 60...14 * 60, using: &rng)
            func p(_ v: Int, _ w: Int) -> String { Digits.pad(v, w) }
            let zone =
                offsetMinutes == 0 && Bool.random(using: &rng)
                ? (Bool.random(using: &rng) ? "Z" : "z")
                : (offsetMinutes < 0 ? "-" : "+") + p(abs(offsetMinutes) / 60, 2) + ":" + p(abs(offsetMinutes) % 60, 2)
            let fraction = Bool.random(using: &rng) ? "." + String(UInt32.random(in: 0...UInt32.max, using: &rng)) : ""
            let text = "\(p(year, 4))-\(p(month, 2))-\(p(day, 2))T\(p(h, 2)):\(p(mi, 2)):\(p(s, 2))\(fraction)\(zone)"
            // The oracle: days by counting years and months, no CivilCalendar.
            var dayNumber = Self.daysToYear(year)
            for m in 1..<month { dayNumber += Int64(m == 2 && Self.isLeap(year) ? 29 : Self.monthDays[m - 1]) }
            dayNumber += Int64(day - 1)
            let expected = dayNumber * 86_400 + Int64(h * 3600 + mi * 60 + s) - Int64(offsetMinutes * 60)
            let t = try #require(RFC3339.parse(text), "\(text)")
            #expect(t == expected, "\(text)")
            let written = RFC3339.format(t)
            if (Self.firstLocal...Self.lastLocal).contains(t) {  // local year 0000–9999
                #expect(RFC3339.parse(written) == t, "\(text) → \(written)")
                #expect(written.utf8.count == 25)
            } else {
                #expect(RFC3339.parse(written) == nil, "\(text) → \(written) must not parse")
            }
        }
    }

    @Test("digits written in place: zero-padded magnitude after the sign, as a String would write them")
    func paddedDigits() {
        func oracle(_ v: Int, _ width: Int) -> String {
            let s = String(v.magnitude)
            return (v < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var rng = SplitMix64(seed: 26)
        var values = [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, -1, -10, -9999, Int.max, Int.min, Int.max - 1]
        for _ in 0..<2000 {
            values.append(Int.random(in: Int.min...Int.max, using: &rng) >> Int.random(in: 0...62, using: &rng))
        }
        for v in values {
            for width in [1, 2, 4] {
                #expect(Digits.pad(v, width) == oracle(v, width), "\(v) width \(width)")
            }
            var writer = JSONWriter()
            writer.int(v)
            #expect(writer.text == String(v))
        }
    }

    @Test("format then parse: the same instant for every instant whose local year is 0000–9999")
    func formatParse() async {
        await propertyCheck(count: 3000, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let t = Int64.random(in: Self.firstLocal...Self.lastLocal, using: &rng)
            let written = RFC3339.format(t)
            #expect(RFC3339.parse(written) == t, "\(t) → \(written)")
            #expect(written.hasSuffix("+07:00") && written.utf8.count == 25)
            // Outside the range, by up to a few thousand years, nothing parses back.
            let outside =
                Bool.random(using: &rng)
                ? Self.firstLocal - Int64.random(in: 1...100_000_000_000, using: &rng)
                : Self.lastLocal + Int64.random(in: 1...100_000_000_000, using: &rng)
            #expect(RFC3339.parse(RFC3339.format(outside)) == nil, "\(outside) → \(RFC3339.format(outside))")
        }
    }
}

@Suite("Parser hardening: CSV")
struct CSVHardeningTests {
    /// A quote followed by a combining mark is one `Character`; decomposed (NFD) Vietnamese has many.
    static let tricky = [
        "\"\u{0301}", "Quận \"Một\u{0300}\"", "Phường \"Bến Nghé\"".decomposedStringWithCanonicalMapping,
        "a,\"\u{0323}b", "\"\u{0309}\"\u{0303}", "line\r\nbreak\"\u{0302}", "\u{FEFF}starts with a BOM", "",
    ]

    @Test("escape doubles every quote byte, even one followed by a combining mark, and the CSV parses back")
    func escapeOnBytes() throws {
        #expect(CSV.escape("\"\u{0301}") == "\"\"\"\u{0301}\"")
        #expect(Array(CSV.escape("\"\u{0301}").utf8) == [0x22, 0x22, 0x22, 0xCC, 0x81, 0x22])
        let text = Self.tricky.map { CSV.record([$0, "x"]) }.joined(separator: "\r\n") + "\r\n"
        let records = try CSV.parse([0xEF, 0xBB, 0xBF] + Array(text.utf8))
        #expect(records.map(\.fields) == Self.tricky.map { [$0, "x"] })
        // A field starting with a byte-order mark is quoted, so the first field of a file without one survives.
        let first = try CSV.parse(Array(CSV.record(["\u{FEFF}x"]).utf8))
        #expect(first.map(\.fields) == [["\u{FEFF}x"]])
        #expect(try CSV.parse(Array(CSV.record([""]).utf8)).map(\.fields) == [[""]])
    }

    @Test("a rollup CSV with a decomposed unit name holding quotes reads back with the same name")
    func rollupWithQuotedDecomposedName() throws {
        let name = "Phường \"Bến Nghé\", Quận 1".decomposedStringWithCanonicalMapping
        var units = String(decoding: Fixture.bytes("units.csv"), as: UTF8.self)
        units = units.replacingOccurrences(of: "760,Quận 1,", with: "760,\(CSV.escape(name)),")
        let config = try Configuration.parse(Fixture.files(replacing: "units.csv", with: units))
        let rollup = Rollup.compute(facts: [], period: .day(LocalDate("2022-05-18")!), config: config)
        let records = try CSV.parse(rollup.unitsCSV())
        let row = try #require(records.first { $0.fields[2] == "760" })
        #expect(Array(row.fields[3].utf8) == Array(name.utf8))
        #expect(records.allSatisfy { $0.fields.count == records[0].fields.count })
    }

    @Test("a lone CR is no line end and starts no field (RFC 4180: CR only in CRLF or inside quotes)")
    func loneCarriageReturn() throws {
        func error(_ text: String) -> CSVSyntaxError? {
            do {
                _ = try CSV.parse(Array(text.utf8))
                return nil
            } catch {
                return error
            }
        }
        let afterQuote = error("a,b\r\n\"x\"\ry,z\r\n")
        #expect(afterQuote?.line == 2)
        #expect(
            afterQuote?.message.contains("carriage return not followed by a line feed after a closing quote") == true)
        #expect(error("a,b\r\nx\ry,z\r\n")?.line == 2)
        #expect(error("a,\"b\"\r")?.line == 1)
        #expect(error("a\r")?.message.contains("carriage return") == true)
        // Inside quotes a CR is content, and CRLF ends records.
        #expect(try CSV.parse(Array("\"a\rb\",c\r\nd,e".utf8)).map(\.fields) == [["a\rb", "c"], ["d", "e"]])
    }

    @Test("errors name the physical line: quotes, text after a closing quote, unterminated, invalid UTF-8")
    func errorsNameTheirLine() {
        func line(_ bytes: [UInt8]) -> (Int, String)? {
            do {
                _ = try CSV.parse(bytes)
                return nil
            } catch {
                return (error.line, error.message)
            }
        }
        #expect(line(Array("h\n\"a\nb\",x\"y\n".utf8))?.0 == 3)
        #expect(line(Array("h\n\"a\nb\" z\n".utf8))?.0 == 3)
        #expect(line(Array("h\n\n\"open\nnever closed".utf8))?.0 == 3)
        #expect(line(Array("h\n\"open\nnever closed".utf8))?.1 == "unterminated quoted field")
        #expect(line(Array("h\nok,".utf8) + [0xFF])?.1 == "invalid UTF-8 in field 2")
    }

    /// Bytes that exercise every path of the reader: separators, quotes, both line ends, lone CR, multi-byte and
    /// invalid UTF-8.
    static let alphabet: [[UInt8]] = [
        [0x61], [0x62], [0x2C], [0x3B], [0x22], [0x22, 0x22], [0x0D], [0x0A], [0x0D, 0x0A], Array("ệ".utf8),
        Array("e\u{0302}".utf8), [0xFF], [0x20],
    ]

    @Test("streaming in chunks and reading the whole file give the same records and errors, with either delimiter")
    func streamingAgreesWithWholeFile() async {
        await propertyCheck(count: 1000, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...60, using: &rng) {
                bytes += Self.alphabet[Int.random(in: 0..<Self.alphabet.count, using: &rng)]
            }
            let delimiter = Bool.random(using: &rng) ? UInt8(ascii: ",") : UInt8(ascii: ";")
            let whole = Self.scanAll(bytes, delimiter: delimiter, chunk: nil)
            let chunked = Self.scanAll(bytes, delimiter: delimiter, chunk: Int.random(in: 1...7, using: &rng))
            #expect(whole == chunked, "\(bytes)")
        }
    }

    /// Every record as (fields, error, line), reading `chunk` bytes more each time the scanner asks for more.
    static func scanAll(_ bytes: [UInt8], delimiter: UInt8, chunk: Int?) -> [String] {
        var out: [String] = []
        var visible = chunk.map { min($0, bytes.count) } ?? bytes.count
        var start = 0
        var line = 1
        while start < bytes.count {
            let atEOF = visible == bytes.count
            let scan = bytes[0..<visible].withUnsafeBufferPointer {
                CSV.scanRecord($0, from: start, delimiter: delimiter, atEOF: atEOF)
            }
            guard let scan else {
                visible = min(visible + (chunk ?? 1), bytes.count)
                continue
            }
            if !scan.isBlank {
                out.append("\(line) \(scan.fields) \(scan.error ?? "-") \(scan.errorLineOffset) \(scan.end)")
            }
            line += scan.lines
            start = scan.next
        }
        return out
    }

    @Test("write then read: the same fields, whatever they hold")
    func writeReadRoundTrip() async {
        let pieces = ["a", ",", ";", "\"", "\r", "\n", "\r\n", "ệ", "\u{0301}", "\"\u{0301}", " ", "\u{FEFF}", ""]
        await propertyCheck(count: 1000, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let delimiter = Bool.random(using: &rng) ? UInt8(ascii: ",") : UInt8(ascii: ";")
            var records: [[String]] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                var fields: [String] = []
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    var f = ""
                    for _ in 0..<Int.random(in: 0...5, using: &rng) { f += pieces.randomElement(using: &rng)! }
                    fields.append(f)
                }
                records.append(fields)
            }
            let text = records.map { CSV.record($0, delimiter: delimiter) }.joined(separator: "\r\n")
            let back = try CSV.parse(Array(text.utf8), delimiter: delimiter)
            #expect(back.map(\.fields).map { $0.map { Array($0.utf8) } } == records.map { $0.map { Array($0.utf8) } })
        }
    }
}

@Suite("Parser hardening: JSON")
struct JSONHardeningTests {
    func parses(_ text: String) -> Bool { (try? JSONParser.parse(Array(text.utf8))) != nil }

    @Test("numbers are exactly RFC 8259's, and finite")
    func strictNumbers() throws {
        for bad in [
            "+1", "01", "-01", ".5", "-.5", "1.", "1.e2", "1e", "1e+", "-", "--1", "1e400", "-1e400", "0x10", "1_0",
        ] {
            #expect(!parses(bad), "\(bad) must be refused")
            #expect(!parses("[\(bad)]"), "[\(bad)] must be refused")
        }
        for good in [
            "0", "-0", "1", "-1", "10", "1.5", "0.5", "1e2", "1E+2", "1.5e-3", "1e-400",
            "123456789012345678901234567890",
        ] {
            #expect(parses(good), "\(good) must be accepted")
        }
        if case .number(let d, let text) = try JSONParser.parse(Array("[1.5e-3]".utf8)).value.arrayItems[0].value {
            #expect(d == 0.0015 && text == "1.5e-3")
        } else {
            Issue.record("not a number")
        }
    }

    @Test("the duplicate-key check is linear: 40,000 keys in well under a second, and duplicates still refused")
    func manyKeys() throws {
        let body = (0..<40_000).map { "\"key\($0)\": \($0)" }.joined(separator: ",\n")
        let started = ContinuousClock.now
        let node = try JSONParser.parse(Array("{\(body)}".utf8))
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .milliseconds(800), "\(elapsed)")
        if case .object(let members) = node.value { #expect(members.count == 40_000) }
        do {
            _ = try JSONParser.parse(Array("{\(body),\n\"key17\": 1}".utf8))
            Issue.record("a duplicate key was accepted")
        } catch {
            #expect(error.message == "duplicate key \"key17\"" && error.line == 40_001)
        }
    }
}

extension JSONValue {
    fileprivate var arrayItems: [JSONNode] { if case .array(let items) = self { items } else { [] } }
}
