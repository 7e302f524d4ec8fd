import Foundation
import Testing

@testable import SameDayCore

@Suite("Events: strict decoding and canonical encoding")
struct EventTests {
    static let valid =
        #"{"schema":"sameday.dossier-event/1","eventId":"e-1","dossier":"000.00.15.H29-220518-0042","unit":"760","procedure":"1.000494.000.00.00.H29","type":"received","occurredAt":"2022-05-18T08:15:00+07:00","seq":3,"channel":"online","source":"motcua-q1"}"#

    @Test func decodesAValidEvent() throws {
        let e = try DossierEvent.decode(Self.valid)
        #expect(e.eventId == "e-1")
        #expect(e.dossier == "000.00.15.H29-220518-0042")
        #expect(e.type == .received)
        #expect(e.channel == .online)
        #expect(e.seq == 3)
        #expect(e.occurredAt == RFC3339.parse("2022-05-18T01:15:00Z"))
    }

    @Test func encodingIsCanonicalAndRoundTrips() throws {
        let e = try DossierEvent.decode(Self.valid)
        let text = e.encoded()
        #expect(text == Self.valid)
        #expect(try DossierEvent.decode(text) == e)
        // Whitespace and key order do not matter on input.
        let shuffled =
            #"{ "source" : "motcua-q1", "type":"received","seq":3,"occurredAt":"2022-05-18T01:15:00Z","channel":"online","procedure":"1.000494.000.00.00.H29","unit":"760","dossier":"000.00.15.H29-220518-0042","eventId":"e-1","schema":"sameday.dossier-event/1" }"#
        #expect(try DossierEvent.decode(shuffled) == e)
    }

