import Testing

@testable import SameDayCore

@Suite("The JSON writer escapes exactly what JSON requires")
struct JSONWriterTests {
    @Test("strings read back as written: quotes, backslashes, control bytes, Vietnamese, empty, escapes at the ends")
    func stringsRoundTrip() throws {
        let texts = [
            "", "plain", #"a "quoted" word"#, #"back\slash"#, "line\nbreak\r\ttab", "\u{0}\u{1f}\u{7f}",
            "Phường Bến Nghé, Quận 1", "\"", "\\", "\n", "\"edges\"", String(repeating: "x\"", count: 300),
        ]
        for text in texts {
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("k", text)
            writer.endObject()
            guard case .object(let fields) = try JSONParser.parse(writer.bytes).value,
                case .string(let read) = fields.first?.value.value
            else {
                Issue.record("not an object with a string: \(writer.text)")
                continue
            }
            #expect(read == text)
        }
    }

    @Test("control bytes take their short escape or \\u00XX; other bytes are copied as they are")
    func escapesAsSpecified() {
        var bytes: [UInt8] = []
        JSONWriter.appendString("a\"b\\c\nd\re\tf\u{1}g\u{1b}ứ", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #""a\"b\\c\nd\re\tf\u0001g\u001bứ""#)
    }
}
