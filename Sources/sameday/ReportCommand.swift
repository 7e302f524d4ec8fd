import ArgumentParser
import Foundation
import SameDayCore
import SameDayFormats

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
            let period: RollupFolder.Period
            do {
                period = try RollupFolder.period(rollups: rollups, from: first, to: last, fields: level == .fields)
            } catch let error as RollupFolderError {
                throw CommandFailure(error.description)
            }
            var rollup = period.rollup
            rollup.simulated = period.simulated
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
                bytes = try htmlPage(rollup, daily: period.cityByDay)
            }
            let comparison = try compare.map { try SeedComparison.text(rollup, against: $0) }
            if period.simulated, format != .table {
                // The data carries its label (a column, a key, a banner); this reaches the person running it.
                FileHandle.standardError.write(
                    Data("note: \(SimulatedData.label): these rollups were made from simulated events\n".utf8))
            }
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
        let banner =
            r.simulated ? "\(SimulatedData.label.uppercased()): simulated data, made by sameday simulate\n" : ""
        return banner + "period \(r.period.from) … \(r.period.to)\n"
            + ([line(header)] + body.map(line)).joined(separator: "\n")
            + "\n"
    }
}

extension RollupHeaders: ExpressibleByArgument {}
