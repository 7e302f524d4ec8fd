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
            resume; a finished run removes it; a checkpoint of an earlier version of the file is set aside \
            (<input>.checkpoint.stale-<time>) and the file is published from the start.
            Records are refused (rejects file) when their time is outside the plausible window (--earliest-event, \
            --max-ahead-hours, --reschedule-within-days) or their dossier code is not their unit's.
            Exit status: 0 all records published or skipped; 2 some records rejected; 1 the run failed, including \
            a usage error (a missing --config …).
            The broker URL (with credentials) comes from --url-file or SAMEDAY_AMQP_URL, never from the command line.
            """)

    @Option(help: "Mapping profile (JSON).") var profile: String?
    @Option(help: "Configuration folder (units registry).") var config: String?
    @Flag(help: "Map and validate only: publish nothing, write no checkpoint; rejects are printed.") var dryRun = false
    @Option(help: "Print the first N canonical events with their routing keys (with --dry-run: see before publishing).")
    var show: Int?
    @Option(help: "Rejects file (default: <input>.rejects.jsonl).") var rejects: String?
    @Option(help: "Spool folder.") var spool = ".sameday-spool"
    @Option(help: "Spool size bound in bytes.") var spoolCapacity: Int64 = Spool.defaultCapacity
    @Option(help: "File holding the broker URL (amqp://user:password@host:port/vhost), mode 0600.") var urlFile: String?
    @Flag(help: "Print the spool's state and exit.") var status = false
    @Flag(help: "Only send what the spool holds, then exit.") var flush = false
    @Option(
        help: ArgumentHelp(
            "Publish nothing: print the last N events that reached the broker (the events stream), then exit.",
            discussion: "Needs a broker user that may read the stream (an operator's; an adapter's may only write)."))
    var tail: Int?
    @Option(help: "With --tail: how far back to read the stream (15m, 1h, 2D …, or first).") var since = "1h"
    @Option(help: "With --tail: only these units' events (repeat for several).") var unit: [String] = []
    @Option(help: "Refuse events that occurred before this date (YYYY-MM-DD, UTC+07:00).") var earliestEvent =
        "2000-01-01"
    @Option(help: "Refuse events that occurred more than this many hours after now.") var maxAheadHours = 24
    @Option(help: "Refuse a rescheduled event whose new due date is more than this many days from it.")
    var rescheduleWithinDays = 366
    @Argument(help: "Export files (CSV or JSON lines, as the profile says).") var inputs: [String] = []

    /// Usage errors exit with status 1 like every other failure (docs/adapters.md, "Exit status").
    func validate() throws {
        if status { return }
        if let tail {
            guard tail > 0 else { throw usageError("publish", "--tail takes a number of events ≥ 1") }
            guard EventsTail.isValidSince(since) else {
                throw usageError("publish", "--since \"\(since)\": expected an age such as 15m, 1h, 2D, or first")
            }
            return
        }
        guard config != nil else { throw usageError("publish", "--config DIR is required (the configuration folder)") }
        if flush { return }
        guard profile != nil else { throw usageError("publish", "--profile FILE is required (the mapping profile)") }
        guard !inputs.isEmpty else { throw usageError("publish", "give at least one export file to publish") }
        if let show, show < 0 { throw usageError("publish", "--show takes a number of events ≥ 0") }
        _ = try eventBounds()
    }

    func eventBounds() throws -> EventTimeBounds {
        guard let day = LocalDate(earliestEvent) else {
            throw usageError("publish", "--earliest-event \"\(earliestEvent)\": not a YYYY-MM-DD date")
        }
        guard maxAheadHours >= 0, rescheduleWithinDays >= 0 else {
            throw usageError("publish", "--max-ahead-hours and --reschedule-within-days take numbers ≥ 0")
        }
        return EventTimeBounds(
            earliest: day.startInstant, maxAheadSeconds: Int64(maxAheadHours) * 3600,
            rescheduleWithinSeconds: Int64(rescheduleWithinDays) * 86_400)
    }

    func run() async throws {
        if status {
            do {
                let (status, holder) = try Spool.inspect(directory: self.spool, capacityBytes: spoolCapacity)
                print(status.description + (holder.map { "; in use by \($0)" } ?? ""))
            } catch {
                printError("sameday publish --status: \(error)")
                throw ExitCode.failure
            }
            return
        }
        if let tail {
            let connection = try brokerConfiguration().connection
            let (since, units) = (self.since, unit.isEmpty ? nil : Set(unit))
            do {
                let events = try await BlockingThread.run(name: "sameday.publish.tail") {
                    try EventsTail.read(
                        connection: connection, names: SameDayProducerNames(), since: since, units: units,
                        count: tail)
                }
                for event in events { print("\(event.routingKey) \(event.body)") }
                printError("sameday publish --tail: \(events.count) events on the broker since \(since)")
            } catch {
                printError("sameday publish --tail: \(error)")
                throw ExitCode.failure
            }
            return
        }
        let configuration = try loadConfiguration()
        let profile = try loadProfile()
        let connection = try brokerConfiguration()
        let (spoolDir, capacity, inputs, rejects, dryRun, flush) = (
            self.spool, spoolCapacity, self.inputs, self.rejects, self.dryRun, self.flush
        )
        let (bounds, show) = (try eventBounds(), self.show ?? 0)
        let interactive = isatty(STDERR_FILENO) == 1
        let anyRejected: Bool
        do {
            anyRejected = try await publish(
                configuration: configuration, profile: profile, connection: connection, spoolDir: spoolDir,
                capacity: capacity, inputs: inputs, rejects: rejects, dryRun: dryRun, flush: flush,
                interactive: interactive, bounds: bounds, show: show)
        } catch {
            printError("sameday: \(error)")
            throw ExitCode.failure
        }
        if anyRejected { throw ExitCode(2) }
    }

    private func publish(
        configuration: Configuration, profile: MappingProfile?, connection: PublisherConfiguration, spoolDir: String,
        capacity: Int64, inputs: [String], rejects: String?, dryRun: Bool, flush: Bool, interactive: Bool,
        bounds: EventTimeBounds, show: Int
    ) async throws -> Bool {
        try await BlockingThread.run(name: "sameday.publish") { () throws -> Bool in
            let names = SameDayProducerNames()
            var sink: DurablePublisher?
            if !dryRun {
                let spool = try Spool(directory: spoolDir, capacityBytes: capacity)
                sink = DurablePublisher(
                    publisher: connection, spool: spool, configuration: configuration, names: names)
                let flushed = try sink!.flushSpool()
                if flushed > 0 || flush { printError("spool: \(flushed) events sent; \(spool.status)") }
            }
            defer { sink?.close() }
            if flush { return false }
            var rejected = false
            var shown = 0
            for input in inputs {
                let publisher = FilePublisher(profile: profile!, configuration: configuration, sink: sink)
                publisher.eventBounds = bounds
                publisher.rejectsPath = dryRun ? nil : (rejects ?? input + ".rejects.jsonl")
                publisher.onNotice = { printError("sameday: \($0)") }
                if show > 0 {
                    // One line per event: where it comes from, its routing key, and the canonical event itself.
                    publisher.onEvent = { line, event, message in
                        guard shown < show else { return }
                        shown += 1
                        print("\(input):\(line) → \(message.routingKey) \(event.encoded())")
                    }
                }
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
        var url = ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? BrokerOptions.localBroker
        if let urlFile {
            do {
                url = try BrokerOptions.readURLFile(urlFile)
            } catch {
                printError("sameday: --url-file: \(error)")
                throw ExitCode.failure
            }
        }
        var connection = try ConnectionConfiguration(urls: [url], connectionName: "sameday publish")
        connection.reconnect = Backoff.Policy(
            initialDelay: .milliseconds(200), maximumDelay: .seconds(2), maximumAttempts: 4)
        return PublisherConfiguration(connection: connection, blockedTimeout: .seconds(10))
    }
}

/// A usage error: the message and where to find help on standard error, exit status 1 (the README's policy for
/// every failure; ArgumentParser's own would be 64).
func usageError(_ command: String, _ message: String) -> ExitCode {
    printError("sameday \(command): \(message)\n(see: sameday \(command) --help)")
    return ExitCode.failure
}

func printError(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}
