import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayPostgres
import SameDayStore
import Synchronization

/// Set from a signal handler (SIGTERM, SIGINT) or a test; the worker loop checks it between waits.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func request() { flag.store(true, ordering: .relaxed) }
    public var isRequested: Bool { flag.load(ordering: .relaxed) }
}

/// `sameday worker`: consumes one shard queue, applies events to dossiers, commits each batch to SQLite before
/// acking it (group commit), fires SLA alerts on its clock, delivers the alert outbox to the broker and to daily
/// files, and keeps the rollup files current. Runs on the calling thread until `stop` is requested.
///
/// Three threads share the work: this one owns the consumer connection (decode, apply, ack: nothing on it waits
/// long, so its heartbeats never lapse); the commit thread writes group commits and retention slices; the rollups
/// thread renders and writes the files of the days that changed. The publisher has a fourth, with its own
/// connection.
public final class WorkerService {
    public let configuration: WorkerConfiguration
    public let domain: Configuration
    public let metrics: WorkerMetrics
    private let clock: any WorkerClock
    private let logger: Logger
    private let topology: SameDayTopology

    /// - Parameter clock: nil for the wall clock guarded against jumps (`maxClockJumpSeconds`); tests inject theirs.
    public init(
        configuration: WorkerConfiguration, domain: Configuration, metrics: WorkerMetrics = WorkerMetrics(),
        clock: (any WorkerClock)? = nil, logger: Logger = Logger(label: "sameday.worker")
    ) {
        self.configuration = configuration
        self.domain = domain
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "shard"] = "\(configuration.shard)"
        self.logger = logger
        self.clock =
            clock
            ?? GuardedWallClock.forService(
                "the worker", maxJumpSeconds: configuration.maxClockJumpSeconds, metrics: metrics, logger: logger)
        self.topology = SameDayTopology(shards: configuration.shard + 1, namePrefix: configuration.namePrefix)
    }

    public var queue: String { topology.workQueue(configuration.shard) }

    /// - Parameter stateLock: the shard's state lock if the caller took it already (before opening ports);
    ///   otherwise `run` takes it. Unused with the PostgreSQL store, where the shard's lease takes its place.
    public func run(until stop: StopFlag, stateLock: StateLock? = nil) throws {
        metrics.setReady(false, reason: "loading state")
        if let url = try configuration.postgresStore {
            try runHoldingLease(url: url, until: stop)
            return
        }
        let lock = try stateLock ?? StateLock(folder: configuration.stateDirectory, shard: configuration.shard)
        defer { if stateLock == nil { lock.release() } }
        try serve(store: try WorkerStore(path: configuration.databasePath), lease: nil, until: stop)
    }

    /// With the shared store: waits as a standby (consuming nothing, firing nothing) until the shard's lease is
    /// free, takes it, then serves the shard with commits fenced by the lease's epoch. A graceful stop gives the
    /// lease back so that a standby takes over at its next poll.
    private func runHoldingLease(url: PostgresStoreURL, until stop: StopFlag) throws {
        let holder = "\(ProcessInfo.processInfo.hostName) pid \(getpid())"
        let lease = try ShardLease(
            url: url, passwordFile: configuration.storePasswordFile, shard: queue, holder: holder,
            ttl: .seconds(configuration.leaseSeconds), logger: logger)
        defer { lease.release() }
        guard
            let epoch = try awaitLease(
                lease, of: queue, otherHolder: "another worker", message: "standby: waiting for the shard's lease",
                until: stop, metrics: metrics, logger: logger)
        else { return }
        let takenAt = ContinuousClock.now
        metrics.set(.leaseHeld, 1)
        metrics.increment(.leaseTakeoversTotal)
        logger.info("lease taken: serving the shard", metadata: ["epoch": "\(epoch)", "store": "\(url)"])
        let store = try PostgresShardStore(
            url: url, passwordFile: configuration.storePasswordFile, shard: queue, fencingEpoch: epoch, logger: logger)
        defer { metrics.set(.leaseHeld, 0) }
        try serve(store: store, lease: (lease, epoch, takenAt), until: stop)
    }

    private func serve(
        store: any ShardStore, lease: (lease: ShardLease, epoch: Int64, takenAt: ContinuousClock.Instant)?,
        until stop: StopFlag
    ) throws {
        let connection = try configuration.connection(name: "sameday worker shard \(configuration.shard)")
        var publisherConnection = connection
        publisherConnection.connectionName += " publisher"
        // With a lease, outputs stop the moment it is lost (on this process's clock: a worker resumed after a
        // freeze writes no alert line, rollup file or message that the new holder writes too).
        let mayWrite: @Sendable () -> Bool = { lease?.lease.lostReason == nil }
        let publisher = OutboxPublisher(
            connection: publisherConnection, topology: topology, metrics: metrics, logger: logger,
            mayPublish: mayWrite)
        defer { publisher.finish(timeout: .seconds(1)) }
        let shard = try ShardLoop(
            configuration: configuration, domain: domain, store: store, clock: clock, metrics: metrics, logger: logger,
            publisher: publisher, queue: queue, mayWrite: mayWrite)
        defer { shard.close() }
        var consumerConnection = connection
        consumerConnection.connectionName += " consumer"
        let participant = ShardConsumer(
            shard: shard,
            consumer: ConsumerConfiguration(
                connection: consumerConnection, queue: queue, prefetch: UInt16(configuration.prefetch)),
            lease: lease, metrics: metrics, logger: logger)
        try runConsumeLoop(participant, until: stop, metrics: metrics, logger: logger)
    }
}

