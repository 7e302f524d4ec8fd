import ArgumentParser
import Foundation
import SameDayCore
import SameDayFormats

#if canImport(Glibc)
    import Glibc
#endif

/// A command-line failure: printed on stderr, non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// File access for the core commands (the core itself does no I/O).
enum CoreFiles {
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("\(path): cannot read the file")
        }
        return [UInt8](data)
    }

    /// Loads and validates a configuration folder (docs/rules.md §7).
    static func loadConfiguration(_ dir: String) throws -> Configuration {
        do {
            return try ConfigurationFolder.load(dir)
        } catch let error as ConfigurationFolder.LoadError {
            throw CommandFailure(error.description)
        }
    }

    /// Reads a JSON-lines events file; a bad line fails with file and line number.
    static func loadEvents(_ path: String) throws -> (events: [DossierEvent], lines: [Int]) {
        do {
            return try EventsFile.load(path)
        } catch {
            throw CommandFailure(error.description)
        }
    }

    static func parseInstant(_ s: String, option: String) throws -> Instant {
        guard let t = RFC3339.parse(s) else {
            throw CommandFailure(
                "\(option) \"\(s)\": not an RFC 3339 timestamp with offset (e.g. 2022-05-18T08:15:00+07:00)")
        }
        return t
    }

    static func parseDate(_ s: String, option: String) throws -> LocalDate {
        guard let d = LocalDate(s) else { throw CommandFailure("\(option) \"\(s)\": not a YYYY-MM-DD date") }
        return d
    }
}

/// Runs a command body, turning failures into a message on stderr and exit status 1.
func runReportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as CommandFailure {
        FileHandle.standardError.write(Data(("sameday: " + e.description + "\n").utf8))
        throw ExitCode.failure
    } catch {
        FileHandle.standardError.write(Data(("sameday: \(error)\n").utf8))
        throw ExitCode.failure
    }
}
