import Mustache
import SameDayCore
import SameDayFormats

/// What the supervisor's page is made of. The executable gathers it from files; the page itself is pure.
public struct HTMLReportInput: Sendable {
    /// The period's rollup (units, blocks, the city), as `sameday report` computes it from the daily files.
    public var rollup: Rollup
    /// The city's figures for each day of the period, in order (from the daily rollups).
    public var daily: [RollupFigures]
    /// The alerts of the workers' alert files up to the period's end, or nil when no alerts folder was given.
    public var alerts: [ReportAlert]?
    /// The folders the rollups and the alerts came from, named in the page's notes.
    public var rollupSources: [String]
    public var alertSources: [String]
    /// With the configuration, the working time left at the period's end is computed on each dossier's calendar;
    /// without it the page shows the working time left when the dossier's last alert fired.
    public var configuration: Configuration?

    public init(
        rollup: Rollup, daily: [RollupFigures], alerts: [ReportAlert]?, rollupSources: [String],
        alertSources: [String], configuration: Configuration?
    ) {
        self.rollup = rollup
        self.daily = daily
        self.alerts = alerts
        self.rollupSources = rollupSources
        self.alertSources = alertSources
        self.configuration = configuration
    }
}

/// `sameday report --format html`: one self-contained page (inline CSS and SVG, no script, no font or file from
/// elsewhere) rendered with a Mustache template, which escapes every value.
public enum HTMLReport {
    /// Dossier rows listed in full; the rest are counted.
    public static let dossierLimit = 300

    public static func render(_ input: HTMLReportInput) -> String {
        template.render(page(input))
    }

    // Parsed once: the template is a constant, so a parse error is a programming error caught by every test.
    private static let template: MustacheTemplate = {
        do {
            return try MustacheTemplate(string: HTMLTemplate.page)
        } catch {
            fatalError("the HTML report template does not parse: \(error)")
        }
    }()

    // MARK: - The page model (strings, ready to print; Mustache reads it by reflection)

    struct Page {
        var title: String
        var periodText: String
        var dayCount: String
        var cards: [Card]
        var blockHeader: Header
        var blockRows: [Row]
        var unitBlocks: [UnitBlock]
        var seed: Seed
        var rates: [RateRow]
        var unratedUnits: String?
        var chart: Chart
        var dossiers: Dossiers
        var alerts: Alerts
        var forecast: Forecast
        var rollupSources: String
        var alertSources: String?
        var seedName: String
        /// Made from simulated events: the page says so at its top (`SimulatedData`).
        var simulated: Bool
    }

    struct Card {
        var label: String
        var value: String
        var note: String
    }

    struct Header {
        struct Group {
            var label: String
            var span: Int
            var single: Bool
        }
        var groups: [Group]
        var columns: [String]
    }

    struct Row {
        var code: String
        var name: String
        var cells: [String]
        var rate: String
        var total: Bool
    }

    struct UnitBlock {
        var name: String
        var count: String
        var rows: [Row]
    }

    struct Seed {
        struct Line {
            var name: String
            var received: String
            var inTime: String
            var sameDay: String
            var target: String
            var difference: String
            var share: String
            var total: Bool
        }
        var lines: [Line]
        var matchesPeriod: Bool
        var seedPeriod: String
    }

    struct RateRow {
        var rank: Int
        var code: String
        var name: String
        var block: String
        var resolved: String
        var late: String
        var rate: String
        var width: String
        var tone: String
    }

    struct Chart {
        struct Bar {
            var x: String
            var y: String
            var height: String
            var title: String
        }
        struct Tick {
            var y: String
            var label: String
        }
        struct Label {
            var x: String
            var text: String
        }
        var width: Int
        var height: Int
        var plotLeft: Int
        var plotRight: Int
        var plotBottom: Int
        var barWidth: String
        var received: [Bar]
        var resolved: [Bar]
        var late: [Bar]
        var ticks: [Tick]
        var labels: [Label]
        var summary: String
    }

