import ArgumentParser
import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday publish`: a unit system's export files → canonical events on the broker (docs/adapters.md).
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish a unit system's CSV or JSON-lines export as canonical events, with a mapping profile.",
        discussion: """
            Every valid record becomes one event, confirmed by the broker or, when the broker is unreachable or \
            blocked, written to the durable spool (sent first on the next run). Invalid records go to the rejects \
            file (JSON lines: file, line, reason, record). A checkpoint (<input>.checkpoint) lets a crashed run \
            resume; a finished run removes it.
            Exit status: 0 all records published or skipped; 2 some records rejected; 1 the run failed.
            The broker URL (with credentials) comes from --url-file or SAMEDAY_AMQP_URL, never from the command line.
            """)

    @Option(help: "Mapping profile (JSON).") var profile: String?
    @Option(help: "Configuration folder (units registry).") var config: String?
    @Flag(help: "Map and validate only: publish nothing, write no checkpoint; rejects are printed.") var dryRun = false
    @Option(help: "Rejects file (default: <input>.rejects.jsonl).") var rejects: String?
    @Option(help: "Spool folder.") var spool = ".sameday-spool"
    @Option(help: "Spool size bound in bytes.") var spoolCapacity: Int64 = Spool.defaultCapacity
    @Option(help: "File holding the broker URL (amqp://user:password@host:port/vhost).") var urlFile: String?
    @Flag(help: "Print the spool's state and exit.") var status = false
    @Flag(help: "Only send what the spool holds, then exit.") var flush = false
    @Argument(help: "Export files (CSV or JSON lines, as the profile says).") var inputs: [String] = []

    func validate() throws {
        if status { return }
        guard config != nil else { throw ValidationError("--config is required") }
        if flush { return }
        guard profile != nil else { throw ValidationError("--profile is required") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one input file") }
    }

    func run() async throws {
        if status {
            let spool = try Spool(directory: self.spool, capacityBytes: spoolCapacity)
            print(spool.status.description)
            return
        }
        let configuration = try loadConfiguration()
        let profile = try loadProfile()
        let connection = try brokerConfiguration()
        let (spoolDir, capacity, inputs, rejects, dryRun, flush) = (
            self.spool, spoolCapacity, self.inputs, self.rejects, self.dryRun, self.flush
        )
        let interactive = isatty(STDERR_FILENO) == 1
        let anyRejected: Bool
        do {
            anyRejected = try await publish(
                configuration: configuration, profile: profile, connection: connection, spoolDir: spoolDir,
                capacity: capacity, inputs: inputs, rejects: rejects, dryRun: dryRun, flush: flush,
                interactive: interactive)
        } catch {
            printError("sameday: \(error)")
            throw ExitCode.failure
        }
        if anyRejected { throw ExitCode(2) }
    }

    private func publish(
        configuration: Configuration, profile: MappingProfile?, connection: PublisherConfiguration, spoolDir: String,
        capacity: Int64, inputs: [String], rejects: String?, dryRun: Bool, flush: Bool, interactive: Bool
    ) async throws -> Bool {
        try await BlockingThread.run(name: "sameday.publish") { () throws -> Bool in
            let topology = SameDayTopology(shards: 4)
            var sink: DurablePublisher?
            if !dryRun {
                let spool = try Spool(directory: spoolDir, capacityBytes: capacity)
                sink = DurablePublisher(
                    publisher: connection, spool: spool, configuration: configuration, topology: topology)
                let flushed = try sink!.flushSpool()
                if flushed > 0 || flush { printError("spool: \(flushed) events sent; \(spool.status)") }
            }
            defer { sink?.close() }
            if flush { return false }
            var rejected = false
            for input in inputs {
                let publisher = FilePublisher(profile: profile!, configuration: configuration, sink: sink)
                publisher.rejectsPath = dryRun ? nil : (rejects ?? input + ".rejects.jsonl")
                if interactive {
                    publisher.onProgress = { p in
                        let percent = p.fileSize > 0 ? Double(p.bytesRead) * 100 / Double(p.fileSize) : 100
                        printError(
                            "\r\(input): \(String(format: "%5.1f", percent)) %  \(p.records) records, \(p.rejected) rejected",
                            newline: false)
                    }
                }
                if dryRun { publisher.onRejected = { line, reason in printError("\(input):\(line): \(reason)") } }
                let summary = try publisher.run(input: input)
                if interactive { printError("") }
                print(
                    dryRun
                        ? "dry run: " + summary.description.replacingOccurrences(of: "published", with: "valid")
                        : summary.description)
                if summary.rejected > 0 {
                    rejected = true
                    if let path = publisher.rejectsPath { print("rejects: \(path)") }
                }
                if let sink, sink.isSpooling { print(sink.spool.status.description) }
            }
            return rejected
        }
    }

    private func loadConfiguration() throws -> Configuration {
        do { return try CoreFiles.loadConfiguration(config!) } catch {
            printError("sameday: \(error)")
            throw ExitCode.failure
        }
    }

    private func loadProfile() throws -> MappingProfile? {
        guard let profile else { return nil }
        do { return try MappingProfile.load(path: profile) } catch {
            printError("sameday: \(error)")
            throw ExitCode.failure
        }
    }

    /// Adapters retry a lost broker briefly, then spool: a scheduled run should not hang for minutes.
    private func brokerConfiguration() throws -> PublisherConfiguration {
        var url = ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? "amqp://127.0.0.1:5672/%2F"
        if let urlFile {
            guard let text = try? String(contentsOfFile: urlFile, encoding: .utf8) else {
                printError("sameday: --url-file \(urlFile): cannot read")
                throw ExitCode.failure
            }
            url = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var connection = try ConnectionConfiguration(urls: [url], connectionName: "sameday publish")
        connection.reconnect = Backoff.Policy(
            initialDelay: .milliseconds(200), maximumDelay: .seconds(2), maximumAttempts: 4)
        return PublisherConfiguration(connection: connection, blockedTimeout: .seconds(10))
    }
}

func printError(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}
