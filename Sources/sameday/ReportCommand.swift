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

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json }
    enum Level: String, ExpressibleByArgument, CaseIterable { case units, blocks }

    @Option(
        help: ArgumentHelp(
            "Rollups folder (the one holding daily/), e.g. OUT/rollups of a replay.",
            discussion:
                "Repeat it to add up the folders of several worker shards (disjoint dossiers): same-day figures are summed per unit."
        ))
    var rollups: [String]
    @Option(help: "First day, YYYY-MM-DD.") var from: String
    @Option(help: "Last day, YYYY-MM-DD.") var to: String
    @Option(help: "table, csv or json.") var format: Format = .table
    @Option(help: "units or blocks (blocks end with the city row, all).") var level: Level = .blocks
    @Option(help: "Print the seed's figures beside ours (seed-2022); on stderr unless --format table.")
    var compare: String?

    func run() throws {
        try runReportingFailures {
            let first = try CoreFiles.parseDate(from, option: "--from")
            let last = try CoreFiles.parseDate(to, option: "--to")
            guard first <= last else { throw CommandFailure("--from \(from) is after --to \(to)") }
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
            let rollup = Rollup(unitRows: rows, period: Period(from: first, to: last))
            let out: [UInt8]
            switch (format, level) {
            case (.csv, .units): out = rollup.unitsCSV()
            case (.csv, .blocks): out = rollup.blocksCSV()
            case (.json, .units): out = rollup.unitsJSON()
            case (.json, .blocks): out = rollup.blocksJSON()
            case (.table, _): out = Array(table(rollup).utf8)
            }
            let comparison = try compare.map { try SeedComparison.text(rollup, against: $0) }
            FileHandle.standardOutput.write(Data(out))
            if let comparison { SeedComparison.print(comparison, toStandardOutput: format == .table) }
        }
    }

    func table(_ r: Rollup) -> String {
        let header = (level == .units ? ["unit", "block"] : ["block"]) + RollupFigures.columns
        let body: [[String]] =
            level == .units
            ? r.units.map {
                [$0.unit, $0.block.rawValue] + $0.figures.values.map(String.init) + [$0.figures.onTimeRate]
            }
            : r.blocks.map { [$0.blockName] + $0.figures.values.map(String.init) + [$0.figures.onTimeRate] }
        let widths = header.indices.map { i in ([header[i]] + body.map { $0[i] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i < (level == .units ? 2 : 1)
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
    static func rows(_ bytes: [UInt8], path: String) throws -> [UnitRow] {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw CommandFailure("\(path):\(error.line): \(error.message)")
        }
        guard let header = records.first else { throw CommandFailure("\(path): empty") }
        guard Array(header.fields.prefix(5)) == ["from", "to", "unit", "unit_name", "block"],
            Array(header.fields.dropFirst(5)) == RollupFigures.columns
        else { throw CommandFailure("\(path):\(header.line): not a units rollup header") }
        return try records.dropFirst().map { r in
            let f = r.fields
            guard f.count == header.fields.count, let block = Block(rawValue: f[4]),
                let figures = RollupFigures(columns: header.fields, values: f)
            else { throw CommandFailure("\(path):\(r.line): malformed row") }
            return UnitRow(unit: f[2], unitName: f[3], block: block, figures: figures)
        }
    }
}
