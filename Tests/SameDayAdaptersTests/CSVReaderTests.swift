import Foundation
import SameDayAdapters
import SameDayCore
import Testing

/// The file adapter reads CSV with the core's reader (`SameDayCore.CSV`, issue 9 item 6): one RFC 4180 reader for
/// the whole package.
@Suite("File adapter: the one CSV reader (no broker)")
struct CSVReaderTests {
    func readAll(_ path: String, delimiter: UInt8? = nil) throws -> (RecordReader, [SourceRecord]) {
        let reader = try RecordReader(path: path, kind: .csv(delimiter: delimiter))
        var records: [SourceRecord] = []
        while let record = try reader.nextRecord() { records.append(record) }
        return (reader, records)
    }

    @Test("an unterminated quote is refused once the record passes 4 MiB, naming its line, not rescanned for ever")
    func unterminatedQuoteIsBounded() throws {
        let dir = temporaryFolder("csv-unterminated")
        let path = dir + "/broken.csv"
        var text = "dossier,note\n760-220518-0001,ok\n760-220518-0002,\"never closed\n"
        text += String(repeating: "760-220518-0003,row inside the open quote\n", count: 150_000)  // about 6 MiB
        write(text, to: path, bom: false)
        let reader = try RecordReader(path: path, kind: .csv(delimiter: nil))
        #expect(try reader.nextRecord()?.line == 2)
        #expect {
            while try reader.nextRecord() != nil {}
        } throws: { error in
            "\(error)".contains("line 3: a record longer than 4 MiB (an unterminated quote?)")
        }
    }

    @Test("streaming a file larger than the read chunk gives the core reader's records and lines")
    func streamingAgreesWithCore() throws {
        let dir = temporaryFolder("csv-agree")
        let path = dir + "/big.csv"
        // Records of varying lengths, with quotes, `""`, CRLF and `;` inside quoted fields, so that record, field,
        // `""` and CRLF boundaries all fall on the 1 MiB chunk boundary somewhere.
        var text = "Mã hồ sơ;Ghi chú;Trạng thái\r\n"
        var k = 0
        while text.utf8.count < 3 << 20 {
            let note = String(repeating: "ệ", count: k % 37) + (k % 3 == 0 ? "\"\"x\r\ny;z" : "") + "\"\""
            text += "HS-\(k);\"\(note)\";\(k % 5 == 0 ? "\"Đã tiếp nhận\"" : "ok")\r\n"
            if k % 11 == 0 { text += "\r\n" }
            k += 1
        }
        write(text, to: path, bom: true)
        let (reader, records) = try readAll(path)
        #expect(reader.delimiter == UInt8(ascii: ";"))
        let core = try CSV.parse([0xEF, 0xBB, 0xBF] + Array(text.utf8), delimiter: UInt8(ascii: ";"))
        #expect(records.count == core.count - 1)
        #expect(records.allSatisfy { $0.syntaxError == nil })
        #expect(records.map(\.line) == core.dropFirst().map(\.line))
        #expect(records.map(\.fields) == core.dropFirst().map(\.fields))
        #expect(records.last?.endOffset == reader.fileSize)
    }

    @Test("a lone CR outside quotes is an error of its record only; the next record and its line are right")
    func loneCarriageReturn() throws {
        let dir = temporaryFolder("csv-cr")
        let path = dir + "/export.csv"
        write("a;b\r\n\"x\"\ry;z\r\nok;1\r\nbare\rcr;2\r\nlast;3", to: path)
        let (_, records) = try readAll(path)
        #expect(records.map(\.line) == [2, 3, 4, 5])
        #expect(records[0].syntaxError?.contains("carriage return not followed by a line feed") == true)
        #expect(records[1].fields == ["ok", "1"] && records[1].syntaxError == nil)
        #expect(records[2].syntaxError?.contains("carriage return") == true)
        #expect(records[3].fields == ["last", "3"] && records[3].syntaxError == nil)
    }

    @Test("a delimiter that cannot separate fields is refused")
    func badDelimiter() {
        let dir = temporaryFolder("csv-delimiter")
        let path = dir + "/export.csv"
        write("a,b\n1,2\n", to: path)
        for bad: UInt8 in [0x22, 0x0A, 0x0D, 0xC3] {
            #expect(throws: AdapterError.self) { _ = try RecordReader(path: path, kind: .csv(delimiter: bad)) }
        }
    }
}
