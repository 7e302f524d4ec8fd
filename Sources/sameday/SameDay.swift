import ArgumentParser
import Foundation

/// `sameday`: one executable, one subcommand per job (worker, publish, replay, report, …).
@main
struct SameDay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sameday",
        abstract: "Same-day resolution of administrative-procedure dossiers: deadlines, SLA alerts, rollups.",
        discussion: """
            Exit status: 0 on success, 1 on any failure — bad input, a refused configuration, and usage errors \
            (an unknown option, a missing one) alike; the message on standard error names the file, line, field \
            or option.
            """,
        subcommands: [
            DeadlineCommand.self, ReplayCommand.self, ReportCommand.self, ExplainCommand.self, SimulateCommand.self,
            TopologyCommand.self, WorkerCommand.self, SourcesCommand.self, NotifyCommand.self, BoardCommand.self,
            AlertsCommand.self,
            DeadLettersCommand.self,
            PublishCommand.self,
            ReceiveCommand.self,
        ]
    )

    /// One exit-status policy for every command: ArgumentParser's own usage errors would exit 64 (EX_USAGE); a
    /// unit's scheduled export and ops' scripts see 1 for every failure, as the README says.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Foundation.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 1 : code.rawValue)
        }
    }
}
