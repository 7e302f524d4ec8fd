import SameDayCore
import Testing

@testable import SameDayReport

@Suite struct HTMLReportTests {
    @Test func thePageIsSelfContainedVietnameseHTML() {
        let html = HTMLReport.render(ReportFixture.input())
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"vi\">"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        // Nothing from elsewhere: no script, no link, no external URL (the SVG namespace is a name, not a load).
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        #expect(!html.contains("src=\"http"))
        #expect(!html.contains("url("))
        let withoutSVGNamespace = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        #expect(!withoutSVGNamespace.contains("http:"))
        #expect(!withoutSVGNamespace.contains("https:"))
    }

    @Test func everyValueIsEscaped() {
        let html = HTMLReport.render(ReportFixture.input())
        #expect(html.contains("UBND Quận 1 &lt;b&gt;&amp;&lt;/b&gt; &quot;Bến Nghé&quot;"))
        #expect(!html.contains("<b>&</b>"))
    }

    @Test func figuresAreVietnameseFormattedBesideTheSeedTargets() {
        let html = HTMLReport.render(ReportFixture.input())
        #expect(html.contains("15/05/2022 – 17/05/2022"))
        // The fixture's same-day figures are the seed's, block by block, so each target is met exactly.
        for n in ["229.642", "199.275", "20.696", "244.696"] {
            #expect(html.contains("<td class=\"num\">\(n)</td><td class=\"num\">\(n)</td><td class=\"num\">0</td>"))
        }
        // The seed states the city's total as "hơn 694.309" (more than): printed so, never as an exact count.
        #expect(
            html.contains("<td class=\"num\">694.309</td><td class=\"num\">hơn 694.309</td><td class=\"num\">0</td>"))
        #expect(html.contains("chỉ tiêu tài liệu gốc: hơn 694.309"))
        #expect(html.contains("Kỳ báo cáo này khác kỳ của chỉ tiêu"))
    }

    @Test("a page made from simulated events says so at its top and in its title; one from units does not")
    func simulatedDataIsLabelled() {
        var input = ReportFixture.input()
        #expect(!HTMLReport.render(input).contains("SỐ LIỆU MÔ PHỎNG"))
        #expect(!HTMLReport.render(input).contains("id=\"simulated\""))
        input.rollup.simulated = true
        let html = HTMLReport.render(input)
        #expect(html.contains("<p class=\"simulated\" id=\"simulated\">SỐ LIỆU MÔ PHỎNG"))
        #expect(html.contains("<title>[Số liệu mô phỏng] "))
        // Before the first figure, where a reader starts.
        #expect(html.range(of: "id=\"simulated\"")!.lowerBound < html.range(of: "id=\"summary\"")!.lowerBound)
    }

    @Test("the page lists each unit's at_risk flags by outcome: late, saved, and (with a configuration) missed")
    func forecastOutcomesPerUnit() {
        let extra = [
            ReportFixture.alert(
                "f1", "at_risk", dossier: "760-220516-0005", fired: "2022-05-16T14:00:00+07:00", left: 180),
            ReportFixture.alert("f2", "overdue", dossier: "760-220516-0005", fired: "2022-05-16T17:00:00+07:00"),
            ReportFixture.alert(
                "g1", "at_risk", dossier: "26734-220516-0006", unit: "26734", block: "commune",
                fired: "2022-05-16T13:30:00+07:00", left: 210),
            ReportFixture.alert(
                "g2", "cleared", dossier: "26734-220516-0006", unit: "26734", block: "commune",
                fired: "2022-05-16T16:00:00+07:00", left: 60),
            // Flagged and still open at the end: neither late nor saved yet.
            ReportFixture.alert(
                "h1", "at_risk", dossier: "760-220517-0007", fired: "2022-05-17T14:00:00+07:00", left: 180),
        ]
        let alerts = ReportFixture.alerts + extra
        let outcomes = DossierWatch.forecastOutcomes(
            alerts, period: ReportFixture.rollup.period, configuration: nil)
        #expect(
            outcomes == [
                .init(unit: "26734", flaggedLate: 0, flaggedSaved: 1, missed: nil),
                .init(unit: "760", flaggedLate: 1, flaggedSaved: 0, missed: nil),
            ])
        let html = HTMLReport.render(ReportFixture.input(alerts: alerts))
        #expect(html.contains("<section id=\"forecast\">"))
        #expect(
            html.contains(
                "<td class=\"code\">760</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">—</td>"))
        #expect(html.contains(ReportLabels.level("at_risk")))
        // The open one is listed among the dossiers at risk at the end.
        #expect(html.contains("760-220517-0007"))
        // Without alerts the section says so.
        #expect(HTMLReport.render(ReportFixture.input(alerts: nil)).contains("<section id=\"forecast\">"))
    }

    @Test func unitsAreRankedWorstOnTimeRateFirst() {
        let rates = HTMLReport.rates(ReportFixture.rollup)
        #expect(rates.map(\.code) == ["SNV", "760", "26734", "CA-Q1"])
        #expect(rates.first?.rate == "98,5 %")
        #expect(rates.last?.rate == "100,0 %")
    }

    @Test func alertsAreCountedOncePerIdWithinThePeriod() {
        let alerts = HTMLReport.alerts(ReportFixture.input())
        #expect(alerts.total == "7")
        let byLevel = Dictionary(uniqueKeysWithValues: alerts.lines.map { ($0.code, $0.total) })
        #expect(byLevel["warning"] == "2")
        #expect(byLevel["escalated"] == "1")
        #expect(byLevel["cleared"] == "2")
        #expect(byLevel["resolved_late"] == "0")
    }

    @Test func dossiersOpenAtTheEndFromTheirLatestAlert() {
        let open = DossierWatch.openAtEnd(ReportFixture.alerts, end: ReportFixture.period.end)
        #expect(open.map(\.dossier) == ["760-220517-0001", "SNV-220515-0002"])
        let d = HTMLReport.dossiers(ReportFixture.input())
        #expect(d.overdueCount == "1")
        #expect(d.atRiskCount == "1")
        #expect(d.lines.map(\.status) == ["Quá hạn", "Sắp đến hạn"])
        #expect(d.lines[0].due == "17/05/2022 17:00")
        #expect(d.lines[0].left == "-1 giờ")
    }

    @Test func withoutAlertsThePageSaysSo() {
        let html = HTMLReport.render(ReportFixture.input(alerts: nil))
        #expect(html.contains("Không có tệp cảnh báo (chưa cho --alerts)"))
        #expect(!html.contains("<th>Cảnh báo gần nhất</th>"))
    }

    @Test func chartAxesUseRoundNumbers() {
        #expect(HTMLReport.niceCeiling(1) == 1)
        #expect(HTMLReport.niceCeiling(7) == 10)
        #expect(HTMLReport.niceCeiling(130) == 200)
        #expect(HTMLReport.niceCeiling(330_000) == 400_000)
        #expect(HTMLReport.niceCeiling(480_000) == 500_000)
        let chart = HTMLReport.chart(ReportFixture.daily, from: ReportFixture.from)
        #expect(chart.received.count == 3)
        #expect(chart.ticks.last?.label == "500.000")
    }
}
