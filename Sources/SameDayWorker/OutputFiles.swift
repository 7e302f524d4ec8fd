import Foundation
import SameDayCore
import SameDayFiles

#if canImport(Glibc)
    import Glibc
#endif

/// The daily rollup files, laid out the same by `sameday replay` and the worker:
/// `ROOT/daily/YYYY-MM-DD/units.csv`, `blocks.csv`, `units.json`, `blocks.json`.
public enum RollupFiles {
    /// The four files of one day, as (path, bytes).
    public static func files(for rollup: Rollup, date: LocalDate, root: String) -> [(path: String, bytes: [UInt8])] {
        let folder = (root as NSString).appendingPathComponent("daily/\(date)")
        return [
            ((folder as NSString).appendingPathComponent("units.csv"), rollup.unitsCSV()),
            ((folder as NSString).appendingPathComponent("blocks.csv"), rollup.blocksCSV()),
            ((folder as NSString).appendingPathComponent("units.json"), rollup.unitsJSON()),
            ((folder as NSString).appendingPathComponent("blocks.json"), rollup.blocksJSON()),
        ]
    }

    /// Writes the daily files for every day from `firstDay` to `lastDay` (day numbers), each atomically.
    /// `unchanged` lets a caller skip days whose bytes it already wrote (keyed by path).
    public static func write(
        facts: [DossierFacts], days: ClosedRange<Int64>, configuration: Configuration, root: String,
        written: inout [String: Int]
    ) throws -> Int {
        var count = 0
        for day in days {
            let date = LocalDate(dayNumber: day)
            let rollup = Rollup.compute(facts: facts, period: .day(date), config: configuration)
            for (path, bytes) in files(for: rollup, date: date, root: root) {
                var hasher = Hasher()
                hasher.combine(bytes)
                let digest = hasher.finalize()
                if written[path] == digest { continue }
                try DurableFile.createFolder(of: path)
                try DurableFile.writeAtomically(bytes, to: path)
                written[path] = digest
                count += 1
            }
        }
        return count
    }
}
