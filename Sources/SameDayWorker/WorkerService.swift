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

    public init(
        configuration: WorkerConfiguration, domain: Configuration, metrics: WorkerMetrics = WorkerMetrics(),
        clock: any WorkerClock = SystemClock(), logger: Logger = Logger(label: "sameday.worker")
    ) {
        self.configuration = configuration
        self.domain = domain
        self.metrics = metrics
        self.clock = clock
        var logger = logger
        logger[metadataKey: "shard"] = "\(configuration.shard)"
        self.logger = logger
        self.topology = SameDayTopology(shards: configuration.shard + 1, namePrefix: configuration.namePrefix)
    }

    public var queue: String { topology.workQueue(configuration.shard) }

    public func run(until stop: StopFlag) throws {
        metrics.setReady(false, reason: "rebuilding state")
        let store = try WorkerStore(path: configuration.databasePath)
        let engine = WorkerEngine(
            configuration: domain, store: store, clockMode: configuration.clock, clock: clock,
            sourceSilence: configuration.watchesSourceSilence, logger: logger)
        let summary = try engine.rebuild()
        logger.info(
            "worker state rebuilt",
            metadata: [
                "events": "\(summary.events)", "dossiers": "\(summary.dossiers)",
                "missed_alerts": "\(summary.missedAlerts)", "seconds": "\(summary.seconds)",
            ])
        metrics.set("sameday_rebuild_seconds", summary.seconds)

        let connection = try configuration.connection(name: "sameday worker shard \(configuration.shard)")
        let publisher = WorkerPublisher(connection: connection, topology: topology, logger: logger)
        let files = AlertFileSink(folder: configuration.resolvedAlertsDirectory)
        var rollupDigests: [String: Int] = [:]
        var loop = Loop(
            engine: engine, store: store, publisher: publisher, files: files, metrics: metrics, logger: logger)
        try loop.deliverOutbox()

        var consumer: Consumer?
        let batchDelay = Duration.milliseconds(configuration.batchDelayMilliseconds)
        // The first snapshot comes right after consuming starts (not before: a restart reaches the queue first).
        var lastSnapshot = ContinuousClock.now - .seconds(configuration.snapshotSeconds)
        var lastRollupDay = LocalTime.day(of: engine.now)
        defer {
            consumer?.close()
            publisher.close()
        }
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
                    loop.handle(delivery, consumer: active, queue: queue)
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
        let publisher: WorkerPublisher
        let files: AlertFileSink
        let metrics: WorkerMetrics
        let logger: Logger
        var pendingTag: DeliveryTag?
        var pendingCount = 0
        var batchStarted: ContinuousClock.Instant?

        init(
            engine: WorkerEngine, store: WorkerStore, publisher: WorkerPublisher, files: AlertFileSink,
            metrics: WorkerMetrics, logger: Logger
        ) {
            self.engine = engine
            self.store = store
            self.publisher = publisher
            self.files = files
            self.metrics = metrics
            self.logger = logger
        }

        mutating func handle(_ delivery: Delivery, consumer: Consumer, queue: String) {
            let event: DossierEvent
            do {
                event = try delivery.body.withUnsafeBytes { bytes throws(EventDecodingError) in
                    try DossierEvent.decode(bytes)
                }
            } catch {
                reject(delivery, consumer: consumer, queue: queue, reason: "invalid event: \(error)")
                return
            }
            do {
                if try engine.apply(event) {
                    metrics.increment("sameday_events_total")
                } else {
                    metrics.increment("sameday_events_duplicate_total")
                }
            } catch {
                reject(delivery, consumer: consumer, queue: queue, reason: "event \(event.eventId): \(error)")
                return
            }
            accept(delivery)
        }

        private mutating func accept(_ delivery: Delivery) {
            pendingTag = delivery.tag
            pendingCount += 1
            if batchStarted == nil { batchStarted = ContinuousClock.now }
        }

        /// Bad input never stops the line: the event goes to the dead-letter queue with the reason and, once the
        /// broker confirmed it there, is acked with its batch. If that publish fails the delivery is returned to
        /// the queue (the queue's delivery limit dead-letters it in the end), never dropped.
        private mutating func reject(_ delivery: Delivery, consumer: Consumer, queue: String, reason: String) {
            logger.warning(
                "event dead-lettered",
                metadata: ["amqp.message_id": "\(delivery.messageID ?? "?")", "reason": "\(reason.prefix(300))"])
            do {
                try publisher.deadLetter(delivery, queue: queue, reason: reason)
                metrics.increment("sameday_dead_letters_total")
                accept(delivery)
            } catch {
                logger.warning(
                    "dead-lettering failed; returning the event to its queue", metadata: ["error": "\(error)"])
                _ = try? consumer.nack(delivery.tag, requeue: true)
            }
        }

        mutating func tick() { engine.tick() }

        /// Outbox rows appended to the files, waiting to be marked so in the next commit.
        var filedPending: [String] = []

        /// One SQLite transaction for everything staged (and the delivery marks of alerts sent before), then the
        /// ack (multiple) of every delivery it covers, then the new alerts out to the files and the broker.
        mutating func flush(consumer: Consumer?) throws {
            let published = publisher.takeConfirmed()
            if engine.hasStagedChanges || !published.isEmpty || !filedPending.isEmpty {
                let started = ContinuousClock.now
                let added = try engine.commit(published: published, filed: filedPending)
                filedPending.removeAll(keepingCapacity: true)
                metrics.observeCommit(seconds: (ContinuousClock.now - started).secondsValue)
                if !added.isEmpty {
                    filedPending += try files.write(added)
                    publisher.send(added)
                    for alert in added {
                        metrics.increment("sameday_alerts_total", labels: "{level=\"\(alert.level)\"}")
                    }
                }
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
        func deliverOutbox() throws {
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
        }

        /// The last commit on a graceful stop, with the confirms of alerts still in flight.
        mutating func finish(consumer: Consumer?) throws {
            try flush(consumer: consumer)
            publisher.finish(timeout: .seconds(5))
            try flush(consumer: consumer)
        }
    }
}

extension Duration {
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
