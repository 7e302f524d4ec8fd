import Foundation
import SameDayCore
import SameDayFiles

#if canImport(Glibc)
    import Glibc
#endif

/// The daily rollup files, laid out the same by `sameday replay` and the worker:
/// `ROOT/daily/YYYY-MM-DD/units.csv`, `fields.csv`, `blocks.csv`, `units.json`, `blocks.json` (the rows per field
/// are for the form's template, so CSV only: they are the largest file of a day).
public enum RollupFiles {
    /// The files of one day, as (path, bytes).
    public static func files(for rollup: Rollup, date: LocalDate, root: String) -> [(path: String, bytes: [UInt8])] {
        let folder = (root as NSString).appendingPathComponent("daily/\(date)")
        return [
            ((folder as NSString).appendingPathComponent("units.csv"), rollup.unitsCSV()),
            ((folder as NSString).appendingPathComponent("fields.csv"), rollup.fieldsCSV()),
            ((folder as NSString).appendingPathComponent("blocks.csv"), rollup.blocksCSV()),
            ((folder as NSString).appendingPathComponent("units.json"), rollup.unitsJSON()),
            ((folder as NSString).appendingPathComponent("blocks.json"), rollup.blocksJSON()),
        ]
    }

    /// Writes the files of one day, each atomically, skipping a file whose bytes it wrote before (`written`,
    /// keyed by path) or that already holds them on disk (a restart). Returns the number of files written.
    /// `mayWrite` is asked before each file replaces the last (see `DurableFile.writeAtomically`): once false,
    /// nothing more is written.
    public static func write(
        _ rollup: Rollup, date: LocalDate, root: String, written: inout [String: Int],
        mayWrite: () -> Bool = { true }
    ) throws -> Int {
        var count = 0
        for (path, bytes) in files(for: rollup, date: date, root: root) {
            // Hashed and compared as whole buffers: byte by byte (`[UInt8]`'s `hash(into:)`, `Data`'s iterator) was a
            // large share of a snapshot's CPU.
            var hasher = Hasher()
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
            let digest = hasher.finalize()
            if let previous = written[path] {
                if previous == digest { continue }
            } else if let onDisk = FileManager.default.contents(atPath: path), onDisk == Data(bytes) {
                written[path] = digest
                continue
            }
            try DurableFile.createFolder(of: path)
            guard try DurableFile.writeAtomically(bytes, to: path, replaceIf: mayWrite) else { break }
            written[path] = digest
            count += 1
        }
        return count
    }

    /// Marks a rollups folder as made from simulated events (`SimulatedData.markerFile`, written atomically once;
    /// never removed: a folder that held simulated figures keeps saying so).
    public static func markSimulated(root: String) throws {
        let path = (root as NSString).appendingPathComponent(SimulatedData.markerFile)
        if FileManager.default.fileExists(atPath: path) { return }
        try DurableFile.createFolder(of: path)
        _ = try DurableFile.writeAtomically(Array(SimulatedData.markerText.utf8), to: path)
    }

    /// Marks `root` when any of `events` is simulated; returns whether it did.
    @discardableResult
    public static func markSimulated(root: String, ifAnyOf events: [DossierEvent]) throws -> Bool {
        guard events.contains(where: SimulatedData.isSimulated) else { return false }
        try markSimulated(root: root)
        return true
    }

    /// Whether a rollups folder was made from simulated events.
    public static func isSimulated(root: String) -> Bool {
        FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent(SimulatedData.markerFile))
    }

    /// Writes the daily files for every day from `firstDay` to `lastDay` (day numbers) from all facts
    /// (`sameday replay`).
    public static func write(
        facts: [DossierFacts], days: ClosedRange<Int64>, configuration: Configuration, root: String,
        written: inout [String: Int]
    ) throws -> Int {
        var count = 0
        for day in days {
            let date = LocalDate(dayNumber: day)
            let rollup = Rollup.compute(facts: facts, period: .day(date), config: configuration)
            count += try write(rollup, date: date, root: root, written: &written)
        }
        return count
    }
}
