import ArgumentParser
import Foundation
import SameDayCore
import SameDayFiles
import SameDayWorker

/// `sameday simulate`: a deterministic synthetic events file.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Generate a realistic, deterministic events file (JSON lines) for the units of a configuration.")

    @Option(help: "Configuration folder.") var config: String
    @Option(help: "Number of days.") var days: Int = 31
    @Option(help: "First day, YYYY-MM-DD.") var from: String = "2022-05-15"
    @Option(help: "Average dossiers per unit and working day.") var perUnit: Int = 5
    @Option(help: "PRNG seed.") var seed: UInt64 = 2022
    @Option(help: "Output file.") var out: String

    func run() throws {
        try runReportingFailures {
            guard days >= 1, days <= 3660 else { throw CommandFailure("--days must be 1…3660") }
            guard perUnit >= 0 else { throw CommandFailure("--per-unit must be ≥ 0") }
            let cfg = try CoreFiles.loadConfiguration(config)
            let first = try CoreFiles.parseDate(from, option: "--from")
            let events = SyntheticMonth(firstDay: first, days: days, dossiersPerUnitPerDay: perUnit, seed: seed).events(
                config: cfg)
            var bytes: [UInt8] = []
            for e in events { bytes += Array((e.encoded() + "\n").utf8) }
            try DurableFile.createFolder(of: out)
            try DurableFile.writeAtomically(bytes, to: out)
            print("wrote \(events.count) events to \(out)")
        }
    }
}
