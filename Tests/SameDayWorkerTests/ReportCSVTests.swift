import Foundation
import SameDayCore
import Testing

/// `sameday report` reads daily rollup CSV with the core's reader (issue 9 item 6): quoted fields may hold CRLF,
/// commas and quotes followed by combining marks, and it writes them back the same.
@Suite("sameday report: rollup CSV")
struct ReportCSVTests {
    @Test("a unit name with CRLF, a comma and a quote before a combining mark survives report")
    func quotedNames() throws {
        let root = temporaryFolder("report-csv")
        let day = root + "/rollups/daily/2022-05-18"
        try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
        let name = "Quận \"Một\u{0300}\"\r\nTP, Hồ Chí Minh".decomposedStringWithCanonicalMapping
        let header = ["from", "to", "unit", "unit_name", "block"] + RollupFigures.columns
        let figures = RollupFigures.columns.map { $0 == "received_total" || $0 == "received_online" ? "1" : "0" }
        var rows = [CSV.record(header)]
        rows.append(CSV.record(["2022-05-18", "2022-05-18", "760", name, "district"] + figures.dropLast() + [""]))
        rows.append(CSV.record(["2022-05-18", "2022-05-18", "761", "Quận 2", "district"] + figures.dropLast() + [""]))
        try Data(([0xEF, 0xBB, 0xBF] + Array((rows.joined(separator: "\r\n") + "\r\n").utf8)))
            .write(to: URL(fileURLWithPath: day + "/units.csv"))
        let run = try runSameday([
            "report", "--rollups", root + "/rollups", "--from", "2022-05-18", "--to", "2022-05-18", "--format", "csv",
            "--level", "units",
        ])
        #expect(run.status == 0)
        let records = try CSV.parse(Array(run.output.utf8))
        let unit = try #require(records.first { $0.fields.count > 3 && $0.fields[2] == "760" })
        #expect(Array(unit.fields[3].utf8) == Array(name.utf8))
        #expect(unit.fields[5] == "1")
        #expect(records.contains { $0.fields.count > 3 && $0.fields[2] == "761" })
    }

    @Test("a malformed rollup file is refused with its physical line")
    func malformedNamesLine() throws {
        let root = temporaryFolder("report-csv-bad")
        let day = root + "/rollups/daily/2022-05-18"
        try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
        let header = (["from", "to", "unit", "unit_name", "block"] + RollupFigures.columns).joined(separator: ",")
        try Data("\(header)\r\n2022-05-18,2022-05-18,760,\"Quận\r\n1\"x,district\r\n".utf8)
            .write(to: URL(fileURLWithPath: day + "/units.csv"))
        let run = try runSameday(
            ["report", "--rollups", root + "/rollups", "--from", "2022-05-18", "--to", "2022-05-18"],
            capturingErrors: true)
        #expect(run.status == 1)
        #expect(run.output.contains("units.csv:3: text after a closing quote"))
    }
}
