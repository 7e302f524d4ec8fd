import Testing

@testable import SameDayCore

@Suite("The JSON reader of operator files: file, line, column and key path in every error")
struct JSONReaderTests {
    func read(_ text: String, allowed: [String] = ["a", "b", "list", "nested"]) throws(ConfigurationError)
        -> JSONObject
    {
        try JSONReader(file: "x.json").root(Array(text.utf8), allowed: allowed)
    }

    /// The error `body` throws, as an operator reads it.
    func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return (error as? ConfigurationError)?.description ?? "not a ConfigurationError: \(error)"
        }
    }

    @Test("a wrong type names the position, the key path and what was found")
    func wrongType() {
        #expect(
            message { _ = try read("{\n    \"a\": \"abc\"\n}").int("a") }
                == #"x.json:2:10: key "a": expected an integer, found "abc""#)
        #expect(
            message { _ = try read(#"{"nested": {"b": ["x", true]}}"#).object("nested")?.strings("b") }
                == #"x.json:1:24: key "nested.b[1]": expected a string, found true"#)
        #expect(
            message { _ = try read(#"{"a": 0}"#).int("a", in: 1...65535) }
                == #"x.json:1:7: key "a": expected an integer 1…65535, found 0"#)
        #expect(
            message { _ = try read(#"{"a": 1.5}"#).int("a") } == #"x.json:1:7: key "a": expected an integer, found 1.5"#
        )
    }

    @Test("an unknown key lists the allowed ones; a missing key points at its object")
    func keys() {
        #expect(
            message { _ = try read("{\"a\": 1,\n \"colour\": 2}") }
                == #"x.json:2:12: key "colour": unknown key (allowed: a, b, list, nested)"#)
        #expect(
            message { _ = try read("{\"nested\":\n  {}}").object("nested")?.required("b", "a number") }
                == #"x.json:2:3: key "nested.b": missing: a number"#)
    }

    @Test("malformed JSON says where; columns count characters, not UTF-8 bytes")
    func syntax() {
        #expect(
            message { _ = try read("{\"a\": \"Đã tiếp nhận\" \"b\": 1}") }
                == #"x.json:1:22: not valid JSON: expected ',' or '}'; unexpected """"#)
        #expect(
            message { _ = try read("{\"a\": 1,\n") }
                == "x.json:2:1: not valid JSON: expected a key in double quotes; the file ends too early (a closing quote, } or ] is missing: is the file truncated?)"
        )
        #expect(message { _ = try read("[]") } == "x.json:1:1: expected an object, found an array")
        #expect(message { _ = try read("{\"a\": 1, \"a\": 2}") } == #"x.json:1:10: not valid JSON: duplicate key "a""#)
    }

    @Test("bounds: the file's size and the nesting depth")
    func bounds() {
        let deep = "{\"a\": " + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}"
        #expect(message { _ = try read(deep) }?.hasSuffix("not valid JSON: nested more than 64 levels deep") == true)
        let big = Array(("{\"a\": \"" + String(repeating: "x", count: 100) + "\"}").utf8)
        #expect(
            message { _ = try JSONReader(file: "x.json").document(big, maxBytes: 64) }
                == "x.json: the file is 109 bytes, more than the 64 a configuration may be")
    }

    @Test("null reads as absent; values read back as written")
    func values() throws {
        let o = try read(#"{"a": null, "b": "x", "list": ["p", "q"], "nested": {"a": true}}"#)
        #expect(try o.string("a") == nil && o.string("b") == "x" && o.strings("list") == ["p", "q"])
        #expect(try o.object("nested")?.bool("a") == true)
        #expect(o.keys == ["a", "b", "list", "nested"])
    }
}
