import ArgumentParser
import Foundation
import SameDayCore
import SameDayFiles
import SameDayFormats

/// `sameday replay`: the core over an events file on a virtual clock.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay an events file on a virtual clock: alerts as the wall clock would fire them, daily rollups.",
        discussion: """
            Events are taken in occurredAt order (ties: seq, then file order) as if each arrived when it occurred; the \
            clock then runs to --until (default: the end of the last event's day). With --arrival-order the file \
            order is the arrival order and the clock never goes back. Writes OUT/alerts.jsonl and \
            OUT/rollups/daily/YYYY-MM-DD/{units,blocks}.{csv,json} for every day from the first event to --until, \
            each file atomically. A bad event line stops the replay before anything is written.
            """)

    @Option(help: "Configuration folder.") var config: String
    @Option(help: "Events, one JSON object per line (sameday.dossier-event/1).") var events: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Run the clock up to this instant (RFC 3339).") var until: String?
    @Flag(help: "Take events in file order (arrival order) instead of occurredAt order.") var arrivalOrder = false
    @Flag(help: "Also raise source_silent alerts for units that go quiet.") var sourceSilence = false

    func run() throws {
        try runReportingFailures {
            let cfg = try CoreFiles.loadConfiguration(config)
            let untilAt = try until.map { try CoreFiles.parseInstant($0, option: "--until") }
            let (list, lines) = try CoreFiles.loadEvents(events)
            guard !list.isEmpty else { throw CommandFailure("\(events): no events") }
            let replay: Replay
            do {
                replay = try Replay.run(
                    events: list, config: cfg,
                    options: ReplayOptions(arrivalOrder: arrivalOrder, until: untilAt, detectSilence: sourceSilence))
            } catch let error as ReplayError {
                throw CommandFailure("\(events):\(lines[error.index]): \(error.message)")
            }
            var alerts: [UInt8] = []
            for a in replay.alerts { alerts += Array((a.jsonLine() + "\n").utf8) }
            let facts = replay.facts()
            let firstDay = LocalTime.day(of: list.map(\.occurredAt).min()!)
            let lastEventAt = list.map(\.occurredAt).max()!
            let lastDay = LocalTime.day(of: max(replay.clock ?? lastEventAt, lastEventAt))
            try DurableFile.createFolder(of: (out as NSString).appendingPathComponent("alerts.jsonl"))
            try DurableFile.writeAtomically(alerts, to: (out as NSString).appendingPathComponent("alerts.jsonl"))
            var written: [String: Int] = [:]
            _ = try RollupFiles.write(
                facts: facts, days: firstDay...lastDay, configuration: cfg,
                root: (out as NSString).appendingPathComponent("rollups"), written: &written)
            let simulated = try RollupFiles.markSimulated(
                root: (out as NSString).appendingPathComponent("rollups"), ifAnyOf: list)
            let lateFired = replay.alerts.filter(\.lateFired).count
            print(
                "replayed \(list.count) events, \(replay.dossiers.count) dossiers: \(replay.alerts.count) alerts "
                    + "(\(lateFired) late-fired), rollups for \(lastDay - firstDay + 1) days in \(out)"
                    + (simulated ? " (\(SimulatedData.label): events from sameday simulate)" : ""))
        }
    }
}
