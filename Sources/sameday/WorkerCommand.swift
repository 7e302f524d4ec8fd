import ArgumentParser
import Dispatch
import Foundation
import Logging
import RabbitMQ
import SameDayCore
import SameDayWorker

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
        var settings: WorkerConfiguration
        do {
            settings = try WorkerConfiguration.load(path: config, environment: ProcessInfo.processInfo.environment)
            if let clock { settings.clock = clock }
            if let shard { settings.shard = shard }
        } catch {
            FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sameday.worker")
        let domain: Configuration
        do {
            domain = try ConfigurationFolder.load(settings.domainConfig)
        } catch {
            FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
            throw ExitCode.failure
        }
        // The shard's state lock first: a second worker of the same shard must say so, not "address in use".
        let stateLock: StateLock
        do {
            stateLock = try StateLock(folder: settings.stateDirectory, shard: settings.shard)
        } catch {
            FileHandle.standardError.write(Data("sameday worker: \(error)\n".utf8))
            throw ExitCode.failure
        }
        defer { stateLock.release() }
        let metrics = WorkerMetrics()
        let endpoint =
            try settings.metricsListen.isEmpty
            ? nil : MetricsEndpoint(listen: settings.resolvedMetricsListen, metrics: metrics)
        if let endpoint {
            logger.info("metrics on http://\(settings.resolvedMetricsListen)/metrics (port \(endpoint.port))")
        }

        let stop = StopFlag()
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.info("stop requested (signal \(number))")
                stop.request()
            }
            source.resume()
            return source
        }
        defer {
            signals.forEach { $0.cancel() }
            endpoint?.close()
        }
        let finalSettings = settings
        do {
            try await BlockingThread.run(name: "sameday.worker") {
                // The service and its connections live on this thread only.
                let service = WorkerService(
                    configuration: finalSettings, domain: domain, metrics: metrics, logger: logger)
                try service.run(until: stop, stateLock: stateLock)
            }
        } catch {
            logger.error("worker failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}

extension ClockMode: ExpressibleByArgument {}
