import Foundation
import SameDayReport
import Testing

/// The report page in a real browser (headless Chromium): it loads with no console error, shows the figures, and
/// screenshots. Skipped, saying why, only where chromium is not installed and CI is not set.
@Suite(
    .serialized,
    .enabled(
        if: Chromium.installed != nil || Chromium.required,
        "chromium is not installed (apt-get install chromium, scripts/install-deps.sh)"))
final class BrowserTests {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sameday-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func chromium() throws -> Chromium {
        try #require(Chromium.installed, "CI=true but chromium is not installed: scripts/install-deps.sh installs it")
    }

    func write(_ html: String, name: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(html.utf8).write(to: url)
        return url
    }

    @Test func theReportRendersWithItsFiguresAndNoConsoleError() throws {
        let browser = try chromium()
        let page = try write(HTMLReport.render(ReportFixture.input()), name: "report.html")
        let dom = try browser.dumpDOM(page, in: folder)
        #expect(dom.consoleMessages == [], "console messages: \(dom.consoleMessages)")
        #expect(dom.stdout.contains("<html lang=\"vi\">"))
        // The figures, Vietnamese-formatted, as the browser laid them out.
        for text in [
            "15/05/2022 – 17/05/2022", "229.642", "199.275", "20.696", "244.696", "694.309", "98,5 %",
            "Toàn thành phố", "Biểu 06: kết quả giải quyết theo khối", "760-220517-0001", "17/05/2022 17:00",
            "UBND Quận 1 &lt;b&gt;&amp;&lt;/b&gt; \"Bến Nghé\"", "Quá hạn, báo cấp trên",
        ] {
            #expect(dom.stdout.contains(text), "not on the page: \(text)")
        }
        // The chart is there as SVG bars, 3 series × 3 days.
        #expect(dom.stdout.components(separatedBy: "<rect ").count - 1 == 9)

        let png = folder.appendingPathComponent("report.png")
        let shot = try browser.screenshot(page, to: png, in: folder)
        #expect(shot.consoleMessages == [])
        let bytes = try [UInt8](Data(contentsOf: png))
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        // The PNG's IHDR: 1280 wide, 2000 high.
        #expect(bytes.count > 24 && bytes[16..<24].elementsEqual([0, 0, 5, 0, 0, 0, 7, 0xD0]))
        #expect(bytes.count > 20_000, "a blank screenshot is tiny: \(bytes.count) bytes")
    }

    @Test func withoutAlertsThePageStillRendersCleanly() throws {
        let browser = try chromium()
        let page = try write(HTMLReport.render(ReportFixture.input(alerts: nil)), name: "no-alerts.html")
        let dom = try browser.dumpDOM(page, in: folder)
        #expect(dom.consoleMessages == [])
        #expect(dom.stdout.contains("Không có tệp cảnh báo (chưa cho --alerts)"))
    }

    /// The check above can fail: a script error, a console.error and a blocked load are each caught.
    @Test(arguments: [
        "<script>undefinedFunction();</script>",
        "<script>console.error('boom')</script>",
        "<img src=\"http://127.0.0.1:9/x.png\">",
    ])
    func aConsoleErrorIsCaught(body: String) throws {
        let browser = try chromium()
        let html = HTMLReport.render(ReportFixture.input())
        // Without the page's policy for the scripts (it would block them, which is itself a console error).
        let broken =
            body.hasPrefix("<script")
            ? html.replacingOccurrences(of: "<meta http-equiv=\"Content-Security-Policy\"", with: "<meta name=\"x\"")
            : html
        let page = try write(broken.replacingOccurrences(of: "</body>", with: body + "</body>"), name: "broken.html")
        let dom = try browser.dumpDOM(page, in: folder)
        #expect(dom.consoleMessages.count >= 1, "no console message caught for \(body)")
    }
}
