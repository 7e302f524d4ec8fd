import ArgumentParser

/// `sameday-bench`: the performance goals, as numbers (one JSON line per subcommand). Run in release mode.
@main
struct SameDayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sameday-bench",
        subcommands: [
            AMQPBench.self, CoreBench.self, PipelineBench.self, RestartBench.self, AdapterBench.self, SoakBench.self,
            FailoverBench.self,
        ])
}
