import ArgumentParser
import Foundation
import SameDayCore

/// `sameday report`: a period's rollup from daily rollup files.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Aggregate daily rollups into a period [from, to].",
        discussion: """
            Reads ROLLUPS/daily/YYYY-MM-DD/units.csv for every day of the period (all must exist); several --rollups folders (one per worker shard) are added up day by day. Flows (received, \
            resolved, withdrawn, same-day figures) are summed over the days; carried_over is the first day's and the \
            stocks in_progress_* and paused are the last day's, so the identities hold and the result equals the \
            rollup computed directly for the period. Blocks and the city are sums of their units.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json, html }
    enum Level: String, ExpressibleByArgument, CaseIterable { case units, fields, blocks }

    @Option(
        help: ArgumentHelp(
            "Rollups folder (the one holding daily/), e.g. OUT/rollups of a replay.",
            discussion:
                "Repeat it to add up the folders of several worker shards (disjoint dossiers): same-day figures are summed per unit."
        ))
    var rollups: [String]
    @Option(help: "First day, YYYY-MM-DD.") var from: String
    @Option(help: "Last day, YYYY-MM-DD.") var to: String
    @Option(help: "table, csv, json or html (the supervisor's page, docs/report.md).") var format: Format = .table
    @Option(
        help:
            "units, fields (Biểu 06's rows per field within each unit, from the daily fields.csv) or blocks (blocks end with the city row, all)."
    ) var level: Level = .blocks
    @Option(
        help: ArgumentHelp(
            "Header language of csv and table output: en (column names) or vi (the labels of Biểu 06/VPCP/KSTT).",
            discussion: "With vi, a clerk can paste the CSV into the official template; tools read back the en names."))
    var headers: RollupHeaders = .en
    @Option(help: "Write the report to this file (atomically) instead of standard output.") var out: String?
    @Option(
        help: ArgumentHelp(
            "html: a worker's alerts folder (alerts-YYYY-MM-DD.jsonl) or an alerts file (a replay's alerts.jsonl).",
            discussion:
                "Repeat it for several shards. The page counts the period's alerts by level and lists the dossiers overdue or at risk."
        ))
    var alerts: [String] = []
    @Option(help: "html: the configuration folder, to compute the working time left at the period's end.")
    var config: String?
    @Option(
        help:
            "Print the seed's figures beside ours (seed-2022): on standard output after a table, else on standard error."
    )
    var compare: String?

    func run() throws {
        try runReportingFailures {
            let first = try CoreFiles.parseDate(from, option: "--from")
            let last = try CoreFiles.parseDate(to, option: "--to")
            guard first <= last else { throw CommandFailure("--from \(from) is after --to \(to)") }
            if headers == .vi, format == .json || format == .html {
                throw CommandFailure(
                    "--headers vi applies to csv and table output; json keeps the column names, html is in Vietnamese")
            }
            var perUnit: [String: (name: String, block: Block, days: [RollupFigures])] = [:]
            var order: [String] = []
            var d = first
            while d <= last {
                var dayFigures: [String: RollupFigures] = [:]
                for root in rollups {
                    let path = (root as NSString).appendingPathComponent("daily/\(d)/units.csv")
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw CommandFailure(
                            "no daily rollup for \(d) in \(root) (expected \(path)); report periods must be covered by daily files"
                        )
                    }
                    let bytes = try CoreFiles.read(path)
                    for r in try RollupFile.rows(bytes, path: path) {
                        if perUnit[r.unit] == nil {
                            perUnit[r.unit] = (r.unitName, r.block, [])
                            order.append(r.unit)
                        }
                        dayFigures[r.unit] = (dayFigures[r.unit] ?? RollupFigures()) + r.figures
                    }
                }
                for (unit, figures) in dayFigures { perUnit[unit]!.days.append(figures) }
                d = d.adding(days: 1)
            }
            let days = Int(last.dayNumber - first.dayNumber + 1)
            for (code, u) in perUnit where u.days.count != days {
                throw CommandFailure("unit \(code) is missing from some daily files of the period")
            }
            let rows = order.map { code in
                let u = perUnit[code]!
                return UnitRow(
                    unit: code, unitName: u.name, block: u.block, figures: RollupFigures.aggregate(days: u.days))
            }
            let fieldRows = level == .fields ? try FieldRollupFile.period(rollups: rollups, from: first, to: last) : []
            let rollup = Rollup(unitRows: rows, fieldRows: fieldRows, period: Period(from: first, to: last))
            if level == .fields {
                // The field files and the unit files of the same days must agree, or one of them is damaged.
                let broken = rollup.identityViolations.filter {
                    if case .unitNotSumOfFields = $0 { true } else { false }
                }
                if let problem = broken.first {
                    throw CommandFailure("the daily fields.csv and units.csv files disagree: \(problem)")
                }
            }
            let bytes: [UInt8]
            switch (format, level) {
            case (.csv, .units): bytes = rollup.unitsCSV(headers: headers)
            case (.csv, .fields): bytes = rollup.fieldsCSV(headers: headers)
            case (.csv, .blocks): bytes = rollup.blocksCSV(headers: headers)
            case (.json, .units): bytes = rollup.unitsJSON()
            case (.json, .fields): bytes = rollup.fieldsJSON()
            case (.json, .blocks): bytes = rollup.blocksJSON()
            case (.table, _): bytes = Array(table(rollup).utf8)
            case (.html, _):
                // The chart's days: the city's figures per day, from the same daily files.
                let daily = (0..<days).map { i in perUnit.values.reduce(RollupFigures()) { $0 + $1.days[i] } }
                bytes = try htmlPage(rollup, daily: daily)
            }
            let comparison = try compare.map { try SeedComparison.text(rollup, against: $0) }
            try emit(bytes)
            // Beside a table on the terminal; a data file (csv, json, html, --out) stays clean.
            if let comparison {
                SeedComparison.print(comparison, toStandardOutput: format == .table && out == nil)
            }
        }
    }

    func table(_ r: Rollup) -> String {
        let keys: [String]
        let body: [[String]]
        switch level {
        case .units:
            keys = ["unit", "block"]
            body = r.units.map {
                [$0.unit, $0.block.rawValue] + $0.figures.values.map(String.init) + [$0.figures.onTimeRate]
            }
        case .fields:
            keys = ["unit", "field"]
            body = r.fields.map { [$0.unit, $0.field] + $0.figures.values.map(String.init) + [$0.figures.onTimeRate] }
        case .blocks:
            keys = ["block"]
            body = r.blocks.map { [$0.blockName] + $0.figures.values.map(String.init) + [$0.figures.onTimeRate] }
        }
        let header = headers.labels(keys + RollupFigures.columns)
        let widths = header.indices.map { i in ([header[i]] + body.map { $0[i] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i < keys.count
                    ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - c.count) + c
            }.joined(separator: "  ")
        }
        return "period \(r.period.from) … \(r.period.to)\n" + ([line(header)] + body.map(line)).joined(separator: "\n")
            + "\n"
    }
}

/// Reads rollup CSV files back, with the package's one CSV reader (`SameDayCore.CSV`): quoted unit names may hold
/// commas, quotes and line breaks (CRLF too), and errors name the file's physical line.
enum RollupFile {
    static let unitKeyColumns = ["from", "to", "unit", "unit_name", "block"]

    static func rows(_ bytes: [UInt8], path: String) throws -> [UnitRow] {
        try records(bytes, path: path, keyColumns: unitKeyColumns, kind: "units").map { row in
            UnitRow(unit: row.keys[2], unitName: row.keys[3], block: row.block, figures: row.figures)
        }
    }

    /// The rows of a daily rollup file whose header is `keyColumns` then `RollupFigures.columns`: each row's key
    /// cells, its block and its figures. Errors name the file's physical line.
    static func records(_ bytes: [UInt8], path: String, keyColumns: [String], kind: String) throws -> [(
        keys: [String], block: Block, figures: RollupFigures
    )] {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw CommandFailure("\(path):\(error.line): \(error.message)")
        }
        guard let header = records.first else { throw CommandFailure("\(path): empty") }
        guard Array(header.fields.prefix(keyColumns.count)) == keyColumns,
            Array(header.fields.dropFirst(keyColumns.count)) == RollupFigures.columns
        else { throw CommandFailure("\(path):\(header.line): not a \(kind) rollup header") }
        return try records.dropFirst().map { r in
            let f = r.fields
            guard f.count == header.fields.count, let block = Block(rawValue: f[4]),
                let figures = RollupFigures(columns: header.fields, values: f)
            else { throw CommandFailure("\(path):\(r.line): malformed row") }
            return (Array(f.prefix(keyColumns.count)), block, figures)
        }
    }
}

extension RollupHeaders: ExpressibleByArgument {}

/// Reads the daily `fields.csv` files of a period back and sums them per unit and field like the unit rows: flows
/// over the days, stocks from the first and last day; a field absent from a day's file counted nothing that day.
enum FieldRollupFile {
    static let keyColumns = RollupFile.unitKeyColumns + ["field"]

    static func period(rollups: [String], from first: LocalDate, to last: LocalDate) throws -> [FieldRow] {
        struct Key: Hashable {
            var unit: String
            var field: String
        }
        var rows: [Key: (name: String, block: Block, days: [Int64: RollupFigures])] = [:]
        var order: [Key] = []
        var day = first
        while day <= last {
            for root in rollups {
                let path = (root as NSString).appendingPathComponent("daily/\(day)/fields.csv")
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CommandFailure(
                        "no fields rollup for \(day) in \(root) (expected \(path)); it is written beside units.csv by workers and replays of this version"
                    )
                }
                for (key, name, block, figures) in try read(CoreFiles.read(path), path: path) {
                    let k = Key(unit: key.unit, field: key.field)
                    if rows[k] == nil {
                        rows[k] = (name, block, [:])
                        order.append(k)
                    }
                    rows[k]!.days[day.dayNumber] = (rows[k]!.days[day.dayNumber] ?? RollupFigures()) + figures
                }
            }
            day = day.adding(days: 1)
        }
        let dayNumbers = Array(first.dayNumber...last.dayNumber)
        return order.map { k in
            let r = rows[k]!
            return FieldRow(
                unit: k.unit, unitName: r.name, block: r.block, field: k.field,
                figures: RollupFigures.aggregate(days: dayNumbers.map { r.days[$0] ?? RollupFigures() }))
        }
    }

    static func read(_ bytes: [UInt8], path: String) throws -> [(
        key: (unit: String, field: String), name: String, block: Block, figures: RollupFigures
    )] {
        try RollupFile.records(bytes, path: path, keyColumns: keyColumns, kind: "fields").map { row in
            ((row.keys[2], row.keys[5]), row.keys[3], row.block, row.figures)
        }
    }
}
