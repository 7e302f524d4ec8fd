import Foundation
import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// File output that survives a crash at any instant: a file is either its old bytes or its new bytes.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes `bytes` to a temporary file in the same folder, fsyncs it, renames it over `path`, then fsyncs the
    /// folder so the rename itself is durable.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = (folder as NSString).appendingPathComponent(
            ".\((path as NSString).lastPathComponent).tmp-\(getpid())")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WriteError(description: "\(temporary): cannot create (\(String(cString: strerror(errno))))")
        }
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 {
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(failure != 0 ? failure : errno))
            unlink(temporary)
            throw WriteError(description: "\(path): write failed (\(reason))")
        }
        syncFolder(folder)
    }

    /// Appends lines and fsyncs: the alerts files grow by whole lines only.
    public static func append(_ bytes: [UInt8], to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let existed = FileManager.default.fileExists(atPath: path)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WriteError(description: "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var offset = 0
        try bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    throw WriteError(description: "\(path): append failed (\(String(cString: strerror(errno))))")
                }
                offset += written
            }
        }
        guard fsync(fd) == 0 else { throw WriteError(description: "\(path): fsync failed") }
        if !existed { syncFolder(folder) }
    }

    static func syncFolder(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

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
                try AtomicFile.write(bytes, to: path)
                written[path] = digest
                count += 1
            }
        }
        return count
    }
}
