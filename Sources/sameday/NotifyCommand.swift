import ArgumentParser
import Foundation
import Logging
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayNotify
import SameDayPostgres
import SameDayStore
import SameDayWorker
import ServiceLifecycle

/// `sameday notify`: alerts to supervisors by e-mail and chat, grouped and held for working hours (docs/notify.md;
/// deploy/systemd/sameday-notify.service), and its failed-deliveries outbox.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Deliver alerts to the people alerting.json names, by e-mail and chat, in grouped messages.",
        subcommands: [NotifyRunCommand.self, NotifyFailedCommand.self],
        defaultSubcommand: NotifyRunCommand.self)
}

/// The options every `notify` command shares: where its settings are.
struct NotifyFiles: ParsableArguments {
    @Option(help: "Worker configuration file (JSON): brokers, namePrefix, domainConfig, clock.") var config: String?
    @Option(help: "Notifier settings (JSON; see deploy/notify.json and docs/notify.md).")
    var notify = "/etc/sameday/notify.json"

    func settings() throws -> NotifySettings {
        do {
            return try NotifySettings.load(path: notify)
        } catch {
            FileHandle.standardError.write(Data("sameday notify: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct NotifyRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the notifier: consume its queue, group alerts per person, send them (the default).",
        discussion: """
            Run one per deployment. It declares its queue (notify.json's queue, sameday.notify) bound to \
            sameday.alerts, records what each person is owed before acking, and sends each digest once by every \
            channel of the person. SIGTERM or SIGINT stop it gracefully. With --clock events the alerts' own time \
            is the clock (demonstrations, benchmarks).
            """)

    @OptionGroup var files: NotifyFiles
    @Option(help: "Override the clock: wall (default) or events (the alerts' firedAt; for demonstrations).")
    var clock: ClockMode?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        let worker = try serviceSettings(command: "notify", config: files.config, logLevel: logLevel) { settings in
            if let clock { settings.clock = clock }
        }
        let settings = try files.settings()
        let logger = Logger(label: "sameday.notify")
        let domain: Configuration
        let stateLock: StateLock?
        do {
            domain = try ConfigurationFolder.load(worker.domainConfig)
            if let store = settings.store {
                // The shared store: the lease, not a local lock, decides which notifier serves.
                _ = try PostgresStoreURL(store)
                stateLock = nil
            } else {
                stateLock = try StateLock(notifyFolder: settings.stateDirectory)
            }
        } catch {
            FileHandle.standardError.write(Data("sameday notify: \(error)\n".utf8))
            throw ExitCode.failure
        }
        defer { stateLock?.release() }
        let metrics = WorkerMetrics()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !settings.metricsListen.isEmpty {
            do {
                let server = try HealthServer(
                    listen: settings.metricsListen, metrics: metrics, logger: Logger(label: "sameday.notify.http"))
                services.append(.stoppingTheGroup(server, name: "metrics"))
            } catch {
                FileHandle.standardError.write(Data("sameday notify: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
        let service = NotifyService(
            configuration: worker, settings: settings, domain: domain, metrics: metrics, logger: logger)
        services.append(.stoppingTheGroup(NotifyRunner(service: service, stateLock: stateLock), name: "notify"))
        let group = ServiceGroup(configuration: .stoppedBySignals(services, logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("notify failed", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("sameday notify: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct NotifyFailedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failed",
        abstract: "The failed-deliveries outbox: messages a channel refused, or that ran out of attempts.",
        subcommands: [List.self, Retry.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List failed messages, oldest first: seq, when, recipient, channel, attempts, last error.")
        @OptionGroup var files: NotifyFiles
        @Option(help: "List at most this many.") var limit = 1000

        func run() throws {
            let store = try NotifyFailedCommand.openStore(files)
            let failed = try store.failedMessages(limit: limit)
            if failed.isEmpty {
                print("no failed messages")
                return
            }
            for m in failed {
                let when = RFC3339.format(m.createdAt)
                let error = Printable.escaped(m.lastError ?? "", limit: 300)
                print(
                    "\(m.seq)\t\(when)\t\(m.recipient)\t\(m.channel)\t\(m.attempts) attempts\t\(m.alertIDs.count) alerts\t\(error)"
                )
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put failed messages back in line (all, or those named by --seq), with their attempts reset.",
            discussion: "The running notifier sends them within a second; it need not be stopped.")
        @OptionGroup var files: NotifyFiles
        @Option(help: "A message's seq (from `failed list`); repeat for several. None: every failed message.")
        var seq: [Int64] = []

        func run() throws {
            let store = try NotifyFailedCommand.openStore(files)
            // The notifier's own clock when it runs on the alerts' time (a demonstration), else the wall clock.
            let now = try store.clock() ?? Instant(Date().timeIntervalSince1970.rounded(.down))
            let count = try store.retryFailed(seqs: seq.isEmpty ? nil : seq, at: now)
            print("\(count) message\(count == 1 ? "" : "s") put back in line")
        }
    }

    /// The notifier's store: SQLite in its state folder, or the shared PostgreSQL store (unfenced: an operator's
    /// retry only puts messages back in line for the notifier that holds the lease).
    static func openStore(_ files: NotifyFiles) throws -> any NotifyStoring {
        let settings = try files.settings()
        if let store = settings.store {
            let worker = try WorkerConfiguration.load(
                path: files.config, environment: ProcessInfo.processInfo.environment)
            return try PostgresNotifyStore(
                url: try PostgresStoreURL(store), passwordFile: settings.storePasswordFile,
                notifier: NotifyQueue.name(topology: SameDayTopology(shards: 1, namePrefix: worker.namePrefix)),
                fencingEpoch: nil)
        }
        guard FileManager.default.fileExists(atPath: settings.databasePath) else {
            FileHandle.standardError.write(
                Data("sameday notify: \(settings.databasePath): no notifier store (has the notifier run?)\n".utf8))
            throw ExitCode.failure
        }
        return try NotifyStore(path: settings.databasePath)
    }
}
