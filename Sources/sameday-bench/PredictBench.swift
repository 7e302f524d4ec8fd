import ArgumentParser
import Foundation
import SameDayCore
import SameDayFormats

/// `sameday-bench predict`: the queue forecast (`at_risk`) against the fixed-threshold baseline (`warning`), in one
/// replay of the same events. By default the congested month (`CongestedMonth`, `--scale` of the units); with
/// `--events FILE` any events file, where which dossiers ended late is read from the events themselves. One JSON line
/// with an object per level: `recall`, `precision`, `median_lead_minutes`, `false_per_1000`. The goal (docs/rules.md
/// §5.6): `at_risk` recall ≥ 0.9 with precision ≥ 0.7, and a median lead at least 60 working minutes longer than
/// `warning`'s.
struct PredictBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Score at_risk against warning over a congested month or an events file (one JSON line).")

    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "An events file (JSON lines) to evaluate instead of the congested month.") var events: String?
    @Option(help: "Congested month: share of the units taking part.") var scale = 0.2
    @Option(help: "Congested month: PRNG seed.") var seed: UInt64 = 2022
    @Option(help: "The forecast's confidence (default: the shipped setting).") var confidence: Double?

    func run() throws {
        let domain = try ConfigurationFolder.load(config)
        let started = ContinuousClock.now
        let input: [DossierEvent]
        if let events {
            do {
                input = try EventsFile.load(events).events
            } catch {
                throw ValidationError(error.description)
            }
        } else {
            input = try CongestedMonth(scale: scale, seed: seed).events(config: domain)
        }
        var settings = QueueForecast.Settings()
        if let confidence { settings.confidence = confidence }
        let cpu = processCPUSeconds()
        var replay = try Replay.run(events: input, config: domain, options: ReplayOptions(forecast: settings))
        let replaySeconds = processCPUSeconds() - cpu
        let alerts = replay.takeAlerts()
        let atRisk = ForecastScore.score(.atRisk, replay: replay, alerts: alerts)
        let warning = ForecastScore.score(.warning, replay: replay, alerts: alerts)
        func object(_ s: ForecastScore) -> [String: Any] {
            [
                "recall": (s.recall * 1000).rounded() / 1000, "precision": (s.precision * 1000).rounded() / 1000,
                "median_lead_minutes": s.medianLeadMinutes, "false_per_1000": (s.falsePer1000 * 10).rounded() / 10,
                "flagged_late": s.flaggedLate, "flagged_on_time": s.flaggedOnTime, "missed": s.missed,
            ]
        }
        let goal =
            atRisk.recall >= 0.9 && atRisk.precision >= 0.7
            && atRisk.medianLeadMinutes >= warning.medianLeadMinutes + 60
        var line: [String: Any] = ["bench": "predict", "input": events ?? "congested"]
        line["scale"] = events == nil ? scale : 1.0
        line["events"] = input.count
        line["same_day_dossiers"] = atRisk.dossiers
        line["ended_late"] = atRisk.late
        line["confidence"] = settings.confidence
        line["at_risk"] = object(atRisk)
        line["warning"] = object(warning)
        line["lead_gain_minutes"] = atRisk.medianLeadMinutes - warning.medianLeadMinutes
        line["replay_cpu_seconds"] = (replaySeconds * 100).rounded() / 100
        line["goal_met"] = goal
        line["seconds"] = Int((ContinuousClock.now - started) / .seconds(1))
        print(try jsonLine(line))
    }
}
