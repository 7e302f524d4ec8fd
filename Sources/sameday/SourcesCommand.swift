import ArgumentParser
import Foundation
import Logging
import SameDayCore
import SameDayFormats
import SameDayWorker
import ServiceLifecycle

/// `sameday sources`: the one watcher of the events stream that raises `source_silent` for every unit, whatever
/// the shard count (docs/sources.md; deploy/systemd/sameday-sources.service).
struct SourcesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources",
        abstract: "Read the events stream, track each unit's last event, raise source_silent when a unit goes quiet.",
        discussion: """
            Configuration: the workers' JSON file (see deploy/worker.json and docs/sources.md): brokers, \
            credentialsFile, namePrefix, domainConfig (alerting.json's silence thresholds), clock, prefetch, \
            batchSize, batchDelayMilliseconds, sourcesDirectory (state and alert files; SAMEDAY_SOURCES_DIR), \
            sourcesMetricsListen (SAMEDAY_SOURCES_METRICS_LISTEN). Run one per deployment, and set \
            "sourceSilence": false for the workers so that each silence is reported once. SIGTERM or SIGINT stop it \
            gracefully: it commits the offset consumed and exits.
            """)

    @Option(help: "Worker configuration file (JSON).") var config: String?
    @Option(help: "Override the clock: wall (default) or events (newest occurredAt; for tests and demonstrations).")
    var clock: ClockMode?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        let settings = try serviceSettings(command: "sources", config: config, logLevel: logLevel) { settings in
            if let clock { settings.clock = clock }
        }
        let logger = Logger(label: "sameday.sources")
        let domain: Configuration
        let stateLock: StateLock
        do {
            domain = try ConfigurationFolder.load(settings.domainConfig)
            // The lock first: a second watcher must say so, not "address in use".
            stateLock = try StateLock(sourcesFolder: settings.resolvedSourcesDirectory)
        } catch {
            FileHandle.standardError.write(Data("sameday sources: \(error)\n".utf8))
            throw ExitCode.failure
        }
        defer { stateLock.release() }
        let metrics = WorkerMetrics()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !settings.sourcesMetricsListen.isEmpty {
            do {
                let server = try HealthServer(
                    listen: settings.sourcesMetricsListen, metrics: metrics,
                    logger: Logger(label: "sameday.sources.http"))
                services.append(.stoppingTheGroup(server, name: "metrics"))
            } catch {
                FileHandle.standardError.write(Data("sameday sources: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
        services.append(
            .stoppingTheGroup(
                WorkerRunner(
                    role: .sources, configuration: settings, domain: domain, metrics: metrics, logger: logger,
                    stateLock: stateLock),
                name: "sources"))
        let group = ServiceGroup(configuration: .stoppedBySignals(services, logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("sources failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