    @Test func stringEscapesAreDecodedAndReEncoded() throws {
        let text = Self.valid.replacingOccurrences(
            of: #""source":"motcua-q1""#, with: #""source":"m\u00f4t c\u1eeda \"q1\"\\\/ \ud83d\ude00""#)
        let e = try DossierEvent.decode(text)
        #expect(e.source == "môt cửa \"q1\"\\/ 😀")
        #expect(try DossierEvent.decode(e.encoded()) == e)
        // An escaped control character is refused like a raw one: it would not read back from a C string.
        for escape in [#"\n"#, #"\u0000"#, #"\u001b"#, #"\u007f"#, #"\t"#] {
            let bad = Self.valid.r(#""source":"motcua-q1""#, #""source":"motcua"# + escape + #"q1""#)
            #expect(throws: EventDecodingError.self, "escape \(escape)") { try DossierEvent.decode(bad) }
        }
    }

    static let errors: [(String, String, EventDecodingError)] = [
        (
            "unknown type", #""type":"received""#.r(#""type":"approved""#),
            .init(field: "type", reason: .unknownEventType("approved"))
        ),
        (
            "bad timestamp", #""occurredAt":"2022-05-18T08:15:00+07:00""#.r(#""occurredAt":"2022-05-18 08:15""#),
            .init(field: "occurredAt", reason: .badTimestamp)
        ),
        (
            "no offset", #""occurredAt":"2022-05-18T08:15:00+07:00""#.r(#""occurredAt":"2022-05-18T08:15:00""#),
            .init(field: "occurredAt", reason: .badTimestamp)
        ),
        (
            "wrong schema", #""schema":"sameday.dossier-event/1""#.r(#""schema":"sameday.dossier-event/2""#),
            .init(field: "schema", reason: .badSchema("sameday.dossier-event/2"))
        ),
        ("missing eventId", #""eventId":"e-1","#.r(""), .init(field: "eventId", reason: .missingField)),
        ("missing source", #","source":"motcua-q1""#.r(""), .init(field: "source", reason: .missingField)),
        (
            "oversized dossier",
            #""dossier":"000.00.15.H29-220518-0042""#.r("\"dossier\":\"\(String(repeating: "x", count: 65))\""),
            .init(field: "dossier", reason: .tooLong(limit: 64))
        ),
        (
            "oversized eventId", #""eventId":"e-1""#.r("\"eventId\":\"\(String(repeating: "x", count: 129))\""),
            .init(field: "eventId", reason: .tooLong(limit: 128))
        ),
        (
            "personal data: fullName", #""source":"#.r(#""fullName":"Nguyễn Văn A","source":"#),
            .init(field: "fullName", reason: .personalData)
        ),
        (
            "personal data: cccd", #""source":"#.r(#""cccd":"079012345678","source":"#),
            .init(field: "cccd", reason: .personalData)
        ),
        (
            "personal data: applicantPhone", #""source":"#.r(#""applicantPhone":"0909","source":"#),
            .init(field: "applicantPhone", reason: .personalData)
        ),
        (
            "personal data: email", #""source":"#.r(#""email":"a@b.vn","source":"#),
            .init(field: "email", reason: .personalData)
        ),
        (
            "personal data: address", #""source":"#.r(#""address":"1 Lê Duẩn","source":"#),
            .init(field: "address", reason: .personalData)
        ),
        ("unknown field", #""source":"#.r(#""priority":1,"source":"#), .init(field: "priority", reason: .unknownField)),
        ("duplicate field", #""source":"#.r(#""unit":"761","source":"#), .init(field: "unit", reason: .duplicateField)),
        (
            "bad channel", #""channel":"online""#.r(#""channel":"fax""#),
            .init(field: "channel", reason: .badValue("must be direct, online or postal, not \"fax\""))
        ),
        (
            "negative seq", #""seq":3"#.r(#""seq":-3"#),
            .init(field: "seq", reason: .wrongType(expected: "an integer ≥ 0"))
        ),
        (
            "fractional seq", #""seq":3"#.r(#""seq":3.5"#),
            .init(field: "seq", reason: .wrongType(expected: "an integer ≥ 0"))
        ),
        (
            "number for a string", #""unit":"760""#.r(#""unit":760"#),
            .init(field: "unit", reason: .wrongType(expected: "a string"))
        ),
        ("empty unit", #""unit":"760""#.r(#""unit":"""#), .init(field: "unit", reason: .empty)),
        (
            "channel on another type", #""type":"received""#.r(#""type":"resolved""#),
            .init(field: "channel", reason: .notAllowed(onType: "resolved"))
        ),
        (
            "rescheduled without newDueAt",
            #""type":"received","#.r(#""type":"rescheduled","#).r(#","channel":"online""#, ""),
            .init(field: "newDueAt", reason: .missingField)
        ),
    ]

    @Test(arguments: 0..<errors.count)
    func rejectsWithAPreciseError(_ k: Int) {
        let (name, text, expected) = Self.errors[k]
        #expect(throws: expected, "\(name)") { try DossierEvent.decode(text) }
    }

    @Test func syntaxErrorsAreReported() {
        for bad in ["", "[]", "{", #"{"schema":}"#, Self.valid + "x", #"{"schema":"sameday.dossier-event/1",}"#] {
            do {
                _ = try DossierEvent.decode(bad)
                Issue.record("accepted \(bad)")
            } catch {
                switch error.reason {
                case .syntax, .missingField, .wrongType: break
                default: Issue.record("\(bad): \(error)")
                }
            }
        }
    }

    @Test func invalidUTF8AndControlCharactersAreRefused() {
        var bytes = Array(Self.valid.utf8)
        let at = Self.valid.utf8.count - 10  // the "m" of "motcua-q1"
        bytes[at] = 0xFF
        #expect(throws: EventDecodingError(field: "source", reason: .badValue("invalid UTF-8"))) {
            try DossierEvent.decode(bytes: bytes)
        }
        let tab = Self.valid.r(#""source":"motcua-q1""#, "\"source\":\"a\tb\"")
        #expect(throws: EventDecodingError.self) { try DossierEvent.decode(tab) }
    }

    @Test func errorMessagesNameTheField() {
        let e = EventDecodingError(field: "occurredAt", reason: .badTimestamp)
        #expect(e.description.contains("\"occurredAt\""))
    }
}

extension String {
    /// Replaces the first occurrence (test helper for building bad events from a good one).
    func r(_ target: String, _ with: String) -> String {
        guard let range = range(of: target) else { fatalError("no \(target) in \(self)") }
        return replacingCharacters(in: range, with: with)
    }
    func r(_ with: String) -> String { EventTests.valid.r(self, with) }
}
