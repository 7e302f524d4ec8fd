import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
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
            ?? GuardedWallClock(
                maxJumpSeconds: Int64(configuration.maxClockJumpSeconds),
                onRefusal: { [logger, metrics, throttle = LogThrottle()] wall, kept in
                    metrics.increment("sameday_clock_jumps_refused_total")
                    // One log line a minute while the wall clock stays off.
                    guard throttle.allows(at: kept) else { return }
                    logger.error(
                        "wall clock jump refused: the system clock disagrees with the elapsed time; restart the worker to adopt it",
                        metadata: ["wall": "\(RFC3339.format(wall))", "kept": "\(RFC3339.format(kept))"])
                })
        self.topology = SameDayTopology(shards: configuration.shard + 1, namePrefix: configuration.namePrefix)
    }

    public var queue: String { topology.workQueue(configuration.shard) }

    /// - Parameter stateLock: the shard's state lock if the caller took it already (before opening ports);
    ///   otherwise `run` takes it.
    public func run(until stop: StopFlag, stateLock: StateLock? = nil) throws {
        metrics.setReady(false, reason: "rebuilding state")
        let lock = try stateLock ?? StateLock(folder: configuration.stateDirectory, shard: configuration.shard)
        defer { if stateLock == nil { lock.release() } }
        let store = try WorkerStore(path: configuration.databasePath)
        let engine = WorkerEngine(
            configuration: domain, store: store, clockMode: configuration.clock, clock: clock,
            sourceSilence: configuration.watchesSourceSilence, logger: logger)
        let summary = try engine.rebuild()
        logger.info(
            "worker state rebuilt",
            metadata: [
                "events": "\(summary.events)", "dossiers": "\(summary.dossiers)",
                "missed_alerts": "\(summary.missedAlerts)", "quarantined": "\(summary.quarantined)",
                "seconds": "\(summary.seconds)",
            ])
        metrics.set("sameday_rebuild_seconds", summary.seconds)
        metrics.increment("sameday_quarantined_events_total", by: Double(summary.quarantined))

        let connection = try configuration.connection(name: "sameday worker shard \(configuration.shard)")
        var publisherConnection = connection
        publisherConnection.connectionName += " publisher"
        let publisher = OutboxPublisher(
            connection: publisherConnection, topology: topology, metrics: metrics, logger: logger)
        defer { publisher.finish(timeout: .seconds(1)) }
        let files = AlertFileSink(folder: configuration.resolvedAlertsDirectory)
        var rollupDigests: [String: Int] = [:]
        var loop = Loop(
            engine: engine, store: store, publisher: publisher, files: files, metrics: metrics, logger: logger,
            bounds: configuration.eventTimeBounds, clock: clock)
        try loop.deliverOutbox()

        var consumer: Consumer?
        let batchDelay = Duration.milliseconds(configuration.batchDelayMilliseconds)
        // The first snapshot comes right after consuming starts (not before: a restart reaches the queue first).
        var lastSnapshot = ContinuousClock.now - .seconds(configuration.snapshotSeconds)
        var lastRollupDay = LocalTime.day(of: engine.now)
        defer { consumer?.close() }
        while !stop.isRequested {
            if consumer == nil {
                do {
                    var consumerConnection = connection
                    consumerConnection.connectionName += " consumer"
                    consumer = try Consumer(
                        ConsumerConfiguration(
                            connection: consumerConnection, queue: queue, prefetch: UInt16(configuration.prefetch)),
                        logger: logger)
                    metrics.setReady(true)
                    logger.info("worker consuming", metadata: ["amqp.queue": "\(queue)"])
                } catch {
                    // Down is not dead: timers keep firing into the outbox and the files while the broker is away.
                    metrics.setReady(false, reason: "cannot consume \(queue): \(error)")
                    logger.warning("worker cannot consume yet", metadata: ["error": "\(error)"])
                    if !error.isRetriable && error.kind != .channelClosed { throw error }
                    loop.tick()
                    try loop.flush(consumer: nil)
                    sleepUnlessStopped(.seconds(1), stop)
                    continue
                }
            }
            guard let active = consumer else { continue }

            var wait = Duration.milliseconds(250)
            if let started = loop.batchStarted {
                wait = min(wait, max(.zero, batchDelay - (ContinuousClock.now - started)))
            }
            if configuration.clock == .wall, let next = engine.nextTimerAt {
                wait = min(wait, .seconds(max(0, next - clock.now())))
            }
            do {
                if let delivery = try active.next(timeout: wait) {
                    loop.handle(delivery, queue: queue)
                }
            } catch {
                metrics.setReady(false, reason: "\(error)")
                logger.warning("worker consumer error", metadata: ["error": "\(error)"])
                if !error.isRetriable { throw error }
            }
            metrics.setReady(active.isConnected, reason: active.isConnected ? "" : "reconnecting to the broker")
            loop.tick()
            let batchAge = loop.batchStarted.map { ContinuousClock.now - $0 } ?? .zero
            let batchDue = loop.pendingCount >= configuration.batchSize || batchAge >= batchDelay
            if batchDue || (loop.pendingCount == 0 && (engine.hasStagedChanges || !loop.filedPending.isEmpty)) {
                try loop.flush(consumer: active)
            }
            // Snapshot every interval, and when a day closes (at most every few seconds: a backfill on the events
            // clock crosses days quickly).
            let day = LocalTime.day(of: engine.now)
            let sinceSnapshot = ContinuousClock.now - lastSnapshot
            if sinceSnapshot >= .seconds(configuration.snapshotSeconds)
                || (day != lastRollupDay && sinceSnapshot >= .seconds(5))
            {
                try loop.flush(consumer: active)
                try writeRollups(engine, &rollupDigests)
                lastSnapshot = ContinuousClock.now
                lastRollupDay = day
            }
        }
        // Graceful stop: finish the batch, commit, ack, then the final files.
        metrics.setReady(false, reason: "stopping")
        try loop.finish(consumer: consumer)
        try writeRollups(engine, &rollupDigests)
        let stored = try store.eventCount()
        logger.info("worker stopped", metadata: ["events": "\(stored)"])
    }

    private func writeRollups(_ engine: WorkerEngine, _ digests: inout [String: Int]) throws {
        guard let days = engine.rollupDays else { return }
        let written = try RollupFiles.write(
            facts: engine.facts(), days: days, configuration: domain, root: configuration.resolvedRollupsDirectory,
            written: &digests)
        if written > 0 { logger.debug("rollup files written", metadata: ["files": "\(written)"]) }
    }

    private func sleepUnlessStopped(_ duration: Duration, _ stop: StopFlag) {
        let until = ContinuousClock.now + duration
        while !stop.isRequested && ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.05) }
    }

    /// The per-delivery work and the group commit, apart from the loop's scheduling.
    struct Loop {
        let engine: WorkerEngine
        let store: WorkerStore
        let publisher: OutboxPublisher
        let files: AlertFileSink
        let metrics: WorkerMetrics
        let logger: Logger
        let bounds: EventTimeBounds
        let clock: any WorkerClock
        var pendingTag: DeliveryTag?
        var pendingCount = 0
        var batchStarted: ContinuousClock.Instant?
        /// Dead letters handed to the publisher and not yet confirmed (not to be sent twice on a resync).
        var deadLettersInFlight = Set<Int64>()

        init(
            engine: WorkerEngine, store: WorkerStore, publisher: OutboxPublisher, files: AlertFileSink,
            metrics: WorkerMetrics, logger: Logger, bounds: EventTimeBounds, clock: any WorkerClock
        ) {
            self.engine = engine
            self.store = store
            self.publisher = publisher
            self.files = files
            self.metrics = metrics
            self.logger = logger
            self.bounds = bounds
            self.clock = clock
        }

        mutating func handle(_ delivery: Delivery, queue: String) {
            let event: DossierEvent
            do {
                event = try delivery.body.withUnsafeBytes { bytes throws(EventDecodingError) in
                    try DossierEvent.decode(bytes)
                }
            } catch {
                reject(delivery, queue: queue, reason: "invalid event: \(error)")
                return
            }
            let envelope = WorkerEngine.Envelope(
                routingKey: delivery.routingKey,
                dossierHeader: delivery.headers[SameDayTopology.shardHeader]?.stringValue)
            if let reason = engine.refusal(of: event, envelope: envelope, bounds: bounds, now: clock.now()) {
                reject(delivery, queue: queue, reason: "event \(event.eventId.prefix(128)): \(reason)")
                return
            }
            do {
                if try engine.apply(event) {
                    metrics.increment("sameday_events_total")
                } else {
                    metrics.increment("sameday_events_duplicate_total")
                }
            } catch {
                reject(delivery, queue: queue, reason: "event \(event.eventId.prefix(128)): \(error)")
                return
            }
            accept(delivery)
        }

        private mutating func accept(_ delivery: Delivery) {
            pendingTag = delivery.tag
            pendingCount += 1
            if batchStarted == nil { batchStarted = ContinuousClock.now }
        }

        /// Bad input never stops the line: the delivery is stored in the dead-letter outbox, with the reason, in the
        /// commit that acks it; the publisher thread sends it to `sameday.dead` afterwards. Nothing waits on the
        /// broker here, and nothing accepted is lost: until the broker confirms it, the dead letter stays stored.
        private mutating func reject(_ delivery: Delivery, queue: String, reason: String) {
            logger.warning(
                "event dead-lettered",
                metadata: ["amqp.message_id": "\(delivery.messageID ?? "?")", "reason": "\(reason.prefix(300))"])
            engine.stage(
                deadLetter: DeadLetter(
                    messageID: delivery.messageID ?? "", routingKey: delivery.routingKey, queue: queue, reason: reason,
                    body: delivery.body))
            metrics.increment("sameday_dead_letters_total")
            accept(delivery)
        }

        mutating func tick() { engine.tick() }

        /// Outbox rows appended to the files, waiting to be marked so in the next commit.
        var filedPending: [String] = []

        /// One SQLite transaction for everything staged (and the delivery marks of alerts sent before), then the
        /// ack (multiple) of every delivery it covers, then the new alerts out to the files and the broker.
        mutating func flush(consumer: Consumer?) throws {
            let confirmed = publisher.takeConfirmed()
            deadLettersInFlight.subtract(confirmed.deadLetters)
            let stagedDeadLetters = engine.hasStagedDeadLetters
            if engine.hasStagedChanges || !confirmed.alerts.isEmpty || !confirmed.deadLetters.isEmpty
                || !filedPending.isEmpty
            {
                let started = ContinuousClock.now
                let added = try engine.commit(
                    published: confirmed.alerts, filed: filedPending, deadLettersSent: confirmed.deadLetters)
                filedPending.removeAll(keepingCapacity: true)
                metrics.observeCommit(seconds: (ContinuousClock.now - started).secondsValue)
                if !added.isEmpty {
                    filedPending += try files.write(added)
                    publisher.send(added)
                    for alert in added {
                        metrics.increment("sameday_alerts_total", labels: "{level=\"\(alert.level)\"}")
                    }
                }
                if stagedDeadLetters { try sendDeadLetters() }
            }
            if let tag = pendingTag, let consumer {
                try consumer.ack(tag, multiple: true)
            }
            pendingTag = nil
            pendingCount = 0
            batchStarted = nil
            metrics.set("sameday_dossiers", Double(engine.dossierCount))
            metrics.set("sameday_clock_seconds", Double(engine.now))
            if let newest = engine.newestOccurredAt {
                metrics.set("sameday_event_lag_seconds", Double(SystemClock().now() - newest))
            }
            if publisher.needsResync { try deliverOutbox() }
        }

        /// What the outbox still holds from before (a previous run, a broker outage): to the files, marked at
        /// once; to the broker, marked as its confirms come in.
        mutating func deliverOutbox() throws {
            while true {
                let unfiled = try store.unfiledAlerts(limit: 5000)
                if unfiled.isEmpty { break }
                try store.markFiled(try files.write(unfiled))
            }
            publisher.resynced()
            var offset = 0
            while true {
                let unpublished = try store.unpublishedAlerts(limit: 1000, offset: offset)
                if unpublished.isEmpty || publisher.needsResync { break }
                publisher.send(unpublished)
                offset += unpublished.count
            }
            try sendDeadLetters(resync: true)
        }

        /// Hands the stored dead letters not yet in flight to the publisher (all of them again after a resync).
        mutating func sendDeadLetters(resync: Bool = false) throws {
            if resync { deadLettersInFlight.removeAll() }
            let pending = try store.pendingDeadLetters(limit: 10_000).filter { !deadLettersInFlight.contains($0.seq) }
            deadLettersInFlight.formUnion(pending.map(\.seq))
            publisher.send(deadLetters: pending)
        }

        /// The last commit on a graceful stop, with the confirms of alerts still in flight.
        mutating func finish(consumer: Consumer?) throws {
            try flush(consumer: consumer)
            publisher.finish(timeout: .seconds(5))
            try flush(consumer: consumer)
        }
    }
}

/// The exclusive lock on a shard's state folder: with SQLite a shard has exactly one worker, and a second instance
/// (a standby started by mistake, a unit started twice) must not fire the same timers from a copy of the state.
public struct StateLock: Sendable {
    let descriptor: Int32

    public struct Held: Error, CustomStringConvertible {
        public var description: String
    }

    public init(folder: String, shard: Int) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/shard-\(shard).lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Held(description: "\(path): cannot open the state lock (errno \(errno))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Held(
                description:
                    "\(path) is held by another worker of shard \(shard): with SQLite state a shard has one worker; stop the other one first"
            )
        }
    }

    public func release() { close(descriptor) }
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