    struct Dossiers {
        struct Line {
            var dossier: String
            var unit: String
            var block: String
            var procedure: String
            var status: String
            var overdue: Bool
            var lastAlert: String
            var due: String
            var left: String
        }
        var given: Bool
        var lines: [Line]
        var overdueCount: String
        var atRiskCount: String
        var more: String?
        var leftHeader: String
        var leftNote: String
    }

    struct Alerts {
        struct Line {
            var label: String
            var code: String
            var cells: [String]
            var total: String
        }
        var given: Bool
        var blocks: [String]
        var lines: [Line]
        var total: String
        var lateFired: String
    }

    /// Per unit, the `at_risk` flags of the period by outcome (docs/rules.md §5.6).
    struct Forecast {
        struct Line {
            var unit: String
            var code: String
            var late: String
            var saved: String
            var missed: String
        }
        var given: Bool
        var any: Bool
        var lines: [Line]
        var more: String?
        var late: String
        var saved: String
        var missed: String
    }

    static let forecastLimit = 40

    static func forecast(_ input: HTMLReportInput) -> Forecast {
        guard let alerts = input.alerts else {
            return Forecast(given: false, any: false, lines: [], more: nil, late: "0", saved: "0", missed: "0")
        }
        let outcomes = DossierWatch.forecastOutcomes(
            alerts, period: input.rollup.period, configuration: input.configuration)
        let names = Dictionary(input.rollup.units.map { ($0.unit, $0.unitName) }, uniquingKeysWith: { a, _ in a })
        func missed(_ n: Int?) -> String { n.map(VietnameseFormat.integer) ?? "—" }
        return Forecast(
            given: true, any: !outcomes.isEmpty,
            lines: outcomes.prefix(forecastLimit).map {
                Forecast.Line(
                    unit: names[$0.unit] ?? $0.unit, code: $0.unit, late: VietnameseFormat.integer($0.flaggedLate),
                    saved: VietnameseFormat.integer($0.flaggedSaved), missed: missed($0.missed))
            },
            more: outcomes.count > forecastLimit ? VietnameseFormat.integer(outcomes.count - forecastLimit) : nil,
            late: VietnameseFormat.integer(outcomes.reduce(0) { $0 + $1.flaggedLate }),
            saved: VietnameseFormat.integer(outcomes.reduce(0) { $0 + $1.flaggedSaved }),
            missed: input.configuration == nil
                ? "—" : VietnameseFormat.integer(outcomes.reduce(0) { $0 + ($1.missed ?? 0) }))
    }

    static func page(_ input: HTMLReportInput) -> Page {
        let r = input.rollup
        let city = r.blocks.first { $0.block == nil }?.figures ?? RollupFigures()
        let period = "\(VietnameseFormat.date(r.period.from)) – \(VietnameseFormat.date(r.period.to))"
        let days = Int(r.period.to.dayNumber - r.period.from.dayNumber + 1)
        let seedTotal = SeedFigures.total
        let cards = [
            Card(
                label: "Tiếp nhận", value: VietnameseFormat.integer(city.receivedTotal),
                note: "trong đó kỳ trước chuyển qua \(VietnameseFormat.integer(city.carriedOver))"),
            Card(
                label: "Đã giải quyết", value: VietnameseFormat.integer(city.resolvedTotal),
                note: "quá hạn \(VietnameseFormat.integer(city.resolvedLate))"),
            Card(
                label: "Tỷ lệ đúng hạn", value: VietnameseFormat.percent(tenths: rateTenths(city)),
                note: "trước hạn và đúng hạn trên tổng số đã giải quyết"),
            Card(
                label: "Giải quyết trong ngày", value: VietnameseFormat.integer(city.sameDayResolvedSameDay),
                note: "chỉ tiêu tài liệu gốc: hơn \(VietnameseFormat.integer(seedTotal))"),
        ]
        return Page(
            title: "Báo cáo kết quả giải quyết thủ tục hành chính trong ngày",
            periodText: period,
            dayCount: VietnameseFormat.integer(days),
            cards: cards,
            blockHeader: header(),
            blockRows: r.blocks.map { b in
                row(
                    code: b.block?.rawValue ?? "all", name: ReportLabels.block(b.block), b.figures,
                    total: b.block == nil)
            },
            unitBlocks: Block.allCases.compactMap { block in
                let units = r.units.filter { $0.block == block }
                guard !units.isEmpty else { return nil }
                return UnitBlock(
                    name: ReportLabels.block(block), count: VietnameseFormat.integer(units.count),
                    rows: units.map { row(code: $0.unit, name: $0.unitName, $0.figures, total: false) })
            },
            seed: seed(r),
            rates: rates(r),
            unratedUnits: unrated(r),
            chart: chart(input.daily, from: r.period.from),
            dossiers: dossiers(input),
            alerts: alerts(input),
            forecast: forecast(input),
            rollupSources: input.rollupSources.joined(separator: ", "),
            alertSources: input.alerts == nil ? nil : input.alertSources.joined(separator: ", "),
            seedName: SeedFigures.name,
            simulated: r.simulated)
    }

