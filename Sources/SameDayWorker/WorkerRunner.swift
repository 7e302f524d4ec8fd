import Logging
import RabbitMQ
import SameDayCore
import ServiceLifecycle

/// The worker as a swift-service-lifecycle `Service`: `WorkerService.run(until:stateLock:)` on a thread of its own
/// (rabbitmq-c and SQLite block; they never run on Swift's cooperative pool), stopped through its `StopFlag` when the
/// group shuts down gracefully (SIGTERM, SIGINT, another service ending) or the task is cancelled. A graceful stop
/// commits and acks the batch in hand and writes the final files before `run()` returns; an error of the worker is
/// thrown from `run()`.
///
/// In `sameday worker`'s group it comes after the `HealthServer`, with `.gracefullyShutdownGroup` for both its
/// ends, so the group (and the HTTP server) stops when the worker does, whatever the reason.
///
/// With `role: .sources` it runs `SourcesService` instead (`sameday sources`): the same configuration, lock and
/// stop path; a graceful stop commits the offset and units in hand, acks, and waits (bounded) for the confirms.
public struct WorkerRunner: Service {
    public enum Role: Sendable {
        /// `sameday worker`: one shard's queue.
        case shard
        /// `sameday sources`: the events stream, for `source_silent`.
        case sources
    }

    public let role: Role
    public let configuration: WorkerConfiguration
    public let domain: Configuration
    public let metrics: WorkerMetrics
    let clock: (any WorkerClock)?
    let logger: Logger
    let stateLock: StateLock?
    let stop: StopFlag

    /// - Parameters:
    ///   - stateLock: the shard's state lock if the caller took it already (before opening ports); otherwise the
    ///     worker takes it.
    ///   - clock: nil for the guarded wall clock; tests inject theirs.
    ///   - stop: the flag the runner requests on shutdown; pass one to stop the worker from elsewhere as well.
    public init(
        role: Role = .shard, configuration: WorkerConfiguration, domain: Configuration, metrics: WorkerMetrics,
        logger: Logger = Logger(label: "sameday.worker"), stateLock: StateLock? = nil,
        clock: (any WorkerClock)? = nil, stop: StopFlag = StopFlag()
    ) {
        self.role = role
        self.configuration = configuration
        self.domain = domain
        self.metrics = metrics
        self.logger = logger
        self.stateLock = stateLock
        self.clock = clock
        self.stop = stop
    }

    public func run() async throws {
        let (role, configuration, domain, metrics, logger, stateLock, clock) =
            (role, configuration, domain, metrics, logger, stateLock, clock)
        let name = role == .shard ? "sameday.worker" : "sameday.sources"
        try await runOnOwnThread(name: name, stop: stop, logger: logger) { stop in
            // The service and its connections live on this thread only.
            switch role {
            case .shard:
                try WorkerService(
                    configuration: configuration, domain: domain, metrics: metrics, clock: clock, logger: logger
                ).run(until: stop, stateLock: stateLock)
            case .sources:
                try SourcesService(
                    configuration: configuration, domain: domain, metrics: metrics, clock: clock, logger: logger
                ).run(until: stop, stateLock: stateLock)
            }
        }
    }
}

/// Runs a blocking loop (rabbitmq-c, SQLite, PostgreSQL through blocking calls) on a thread of its own, never on
/// Swift's cooperative pool, and requests its `StopFlag` when the service group shuts down gracefully or the task is
/// cancelled; the loop's error is thrown from here.
func runOnOwnThread(
    name: String, stop: StopFlag, logger: Logger, _ body: @escaping @Sendable (StopFlag) throws -> Void
) async throws {
    try await withTaskCancellationOrGracefulShutdownHandler {
        try await BlockingThread.run(name: name) { try body(stop) }
    } onCancelOrGracefulShutdown: {
        if !stop.isRequested { logger.info("stop requested") }
        stop.request()
    }
}
