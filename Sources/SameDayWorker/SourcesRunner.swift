import Logging
import RabbitMQ
import SameDayCore
import ServiceLifecycle

/// `sameday sources` as a swift-service-lifecycle `Service`, like `WorkerRunner`: `SourcesService.run` on a thread
/// of its own (rabbitmq-c and SQLite block), stopped through its `StopFlag` on graceful shutdown or cancellation.
/// A graceful stop commits the offset and units in hand, acks, and waits (bounded) for the alerts' confirms.
public struct SourcesRunner: Service {
    public let configuration: WorkerConfiguration
    public let domain: Configuration
    public let metrics: WorkerMetrics
    let clock: (any WorkerClock)?
    let logger: Logger
    let stateLock: StateLock?
    let stop: StopFlag

    public init(
        configuration: WorkerConfiguration, domain: Configuration, metrics: WorkerMetrics,
        logger: Logger = Logger(label: "sameday.sources"), stateLock: StateLock? = nil,
        clock: (any WorkerClock)? = nil, stop: StopFlag = StopFlag()
    ) {
        self.configuration = configuration
        self.domain = domain
        self.metrics = metrics
        self.logger = logger
        self.stateLock = stateLock
        self.clock = clock
        self.stop = stop
    }

    public func run() async throws {
        let (configuration, domain, metrics, logger, stateLock, clock) =
            (configuration, domain, metrics, logger, stateLock, clock)
        try await runOnOwnThread(name: "sameday.sources", stop: stop, logger: logger) { stop in
            let service = SourcesService(
                configuration: configuration, domain: domain, metrics: metrics, clock: clock, logger: logger)
            try service.run(until: stop, stateLock: stateLock)
        }
    }
}
