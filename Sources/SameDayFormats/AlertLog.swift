import Foundation
import SameDayCore

/// One line of a worker's alert file (`alerts-YYYY-MM-DD.jsonl`, written by the worker's alert sink); only the
/// fields the report shows.
public struct ReportAlert: Sendable, Hashable, Decodable {
    public var alertId: String
    public var level: String
    /// Empty for `source_silent`.
    public var dossier: String
    public var unit: String
    public var block: String
    public var procedure: String
    public var episode: Int?
    /// The deadline in force when the alert fired (absent for `source_silent`).
    public var due: String?
    public var firedAt: String
    public var minutesLeft: Int?
    /// Fired late by a worker that was down at the threshold.
    public var lateFired: Bool?

    public init(
        alertId: String, level: String, dossier: String, unit: String, block: String, procedure: String,
        episode: Int? = 1, due: String?, firedAt: String, minutesLeft: Int?, lateFired: Bool? = false
    ) {
        self.alertId = alertId
        self.level = level
        self.dossier = dossier
        self.unit = unit
        self.block = block
        self.procedure = procedure
        self.episode = episode
        self.due = due
        self.firedAt = firedAt
        self.minutesLeft = minutesLeft
        self.lateFired = lateFired
    }

    public var firedInstant: Instant? { RFC3339.parse(firedAt) }
    public var dueInstant: Instant? { due.flatMap(RFC3339.parse) }
}

/// A failure to read an alert file, naming the file and line.
public struct AlertLogError: Error, CustomStringConvertible {
    public var description: String
}

/// The alerts files of one or more workers, as the report reads them.
public enum AlertLog {
    /// Parses one JSON-lines alert file; a malformed line fails with the file and line number. A last line without
    /// its newline (a worker killed mid-write cuts it on restart) is skipped, as the worker itself does.
    public static func parse(_ bytes: [UInt8], path: String) throws(AlertLogError) -> [ReportAlert] {
        let decoder = JSONDecoder()
        var alerts: [ReportAlert] = []
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (n, line) in lines.enumerated() {
            let isLast = n == lines.count - 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            do {
                alerts.append(try decoder.decode(ReportAlert.self, from: Data(line)))
            } catch {
                if isLast { continue }
                throw AlertLogError(description: "\(path):\(n + 1): not an alert line (\(error))")
            }
        }
        return alerts
    }

}
