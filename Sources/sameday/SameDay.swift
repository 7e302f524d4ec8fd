import ArgumentParser

/// `sameday`: one executable, one subcommand per job (worker, publish, replay, report, …).
@main
struct SameDay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sameday",
        abstract: "Same-day resolution of administrative-procedure dossiers: deadlines, SLA alerts, rollups.",
        subcommands: [
            DeadlineCommand.self, ReplayCommand.self, ReportCommand.self, ExplainCommand.self, SimulateCommand.self,
            TopologyCommand.self, WorkerCommand.self, AlertsCommand.self, DeadLettersCommand.self, PublishCommand.self,
            ReceiveCommand.self,
        ]
    )
}
