import Foundation
import Testing

@testable import SameDayCore

/// Biểu 06 lays out rows per field (lĩnh vực) within each unit; the fields of a unit add up to its row, and the CSV
/// can carry the form's Vietnamese labels (issue 11 item 5).
@Suite("Rollups: rows per field, Vietnamese headers")
struct FieldRowsTests {
    let config = Fixture.config

    @Test("the catalog's fields in order of first appearance, then the unlisted row")
    func fieldsOfTheCatalog() {
        #expect(config.fields == ["Chứng thực", "Hộ tịch", "Xây dựng", "Tư pháp", "Khác", Configuration.unlistedField])
        #expect(config.field(.catalog(3)) == config.field(.catalog(4)), "two procedures of Tư pháp share a row")
        #expect(config.fields[Int(config.field(.unlisted("9.9")))] == Configuration.unlistedField)
        #expect(config.fieldID(named: "Hộ tịch") == 1)
        #expect(config.fieldID(named: "a field the catalog no longer has") == FieldID(config.fields.count - 1))
    }

    @Test("field rows add up to their unit, only fields that counted appear, and they render in CSV and JSON")
    func fieldRows() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "760-220518-0002"
        b.procedure = Fixture.sameDayCutoff16
        var c = EventBuilder()
        c.dossier = "760-220518-0003"
        c.procedure = "9.999999.000.00.00.H29"
        let events = [
            a(.received, "2022-05-18 09:00", channel: .online), a(.resolved, "2022-05-18 10:00"),
            b(.received, "2022-05-18 09:30"), c(.received, "2022-05-18 09:40"),
        ]
        let replay = try Replay.run(events: events, config: config, options: ReplayOptions())
        let r = Rollup.compute(facts: replay.facts(), period: .day(LocalDate("2022-05-18")!), config: config)
        #expect(r.fields.map(\.field) == ["Chứng thực", "Hộ tịch", Configuration.unlistedField])
        #expect(r.fields.allSatisfy { $0.unit == "760" })
        let unit = try #require(r.units.first { $0.unit == "760" })
        #expect(r.fields.reduce(RollupFigures()) { $0 + $1.figures } == unit.figures)
        #expect(r.identityViolations.isEmpty)
        let lines = String(decoding: r.fieldsCSV(), as: UTF8.self).dropFirst().components(separatedBy: "\r\n")
        #expect(lines[0].hasPrefix("from,to,unit,unit_name,block,field,received_total,"))
        #expect(
            lines[1]
                == "2022-05-18,2022-05-18,760,Quận 1,district,Chứng thực,1,1,0,0,1,0,1,0,0,0,0,0,0,0,1,1,1,0,0,100.0"
        )
        #expect(lines.count == 5, "three rows, the header and the final CRLF")
        #expect(String(decoding: r.fieldsJSON(), as: UTF8.self).contains(#""field":"Hộ tịch","received_total":1"#))

        // A damaged field row is caught: the unit is no longer the sum of its fields.
        var broken = r
        broken.fields[0].figures.receivedOnline += 1
        #expect(broken.identityViolations.contains(.unitNotSumOfFields(unit: "760")))
        #expect(broken.identityViolations.map(\.description).contains("unit 760 is not the sum of its fields"))
    }

    @Test("Vietnamese headers name every column with the form's label, once")
    func vietnameseHeaders() throws {
        let keys = ["from", "to", "unit", "unit_name", "block", "field"]
        let labels = RollupHeaders.vi.labels(keys + RollupFigures.columns)
        #expect(Set(labels).count == labels.count, "labels are distinct")
        #expect(zip(keys + RollupFigures.columns, labels).allSatisfy { $0 != $1 }, "every column has a label")
        #expect(labels.contains("Tiếp nhận và giải quyết ngay trong ngày"))
        let r = Rollup(unitRows: [], period: .day(LocalDate("2022-05-18")!))
        let header = String(decoding: r.blocksCSV(headers: .vi), as: UTF8.self).dropFirst().prefix { $0 != "\r\n" }
        #expect(header.hasPrefix("Từ ngày,Đến ngày,Khối,Tổng số hồ sơ yêu cầu giải quyết,"))
        #expect(RollupHeaders.en.labels(RollupFigures.columns) == RollupFigures.columns)
    }

    @Test("a catalog with more distinct fields than rollups keep is refused at the line that crosses the bound")
    func fieldBound() {
        var catalog = "procedure,name,field,sla,cutoff,scope\n"
        for n in 0...Configuration.maxCatalogFields {
            catalog += "1.\(100000 + n).000.00.00.H29,Thủ tục \(n),Lĩnh vực \(n),same-day,,city\n"
        }
        #expect {
            try Configuration.parse(Fixture.files(replacing: "catalog.csv", with: catalog))
        } throws: { error in
            let text = "\(error)"
            return text.contains("catalog.csv:\(Configuration.maxCatalogFields + 2):")
                && text.contains("distinct fields")
        }
    }
}
