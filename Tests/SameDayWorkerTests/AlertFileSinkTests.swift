import Foundation
import SameDayStore
import Testing

@testable import SameDayWorker

@Suite("Alert files")
struct AlertFileSinkTests {
    func alert(_ id: String) -> OutboxAlert {
        OutboxAlert(
            alertID: id, level: "warning", routingKey: "warning.district.760", day: "2022-05-18",
            json: "{\"alertId\":\"\(id)\",\"level\":\"warning\"}")
    }

    @Test("a half-written last line left by a killed process is cut, and its alert written whole again")
    func partialLine() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sink = AlertFileSink(folder: folder)
        let path = sink.path(day: "2022-05-18")
        try Data("{\"alertId\":\"a1\",\"level\":\"warning\"}\n{\"alertId\":\"a2\",\"lev".utf8).write(
            to: URL(fileURLWithPath: path))
        _ = try AlertFileSink(folder: folder).write([alert("a1"), alert("a2"), alert("a3")])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(
            lines == [
                "{\"alertId\":\"a1\",\"level\":\"warning\"}", "{\"alertId\":\"a2\",\"level\":\"warning\"}",
                "{\"alertId\":\"a3\",\"level\":\"warning\"}",
            ])
    }

    @Test("alerts already in the file are not written twice")
    func noDuplicates() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try AlertFileSink(folder: folder).write([alert("a1")])
        _ = try AlertFileSink(folder: folder).write([alert("a1"), alert("a2")])
        #expect(try alertIDs(inFolder: folder) == ["a1", "a2"])
    }
}