    /// (early + on time) / resolved in tenths of a percent, rounded half up as `RollupFigures.onTimeRate`.
    static func rateTenths(_ f: RollupFigures) -> Int? {
        let total = f.resolvedTotal
        guard total > 0 else { return nil }
        return (2000 * (f.resolvedEarly + f.resolvedOnTime) + total) / (2 * total)
    }

    static func header() -> Header {
        Header(
            groups: ReportLabels.columnGroups.map {
                Header.Group(label: $0.group, span: max(1, $0.columns.count), single: $0.columns.isEmpty)
            },
            columns: ReportLabels.columnGroups.flatMap(\.columns))
    }

    static func row(code: String, name: String, _ f: RollupFigures, total: Bool) -> Row {
        Row(
            code: code, name: name, cells: f.values.map(VietnameseFormat.integer),
            rate: VietnameseFormat.percent(tenths: rateTenths(f)), total: total)
    }

    static func seed(_ r: Rollup) -> Seed {
        func line(_ block: Block?, _ f: RollupFigures) -> Seed.Line {
            let target = block.map { SeedFigures.sameDayResolvedSameDay[$0] ?? 0 } ?? SeedFigures.total
            let share = target > 0 ? (2000 * f.sameDayResolvedSameDay + target) / (2 * target) : nil
            let diff = f.sameDayResolvedSameDay - target
            return Seed.Line(
                name: ReportLabels.block(block), received: VietnameseFormat.integer(f.sameDayReceived),
                inTime: VietnameseFormat.integer(f.sameDayResolvedInTime),
                sameDay: VietnameseFormat.integer(f.sameDayResolvedSameDay),
                // The seed states the city's total as a lower bound ("hơn 694.309"), the blocks' as counts.
                target: (block == nil ? "hơn " : "") + VietnameseFormat.integer(target),
                difference: (diff > 0 ? "+" : "") + VietnameseFormat.integer(diff),
                share: VietnameseFormat.percent(tenths: share), total: block == nil)
        }
        return Seed(
            lines: r.blocks.map { line($0.block, $0.figures) },
            matchesPeriod: r.period == SeedFigures.period,
            seedPeriod:
                "\(VietnameseFormat.date(SeedFigures.period.from)) – \(VietnameseFormat.date(SeedFigures.period.to))")
    }

    /// Units with something resolved, worst on-time rate first (then most late, then code).
    static func rates(_ r: Rollup) -> [RateRow] {
        let rated = r.units.compactMap { u in rateTenths(u.figures).map { (u, $0) } }
            .sorted { a, b in
                if a.1 != b.1 { return a.1 < b.1 }
                if a.0.figures.resolvedLate != b.0.figures.resolvedLate {
                    return a.0.figures.resolvedLate > b.0.figures.resolvedLate
                }
                return a.0.unit < b.0.unit
            }
        return rated.enumerated().map { i, pair in
            let (u, tenths) = pair
            return RateRow(
                rank: i + 1, code: u.unit, name: u.unitName, block: ReportLabels.block(u.block),
                resolved: VietnameseFormat.integer(u.figures.resolvedTotal),
                late: VietnameseFormat.integer(u.figures.resolvedLate), rate: VietnameseFormat.percent(tenths: tenths),
                width: "\(tenths / 10).\(tenths % 10)",
                tone: tenths >= 1000 ? "good" : tenths >= 950 ? "fair" : "poor")
        }
    }

