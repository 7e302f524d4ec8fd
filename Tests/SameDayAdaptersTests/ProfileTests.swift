import Foundation
import SameDayAdapters
import SameDayBroker
import SameDayCore
import Testing

@Suite("Mapping profiles")
struct ProfileTests {
    @Test("the two shipped profiles load")
    func shippedProfiles() throws {
        let csv = try MappingProfile.load(path: repoPath("deploy/adapters/profiles/motcua-q1.json"))
        #expect(csv.format == .csv && csv.delimiter == nil && csv.allowedUnits == ["760", "26734", "26737"])
        #expect(csv.statuses[MappingProfile.normalise("Yêu cầu bổ sung")] == .event(.supplementRequested))
        let national = try MappingProfile.load(path: repoPath("deploy/adapters/profiles/dvc-national-codes.json"))
        let expected: [EventType] = [
            .submitted, .received, .refused, .transferred, .supplementRequested, .feeRequested, .withdrawn, .stopped,
            .resolved, .returned,
        ]
        for (code, type) in zip(1...10, expected) { #expect(national.statuses["\(code)"] == .event(type)) }
        // What simulate writes goes through simulated-jsonl.json (the demonstration) and stays labelled simulated;
        // a unit system speaking the canonical schema uses canonical-jsonl.json and is not.
        let simulated = try MappingProfile.load(path: repoPath("deploy/adapters/profiles/simulated-jsonl.json"))
        let canonical = try MappingProfile.load(path: repoPath("deploy/adapters/profiles/canonical-jsonl.json"))
        #expect(simulated.source.hasPrefix(SimulatedData.sourcePrefix))
        #expect(!canonical.source.hasPrefix(SimulatedData.sourcePrefix))
        #expect(simulated.columns == canonical.columns && simulated.statuses == canonical.statuses)
        // They take every event type and every canonical field the schema has: what simulate writes is never
        // rejected at the adapter (a new type once was, and the failover bench lost its extended events).
        for type in EventType.allCases {
            #expect(canonical.statuses[type.name] == .event(type), "\(type.name) missing from canonical-jsonl.json")
        }
        for field in MappingProfile.Field.allCases {
            #expect(canonical.columns[field] != nil, "\(field) missing from canonical-jsonl.json")
        }
    }

    @Test(
        "profiles with errors are refused with the file, line, column, key path and the reason",
        arguments: [
            (#"{"source": "x", "format": "csv"#, "not valid JSON: this string has no closing quote"),
            (#"[]"#, "the profile must be a JSON object, found an array"),
            (#"{"source": "x", "format": "xml"}"#, #"key "format": "xml" is not a format"#),
            (#"{"source": "x", "format": "csv", "colums": {}}"#, #"key "colums": unknown key (allowed: "#),
            (
                #"{"source": "x", "format": "csv", "columns": {"procedure": "p", "status": "s", "occurredAt": "t", "unit": "u"}, "statuses": {"A": "received"}}"#,
                #"key "columns.dossier": missing"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t"}, "statuses": {"A": "received"}}"#,
                #"key "columns.unit": missing"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t", "fullName": "n"}, "unit": "760"}"#,
                #"key "columns.fullName": not a canonical field"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t"}, "unit": "760", "statuses": {"Đã tiếp nhận": "accepted"}}"#,
                #"key "statuses.Đã tiếp nhận": "accepted" is not an event type"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t"}, "unit": "760", "nationalStatusCodes": true, "timeFormats": ["dd/MM/yy"]}"#,
                #"key "timeFormats[0]": "dd/MM/yy": "yy" is not a token"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t"}, "unit": "760"}"#,
                #"key "statuses": missing"#
            ),
            (
                #"{"source": "x", "format": "csv", "columns": {"dossier": "d", "procedure": "p", "status": "s", "occurredAt": "t"}, "unit": "760", "nationalStatusCodes": true, "eventIdFrom": ["dossier", "occurredAt"]}"#,
                #"key "eventIdFrom": must include status"#
            ),
            (
                #"{"source": "x", "format": "jsonl", "delimiter": ";", "columns": {}}"#,
                #"key "delimiter": only for the csv format"#
            ),
        ])
    func profileErrors(json: String, expected: String) {
        #expect {
            _ = try MappingProfile.parse(Array(json.utf8), file: "test.json")
        } throws: { error in
            // test.json:1:COLUMN: EXPECTED (every test profile is one line)
            let text = "\(error)"
            guard text.hasPrefix("test.json:1:") else { return false }
            let rest = text.dropFirst("test.json:1:".count).drop(while: \.isNumber)
            return rest.count < text.count - "test.json:1:".count && rest.hasPrefix(": " + expected)
        }
    }

    @Test("time formats: dd/MM/yyyy with and without seconds, d/M/yyyy, RFC 3339; impossible dates refused")
    func timeFormats() throws {
        let full = try TimeFormat("dd/MM/yyyy HH:mm:ss")
        #expect(full.parse("18/05/2022 08:15:30") == RFC3339.parse("2022-05-18T08:15:30+07:00"))
        #expect(full.parse("18/05/2022 08:15") == nil)
        #expect(full.parse("31/02/2022 08:15:00") == nil)
        #expect(full.parse("18/05/2022 24:00:00") == nil)
        let short = try TimeFormat("d/M/yyyy H:mm")
        #expect(short.parse("8/5/2022 7:30") == RFC3339.parse("2022-05-08T07:30:00+07:00"))
        #expect(TimeFormat.rfc3339.parse("2022-05-18T08:15:00+07:00") == RFC3339.parse("2022-05-18T01:15:00Z"))
    }

    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Padding boundaries: 55 bytes fit one final block, 56 need two; whole blocks; several blocks.
        let a = UInt8(ascii: "a")
        #expect(
            SHA256.hex([UInt8](repeating: a, count: 55))
                == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(
            SHA256.hex([UInt8](repeating: a, count: 56))
                == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(
            SHA256.hex([UInt8](repeating: a, count: 64))
                == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
        #expect(
            SHA256.hex([UInt8](repeating: a, count: 119))
                == "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb")
    }
}
