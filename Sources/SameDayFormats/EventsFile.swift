import Foundation
import SameDayCore

/// A JSON-lines file of canonical events (`sameday simulate`'s output, a replay's input).
public enum EventsFile {
    /// A line that does not read as an event, or a file that cannot be read: names the file and the line.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads the file; blank lines are skipped, and each event comes with its line number.
    public static func load(_ path: String) throws(Failure) -> (events: [DossierEvent], lines: [Int]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "\(path): cannot read the file")
        }
        var events: [DossierEvent] = []
        var lines: [Int] = []
        var line = 0
        var failure: Failure?
        data.withUnsafeBytes { buf in
            var start = 0
            while start < buf.count {
                line += 1
                var end = start
                while end < buf.count && buf[end] != 0x0A { end += 1 }
                var stop = end
                if stop > start && buf[stop - 1] == 0x0D { stop -= 1 }
                let slice = UnsafeRawBufferPointer(rebasing: buf[start..<stop])
                if !slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    do {
                        events.append(try DossierEvent.decode(slice))
                        lines.append(line)
                    } catch {
                        failure = Failure(description: "\(path):\(line): \(error)")
                        return
                    }
                }
                start = end + 1
            }
        }
        if let failure { throw failure }
        return (events, lines)
    }
}