    static func unrated(_ r: Rollup) -> String? {
        let n = r.units.filter { $0.figures.resolvedTotal == 0 }.count
        return n == 0 ? nil : VietnameseFormat.integer(n)
    }

    /// Received (online and direct/postal, not the carried-over stock), resolved and resolved late per day, as
    /// grouped bars on a shared scale.
    static func chart(_ daily: [RollupFigures], from: LocalDate) -> Chart {
        let width = 1000
        let height = 320
        let left = 70
        let right = width - 10
        let top = 16
        let bottom = height - 34
        let series = daily.map { ($0.receivedOnline + $0.receivedDirectPostal, $0.resolvedTotal, $0.resolvedLate) }
        let peak = series.map { max($0.0, $0.1, $0.2) }.max() ?? 0
        let scaleMax = niceCeiling(max(peak, 1))
        let slot = Double(right - left) / Double(max(daily.count, 1))
        let bar = min(slot * 0.28, 14)
        func y(_ v: Int) -> Double { Double(bottom) - Double(v) / Double(scaleMax) * Double(bottom - top) }
        func bars(_ pick: (Int, Int, Int) -> Int, offset: Int, name: String) -> [Chart.Bar] {
            series.enumerated().map { i, s in
                let v = pick(s.0, s.1, s.2)
                let x = Double(left) + slot * Double(i) + (slot - 3 * bar) / 2 + Double(offset) * bar
                return Chart.Bar(
                    x: fixed(x), y: fixed(y(v)), height: fixed(Double(bottom) - y(v)),
                    title:
                        "\(VietnameseFormat.date(from.adding(days: Int64(i)))): \(name) \(VietnameseFormat.integer(v))"
                )
            }
        }
        let step = max(1, Int((Double(daily.count) / 16).rounded(.up)))
        let labels = stride(from: 0, to: daily.count, by: step).map { i in
            Chart.Label(
                x: fixed(Double(left) + slot * (Double(i) + 0.5)),
                text: VietnameseFormat.dayMonth(from.adding(days: Int64(i))))
        }
        let ticks = (0...4).map { k in
            let v = scaleMax * k / 4
            return Chart.Tick(y: fixed(y(v)), label: VietnameseFormat.integer(v))
        }
        let totals = series.reduce((0, 0, 0)) { ($0.0 + $1.0, $0.1 + $1.1, $0.2 + $1.2) }
        return Chart(
            width: width, height: height, plotLeft: left, plotRight: right, plotBottom: bottom, barWidth: fixed(bar),
            received: bars({ a, _, _ in a }, offset: 0, name: "tiếp nhận"),
            resolved: bars({ _, b, _ in b }, offset: 1, name: "đã giải quyết"),
            late: bars({ _, _, c in c }, offset: 2, name: "quá hạn"),
            ticks: ticks, labels: labels,
            summary:
                "Tiếp nhận mới \(VietnameseFormat.integer(totals.0)), đã giải quyết \(VietnameseFormat.integer(totals.1)), quá hạn \(VietnameseFormat.integer(totals.2)) trong \(VietnameseFormat.integer(daily.count)) ngày"
        )
    }

    /// The smallest 1, 2 or 5 × 10^k at or above `v`, so the axis ticks are round numbers.
    static func niceCeiling(_ v: Int) -> Int {
        var magnitude = 1
        while magnitude * 10 <= v { magnitude *= 10 }
        for m in [1, 2, 4, 5, 10] where m * magnitude >= v { return m * magnitude }
        return 10 * magnitude
    }

