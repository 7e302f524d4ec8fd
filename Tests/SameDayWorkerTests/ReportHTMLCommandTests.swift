import Foundation
import Testing

/// `sameday report --format html` over a replay's files, as the daily timer runs it (the page itself is tested in
/// SameDayReportTests, in a browser too).
@Suite("sameday report: the HTML page")
struct ReportHTMLCommandTests {
    static func event(_ id: String, _ dossier: String, _ type: String, _ at: String, _ extra: String) -> String {
        #"{"schema":"sameday.dossier-event/1","eventId":"\#(id)","dossier":"\#(dossier)","unit":"760","procedure":"2.000815.000.00.00.H29","type":"\#(type)","occurredAt":"\#(at)",\#(extra)"source":"test"}"#
    }

    @Test("replay, then the page with the alerts and the working time left at the period's end")
    func pageFromReplay() throws {
        let root = temporaryFolder("report-html")
        let events = [
            // Resolved on time.
            Self.event("e1", "760-220520-0001", "received", "2022-05-20T09:00:00+07:00", #""channel":"direct","#),
            Self.event("e2", "760-220520-0001", "resolved", "2022-05-20T16:00:00+07:00", #""outcome":"approved","#),
            // Received Friday after the cut-off, due Monday 17:00, never resolved: overdue at the end of Monday.
            Self.event("e3", "760-220520-0002", "received", "2022-05-20T15:01:00+07:00", #""channel":"online","#),
        ]
        try Data((events.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: root + "/events.jsonl"))
        let replay = try runSameday([
            "replay", "--config", hcmcConfiguration, "--events", root + "/events.jsonl", "--out", root + "/out",
            "--until", "2022-05-24T00:00:00+07:00",
        ])
        #expect(replay.status == 0)
        let page = root + "/report.html"
        let report = try runSameday([
            "report", "--rollups", root + "/out/rollups", "--alerts", root + "/out/alerts.jsonl", "--config",
            hcmcConfiguration, "--from", "2022-05-20", "--to", "2022-05-23", "--format", "html", "--out", page,
        ])
        #expect(report.status == 0)
        #expect(report.output.isEmpty, "--out: nothing on standard output")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(html.contains("<html lang=\"vi\">"))
        #expect(html.contains("20/05/2022 – 23/05/2022"))
        #expect(html.contains("<td class=\"code\">760-220520-0002</td>"))
        #expect(!html.contains("<td class=\"code\">760-220520-0001</td>"))
        #expect(html.contains("23/05/2022 17:00"))
        #expect(html.contains("Thời gian làm việc còn lại (cuối kỳ)"))

        // Without the optional sources the page still renders, and says what is missing.
        let bare = try runSameday([
            "report", "--rollups", root + "/out/rollups", "--from", "2022-05-20", "--to", "2022-05-23", "--format",
            "html",
        ])
        #expect(bare.status == 0)
        #expect(bare.output.contains("Không có tệp cảnh báo (chưa cho --alerts)"))

        let missing = try runSameday(
            [
                "report", "--rollups", root + "/out/rollups", "--alerts", root + "/nowhere", "--from", "2022-05-20",
                "--to", "2022-05-23", "--format", "html",
            ], capturingErrors: true)
        #expect(missing.status == 1)
        #expect(missing.output.contains("--alerts \(root)/nowhere: no such file or folder"))
    }
}
