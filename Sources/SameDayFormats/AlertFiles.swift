import Foundation
import SameDayCore

/// The layout of a worker's alert files: `alerts-YYYY-MM-DD.jsonl` in its alerts folder, one alert per line, by the
/// day the alert fired. The worker appends through it; the report page and `sameday report --alerts` read through it.
public enum AlertFiles {
    /// The file of one day (`day` as `YYYY-MM-DD`) in `folder`.
    public static func path(folder: String, day: String) -> String {
        (folder as NSString).appendingPathComponent("alerts-\(day).jsonl")
    }

    /// The day an alert file covers, from its name; nil for any other file.
    public static func day(ofFileNamed name: String) -> LocalDate? {
        guard name.hasPrefix("alerts-"), name.hasSuffix(".jsonl") else { return nil }
        return LocalDate(name.dropFirst("alerts-".count).dropLast(".jsonl".count))
    }
}