/// Waits as a standby until `lease` is taken (its fencing epoch) or `stop` is requested (nil): not ready, naming the
/// holder, said once in the log. Shared by a shard's worker and the notifier.
func awaitLease(
    _ lease: ShardLease, of name: String, otherHolder: String, message: Logger.Message, until stop: StopFlag,
    metrics: WorkerMetrics, logger: Logger
) throws -> Int64? {
    metrics.set(.leaseHeld, 0)
    var announced = false
    while !stop.isRequested {
        if let taken = try lease.tryAcquire() { return taken }
        let current = try? lease.currentHolder()
        metrics.setReady(false, reason: "standby: \(name) is served by \(current?.holder ?? otherHolder)")
        if !announced {
            logger.info(
                message, metadata: ["holder": "\(current?.holder ?? "?")", "epoch": "\(current?.epoch ?? 0)"])
            announced = true
        }
        // A quarter of a second: takeover after a holder froze is the lease's expiry plus this poll.
        sleep(.milliseconds(250), unless: stop)
    }
    return nil
}

/// The worker's part in the consume loop: one shard queue into `ShardLoop`; with the shared store, the takeover
/// time measured once consuming, and the lease's session checked every 2 s.
private final class ShardConsumer: ConsumeLoopParticipant {
    let role = "worker"
    let shard: ShardLoop
    let consumer: ConsumerConfiguration
    let lease: (lease: ShardLease, epoch: Int64, takenAt: ContinuousClock.Instant)?
    let metrics: WorkerMetrics
    let logger: Logger
    private var takeoverMeasured = false
    var source: String { consumer.queue }

    init(
        shard: ShardLoop, consumer: ConsumerConfiguration,
        lease: (lease: ShardLease, epoch: Int64, takenAt: ContinuousClock.Instant)?, metrics: WorkerMetrics,
        logger: Logger
    ) {
        self.shard = shard
        self.consumer = consumer
        self.lease = lease
        self.metrics = metrics
        self.logger = logger
    }

    func subscribe() throws(AMQPError) -> Consumer {
        let consumer = try Consumer(consumer, logger: logger)
        logger.info("worker consuming", metadata: ["amqp.queue": "\(source)"])
        if let lease, !takeoverMeasured {
            // From the lease taken to consuming: the state loaded and the missed timers fired.
            let seconds = (ContinuousClock.now - lease.takenAt).secondsValue
            metrics.set(.takeoverSeconds, seconds)
            logger.info("takeover done", metadata: ["seconds": "\(seconds)"])
            takeoverMeasured = true
        }
        return consumer
    }

    func stepWithoutConsumer() throws {
        try checkLease()
        try reportingLostLease { try shard.step(consumer: nil, idle: true) }
    }
    func waitBeforeNextDelivery() -> Duration { shard.waitBeforeNextDelivery() }
    func handle(_ delivery: Delivery) { shard.handle(delivery) }
    /// The consumer subscribed again by itself; the deliveries in hand are redelivered, which the engine absorbs.
    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool { false }

    func step(consumer: Consumer, idle: Bool) throws {
        try checkLease()
        try reportingLostLease { try shard.step(consumer: consumer, idle: idle) }
    }

    /// A step that fails once the lease is lost (a commit in flight when the process froze, failed at once on
    /// resume) fails for that reason: the lease, not the statement it happened to be in.
    private func reportingLostLease(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            try checkLease()
            throw error
        }
    }

    /// A lease no longer held (expired while the process was frozen or cut off, or taken by a standby) means a
    /// standby may serve the shard now: stop before doing more (the fenced commits would be refused anyway).
    private func checkLease() throws {
        guard let lease, let reason = lease.lease.lostReason else { return }
        logger.error("lease lost: stopping without committing", metadata: ["reason": "\(reason)"])
        // A commit in flight may wait on a session the server already ended: fail it now.
        (shard.store as? PostgresShardStore)?.abandon("lease lost: \(reason)")
        throw LeaseLost(shard: source, heldEpoch: lease.epoch, currentEpoch: nil)
    }

    /// Graceful stop: finish the batch, commit, ack, then the final files.
    func finish(consumer: Consumer?) throws {
        try shard.finish(consumer: consumer)
        logger.info("worker stopped", metadata: ["dossiers": "\(shard.engine.dossierCount)"])
    }
}

/// At most one log line a minute for a condition that lasts.
final class LogThrottle: Sendable {
    private let last = Mutex<Instant?>(nil)
    func allows(at now: Instant) -> Bool {
        last.withLock { last in
            if let previous = last, now - previous < 60 { return false }
            last = now
            return true
        }
    }
}

extension Duration {
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
