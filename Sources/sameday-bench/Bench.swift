import ArgumentParser

@main
struct SameDayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sameday-bench", subcommands: [CoreBench.self])
}