    static func fixed(_ v: Double) -> String {
        let tenths = Int((v * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(Int(tenths.magnitude) % 10)"
    }

    static func dossiers(_ input: HTMLReportInput) -> Dossiers {
        let withConfig = input.configuration != nil
        let leftHeader = withConfig ? "Thời gian làm việc còn lại (cuối kỳ)" : "Thời gian còn lại (lúc cảnh báo)"
        let leftNote =
            withConfig
            ? "tính trên lịch làm việc của đơn vị đến 24:00 ngày cuối kỳ; số âm là đã quá hạn"
            : "số phút làm việc còn lại ghi trong cảnh báo gần nhất (không có --config nên không tính lại đến cuối kỳ)"
        guard let alerts = input.alerts else {
            return Dossiers(
                given: false, lines: [], overdueCount: "0", atRiskCount: "0", more: nil, leftHeader: leftHeader,
                leftNote: leftNote)
        }
        let open = DossierWatch.openAtEnd(alerts, end: input.rollup.period.end)
        let end = input.rollup.period.end
        var lines: [(Dossiers.Line, Int, Instant)] = []
        var overdue = 0
        for a in open {
            let due = a.dueInstant ?? end
            let left: Int? =
                input.configuration.flatMap { DossierWatch.workingMinutesLeft(a, at: end, configuration: $0) }
                ?? (withConfig ? nil : a.minutesLeft)
            let isOverdue = due <= end || ["overdue", "escalated"].contains(a.level)
            if isOverdue { overdue += 1 }
            lines.append(
                (
                    Dossiers.Line(
                        dossier: a.dossier, unit: a.unit, block: ReportLabels.block(Block(rawValue: a.block)),
                        procedure: a.procedure, status: isOverdue ? "Quá hạn" : "Sắp đến hạn", overdue: isOverdue,
                        lastAlert:
                            "\(ReportLabels.level(a.level)), \(a.firedInstant.map(VietnameseFormat.dateTime) ?? a.firedAt)",
                        due: a.dueInstant.map(VietnameseFormat.dateTime) ?? "—",
                        left: left.map { VietnameseFormat.workingTime(minutes: $0) } ?? "—"),
                    isOverdue ? 0 : 1, due
                ))
        }
        lines.sort { a, b in
            if a.1 != b.1 { return a.1 < b.1 }
            if a.2 != b.2 { return a.2 < b.2 }
            return a.0.dossier < b.0.dossier
        }
        let more = lines.count > dossierLimit ? VietnameseFormat.integer(lines.count - dossierLimit) : nil
        return Dossiers(
            given: true, lines: lines.prefix(dossierLimit).map(\.0), overdueCount: VietnameseFormat.integer(overdue),
            atRiskCount: VietnameseFormat.integer(lines.count - overdue), more: more, leftHeader: leftHeader,
            leftNote: leftNote)
    }

    static func alerts(_ input: HTMLReportInput) -> Alerts {
        // The blocks the report has (no districts on a map since 2025), in the seed's order.
        let blocks = Block.allCases.filter { b in input.rollup.blocks.contains { $0.block == b } }
        guard let all = input.alerts else {
            return Alerts(
                given: false, blocks: blocks.map { ReportLabels.block($0) }, lines: [], total: "0", lateFired: "0")
        }
        let period = DossierWatch.inPeriod(all, period: input.rollup.period)
        var counts: [String: [Block: Int]] = [:]
        for a in period { counts[a.level, default: [:]][Block(rawValue: a.block) ?? .vertical, default: 0] += 1 }
        let known = Set(ReportLabels.levels.map(\.code))
        let codes = ReportLabels.levels.map(\.code) + counts.keys.filter { !known.contains($0) }.sorted()
        let lines = codes.map { code in
            let c = counts[code] ?? [:]
            return Alerts.Line(
                label: ReportLabels.level(code), code: code,
                cells: blocks.map { VietnameseFormat.integer(c[$0] ?? 0) },
                total: VietnameseFormat.integer(c.values.reduce(0, +)))
        }
        return Alerts(
            given: true, blocks: blocks.map { ReportLabels.block($0) }, lines: lines,
            total: VietnameseFormat.integer(period.count),
            lateFired: VietnameseFormat.integer(period.filter { $0.lateFired == true }.count))
    }
}
