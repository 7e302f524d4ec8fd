import ArgumentParser
import Foundation
import SameDayCore
import SameDayReport

/// `sameday explain`: one dossier's timeline and how its deadline was computed.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain one dossier: events in applied order, episodes, pauses, deadline, alerts, classification.")

    @Option(help: "Configuration folder.") var config: String
    @Option(help: "Events, one JSON object per line.") var events: String
    @Option(help: "Dossier code.") var dossier: String
    @Option(help: "Run the clock up to this instant (RFC 3339; default: the end of the last event's day).") var until:
        String?

    func run() throws {
        try runReportingFailures {
            let cfg = try CoreFiles.loadConfiguration(config)
            let (all, lines) = try CoreFiles.loadEvents(events)
            let mine = all.indices.filter { all[$0].dossier == dossier }
            guard !mine.isEmpty else { throw CommandFailure("\(events): no events for dossier \"\(dossier)\"") }
            // The dossier's units' whole traffic: the queue forecast (at_risk) judges it by the queue it was in.
            let units = Set(mine.map { all[$0].unit })
            let chosen = all.indices.filter { units.contains(all[$0].unit) }
            let list = chosen.map { all[$0] }
            let untilAt = try until.map { try CoreFiles.parseInstant($0, option: "--until") }
            let replay: Replay
            do {
                replay = try Replay.run(events: list, config: cfg, options: ReplayOptions(until: untilAt))
            } catch let error as ReplayError {
                throw CommandFailure("\(events):\(lines[chosen[error.index]]): \(error.message)")
            }
            // A replay that holds the dossier has applied its events, so its clock is set.
            guard let d = replay.dossier(dossier), let clock = replay.clock else {
                throw CommandFailure("no dossier \(dossier)")
            }
            print(
                Explanation.text(
                    d, config: cfg, alerts: replay.alerts, clock: clock, prediction: replay.prediction(of: dossier)))
        }
    }
}
