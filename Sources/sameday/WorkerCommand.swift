import ArgumentParser
import Foundation
import Logging
import RabbitMQ
import SameDayCore
import SameDayFormats
import SameDayWorker
import ServiceLifecycle

/// `sameday worker`: the service ops run, one process per shard (see deploy/systemd/).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Consume a shard's events, keep dossier state, fire SLA alerts, write alerts and rollup files.",
        discussion: """
            Configuration: a JSON file (see deploy/worker.json and docs/worker.md); environment variables override \
            it (SAMEDAY_AMQP_URL, SAMEDAY_AMQP_CREDENTIALS_FILE, SAMEDAY_SHARD, SAMEDAY_STATE_DIR, SAMEDAY_CLOCK, …). \
            Credentials are never taken from the command line. SIGTERM or SIGINT stop it gracefully: it stops \
            consuming, commits and acks the batch in hand, writes the final files and exits.
            """)

    @Option(help: "Worker configuration file (JSON).") var config: String?
    @Option(help: "Override the clock: wall (default) or events (newest occurredAt; for backfills).")
    var clock: ClockMode?
    @Option(help: "Override the shard.") var shard: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        let settings = try serviceSettings(command: "worker", config: config, logLevel: logLevel) { settings in
            if let clock { settings.clock = clock }
            if let shard { settings.shard = shard }
        }
        let logger = Logger(label: "sameday.worker")
        let domain: Configuration
        do {
            domain = try ConfigurationFolder.load(settings.domainConfig)
        } catch {
            FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let unconfirmed = domain.unconfirmedRows
        if unconfirmed.units + unconfirmed.catalog > 0 {
            logger.notice(
                "configuration rows without a source",
                metadata: [
                    "units": "\(unconfirmed.units)", "catalog": "\(unconfirmed.catalog)",
                    "config": "\(settings.domainConfig)",
                    "hint": "deploy/config/check-config.py lists them with the reason",
                ])
        }
        // With SQLite, the shard's state lock first: a second worker of the same shard must say so, not "address in
        // use". With PostgreSQL a second worker is a standby: it waits for the shard's lease instead.
        var stateLock: StateLock?
        if settings.store == nil {
            do {
                stateLock = try StateLock(folder: settings.stateDirectory, shard: settings.shard)
            } catch {
                FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
        defer { stateLock?.release() }
        let metrics = WorkerMetrics()
        // One graceful-shutdown path: SIGTERM/SIGINT shut the group down in reverse order, the worker first (it
        // stops consuming, commits and acks the batch in hand, writes the final files), then the HTTP server; the
        // worker ending for any reason, an error included, shuts the group down too.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !settings.metricsListen.isEmpty {
            let server: HealthServer
            do {
                server = try HealthServer(
                    listen: settings.resolvedMetricsListen, metrics: metrics,
                    logger: Logger(label: "sameday.worker.http"))
            } catch {
                FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
                throw ExitCode.failure
            }
            services.append(.stoppingTheGroup(server, name: "metrics"))
        }
        services.append(
            .stoppingTheGroup(
                WorkerRunner(
                    configuration: settings, domain: domain, metrics: metrics, logger: logger, stateLock: stateLock),
                name: "worker"))
        let group = ServiceGroup(configuration: .stoppedBySignals(services, logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("worker failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}

extension ClockMode: ExpressibleByArgument {}

/// What `sameday worker` and `sameday sources` do first: the configuration file, then the environment, then the
/// command line's overrides (`adjust`); then logging to standard error at `logLevel`. A bad configuration stops the
/// command with its reason (the file and the key) and exit status 1.
func serviceSettings(
    command: String, config: String?, logLevel: String, adjust: (inout WorkerConfiguration) -> Void
) throws -> WorkerConfiguration {
    var settings: WorkerConfiguration
    do {
        settings = try WorkerConfiguration.load(path: config, environment: ProcessInfo.processInfo.environment)
        adjust(&settings)
    } catch {
        FileHandle.standardError.write(Data("sameday \(command): \(error)\n".utf8))
        throw ExitCode.failure
    }
    let level = Logger.Level(rawValue: logLevel) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return settings
}
