import Foundation
import SameDayCore

/// Reading a period back from daily rollup folders (`ROOT/daily/YYYY-MM-DD/units.csv` and `fields.csv`, as
/// `RollupFiles` writes them): what `sameday report` and its page are made of. Several folders (one per worker
/// shard, disjoint dossiers) are added up day by day.
public enum RollupFolder {
    /// A period's rollup, and the city's figures on each of its days (the page's chart).
    public struct Period: Sendable {
        public var rollup: Rollup
        public var cityByDay: [RollupFigures]
        /// Some folder was made from simulated events (`SimulatedData.markerFile`): every report of it says so.
        public var simulated = false
    }

    /// Reads every day from `first` to `last` (each must be in every folder) and aggregates it (docs/rules.md §6.2):
    /// flows summed, `carried_over` from the first day, stocks from the last; blocks and the city are sums of their
    /// units. With `fields`, the rows per field too, checked against the unit rows of the same days.
    public static func period(rollups: [String], from first: LocalDate, to last: LocalDate, fields: Bool) throws
        -> Period
    {
        var perUnit: [String: (name: String, block: Block, days: [RollupFigures])] = [:]
        var order: [String] = []
        var d = first
        while d <= last {
            var dayFigures: [String: RollupFigures] = [:]
            for root in rollups {
                let path = (root as NSString).appendingPathComponent("daily/\(d)/units.csv")
                guard FileManager.default.fileExists(atPath: path) else {
                    throw RollupFolderError(
                        "no daily rollup for \(d) in \(root) (expected \(path)); report periods must be covered by daily files"
                    )
                }
                for r in try RollupFile.rows(read(path), path: path) {
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
            throw RollupFolderError("unit \(code) is missing from some daily files of the period")
        }
        let rows = order.map { code in
            let u = perUnit[code]!
            return UnitRow(unit: code, unitName: u.name, block: u.block, figures: RollupFigures.aggregate(days: u.days))
        }
        let fieldRows = fields ? try FieldRollupFile.period(rollups: rollups, from: first, to: last) : []
        let rollup = Rollup(unitRows: rows, fieldRows: fieldRows, period: SameDayCore.Period(from: first, to: last))
        if fields {
            // The field files and the unit files of the same days must agree, or one of them is damaged.
            let broken = rollup.identityViolations.filter {
                if case .unitNotSumOfFields = $0 { true } else { false }
            }
            if let problem = broken.first {
                throw RollupFolderError("the daily fields.csv and units.csv files disagree: \(problem)")
            }
        }
        let cityByDay = (0..<days).map { i in perUnit.values.reduce(RollupFigures()) { $0 + $1.days[i] } }
        return Period(
            rollup: rollup, cityByDay: cityByDay, simulated: rollups.contains { RollupFiles.isSimulated(root: $0) })
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RollupFolderError("\(path): cannot read the file")
        }
        return [UInt8](data)
    }
}

/// A daily rollup file that is missing, unreadable or malformed: the message names the file and the line.
public struct RollupFolderError: Error, CustomStringConvertible {
    public var description: String
    init(_ message: String) { description = message }
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

    /// The rows of a daily rollup file whose header is `keyColumns` then `RollupFigures.columns` (or the columns of
    /// files written before `received_promise_differs`): each row's key cells, its block and its figures. Errors name
    /// the file's physical line.
    static func records(_ bytes: [UInt8], path: String, keyColumns: [String], kind: String) throws -> [(
        keys: [String], block: Block, figures: RollupFigures
    )] {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw RollupFolderError("\(path):\(error.line): \(error.message)")
        }
        guard let header = records.first else { throw RollupFolderError("\(path): empty") }
        guard Array(header.fields.prefix(keyColumns.count)) == keyColumns,
            [RollupFigures.columns, RollupFigures.columnsBeforePromise].contains(
                Array(header.fields.dropFirst(keyColumns.count)))
        else { throw RollupFolderError("\(path):\(header.line): not a \(kind) rollup header") }
        return try records.dropFirst().map { r in
            let f = r.fields
            guard f.count == header.fields.count, let block = Block(rawValue: f[4]),
                let figures = RollupFigures(columns: header.fields, values: f)
            else { throw RollupFolderError("\(path):\(r.line): malformed row") }
            return (Array(f.prefix(keyColumns.count)), block, figures)
        }
    }
}

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
                    throw RollupFolderError(
                        "no fields rollup for \(day) in \(root) (expected \(path)); it is written beside units.csv by workers and replays of this version"
                    )
                }
                for (key, name, block, figures) in try read(RollupFolder.read(path), path: path) {
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
