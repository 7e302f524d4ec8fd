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
        metrics.set(.leaseHeld, 0)
        var epoch: Int64?
        var announced = false
        while !stop.isRequested {
            if let taken = try lease.tryAcquire() {
                epoch = taken
                break
            }
            let current = try? lease.currentHolder()
            metrics.setReady(false, reason: "standby: \(queue) is served by \(current?.holder ?? "another worker")")
            if !announced {
                logger.info(
                    "standby: waiting for the shard's lease",
                    metadata: ["holder": "\(current?.holder ?? "?")", "epoch": "\(current?.epoch ?? 0)"])
                announced = true
            }
            // A quarter of a second: takeover after a holder froze is the lease's expiry plus this poll.
            sleep(.milliseconds(250), unless: stop)
        }
        guard let epoch else { return }
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
        try shard.step(consumer: nil, idle: true)
    }
    func waitBeforeNextDelivery() -> Duration { shard.waitBeforeNextDelivery() }
    func handle(_ delivery: Delivery) { shard.handle(delivery) }
    /// The consumer subscribed again by itself; the deliveries in hand are redelivered, which the engine absorbs.
    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool { false }

    func step(consumer: Consumer, idle: Bool) throws {
        try checkLease()
        try shard.step(consumer: consumer, idle: idle)
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

/// One shard's processing, apart from where deliveries come from: the consume loop feeds it deliveries from the
/// broker, the soak benchmark feeds it the same deliveries in process. Owns the engine, the commit thread, the
/// rollups thread and the alert files; acks through the consumer it is given, strictly after the commit that
/// covers a delivery.
public final class ShardLoop {
    public let engine: WorkerEngine
    public let store: any ShardStore
    let configuration: WorkerConfiguration
    let metrics: WorkerMetrics
    let logger: Logger
    let bounds: EventTimeBounds
    let clock: any WorkerClock
    let queue: String
    /// Nil in process (the soak benchmark): alerts count as published once filed.
    let publisher: OutboxPublisher?
    let files: AlertFileSink
    let committer: CommitThread
    let rollups: RollupThread
    var machine: BatchingStateMachine<ContinuousClock.Instant>
    /// The newest delivery taken since the last commit was handed over.
    var pendingTag: DeliveryTag?
    /// The commit being written, and the newest delivery it covers.
    var inFlight: (tag: DeliveryTag?, staged: Bool)?
    /// Outbox rows that, without a publisher, count as published: marked in the next commit.
    var publishedPending: [String] = []
    /// Dead letters handed to the publisher and not yet confirmed (not to be sent twice on a resync).
    var deadLettersInFlight = Set<Int64>()
    var lastPrune = ContinuousClock.now - .seconds(3600)
    /// Counted per event, reported per flush (a metrics update takes a lock).
    var appliedSinceFlush = 0
    var duplicatesSinceFlush = 0
    public private(set) var restartSummary: WorkerEngine.RebuildSummary

    /// In process, without a broker (the soak benchmark): alerts go to the files and count as published.
    public convenience init(
        configuration: WorkerConfiguration, domain: Configuration, clock: any WorkerClock, metrics: WorkerMetrics,
        logger: Logger, queue: String
    ) throws {
        try self.init(
            configuration: configuration, domain: domain, store: try WorkerStore(path: configuration.databasePath),
            clock: clock, metrics: metrics, logger: logger, publisher: nil, queue: queue)
    }

    init(
        configuration: WorkerConfiguration, domain: Configuration, store: any ShardStore, clock: any WorkerClock,
        metrics: WorkerMetrics, logger: Logger, publisher: OutboxPublisher?, queue: String,
        mayWrite: @escaping @Sendable () -> Bool = { true }
    ) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.bounds = configuration.eventTimeBounds
        self.clock = clock
        self.queue = queue
        self.publisher = publisher
        self.store = store
        engine = WorkerEngine(
            configuration: domain, store: store, clockMode: configuration.clock, clock: clock,
            retention: configuration.retention, sourceSilence: configuration.watchesSourceSilence, logger: logger)
        engine.maxDossiersPerUnit = configuration.maxDossiersPerUnit
        let summary = try engine.rebuild()
        restartSummary = summary
        logger.info(
            "worker state loaded",
            metadata: [
                "dossiers": "\(summary.dossiers)", "missed_alerts": "\(summary.missedAlerts)",
                "quarantined": "\(summary.quarantined)", "events_replayed": "\(summary.events)",
                "seconds": "\(summary.seconds)",
            ])
        metrics.set(.rebuildSeconds, summary.seconds)
        metrics.observe(.restartSeconds, seconds: summary.seconds)
        metrics.increment(.quarantinedEventsTotal, by: summary.quarantined)
        var stock: [RollupCell: Int] = [:]
        for (key, count) in try store.retiredStock() {
            guard let unit = domain.unitID(key.unit) else { continue }
            stock[RollupCell(unit: unit, field: domain.fieldID(named: key.field)), default: 0] += count
        }
        let keeper = RollupKeeper(
            configuration: domain, root: configuration.resolvedRollupsDirectory,
            windowDays: configuration.retainClosedDays, retiredStock: stock)
        files = AlertFileSink(folder: configuration.resolvedAlertsDirectory, mayWrite: mayWrite)
        committer = CommitThread(store: store, metrics: metrics)
        machine = BatchingStateMachine(
            settings: .init(
                batchSize: configuration.batchSize, batchDelay: .milliseconds(configuration.batchDelayMilliseconds),
                snapshotInterval: .seconds(configuration.snapshotSeconds)))
        // What the outbox holds from before goes to the files here, before the files thread owns them.
        try Self.fileOutbox(store: store, files: files)
        rollups = RollupThread(keeper: keeper, alertFiles: files, metrics: metrics)
        rollups.load(engine.heldDossiers())
        try deliverOutbox()
    }

    /// Stops the helper threads (after `finish`, or on the way out after an error).
    public func close() {
        if inFlight != nil { _ = committer.collect(wait: true) }
        inFlight = nil
        committer.finish()
        rollups.finish()
    }

    /// Why nothing can be committed now (the store or the files refuse to write, and are retried), or nil.
    var stall: (reason: String, since: ContinuousClock.Instant)? {
        if let store = committer.retrying { return ("the state store cannot write: \(store.reason)", store.since) }
        if let files = rollups.retrying { return ("the output files cannot be written: \(files.reason)", files.since) }
        // The files thread's queue grows by a job per commit: past this it is let catch up first, so the queue
        // stays bounded however slow the disk is.
        if rollups.backlog > Self.maxFilesBacklog {
            return ("the files thread is \(rollups.backlog) jobs behind", .now)
        }
        return nil
    }
    static let maxFilesBacklog = 256
    private var stallLoggedAt: ContinuousClock.Instant?

    /// How long the consumer may wait for the next delivery.
    public func waitBeforeNextDelivery() -> Duration {
        if stall != nil { return .milliseconds(250) }
        let nextTimer: Duration? =
            engine.clockMode == .wall ? engine.nextTimerAt.map { .seconds(max(0, $0 - clock.now())) } : nil
        switch machine.next(now: .now, otherChanges: hasOtherChanges, nextTimer: nextTimer) {
        case .commit: return .zero
        case .wait(let duration): return duration
        }
    }

    private var hasOtherChanges: Bool { engine.hasStagedChanges }

    public func handle(_ delivery: Delivery) {
        // Larger than any event can be: refused before the decoder reads it (the broker's max_message_size is the
        // outer fence).
        guard delivery.body.count <= DossierEvent.maxBodyBytes else {
            reject(delivery, .tooLarge(bytes: delivery.body.count, limit: DossierEvent.maxBodyBytes), eventID: nil)
            return
        }
        let event: DossierEvent
        do throws(EventDecodingError) {
            event = try DossierEvent.decode(bytes: delivery.body)
        } catch {
            reject(delivery, .invalid(error), eventID: nil)
            return
        }
        let envelope = DeliveryEnvelope(
            routingKey: delivery.routingKey,
            dossierHeader: delivery.headers[SameDayTopology.shardHeader]?.stringValue, messageID: delivery.messageID)
        if let refusal = engine.refusal(of: event, envelope: envelope, bounds: bounds, now: clock.now()) {
            reject(delivery, refusal, eventID: event.eventId)
            return
        }
        do {
            if try engine.apply(event, body: delivery.body) {
                appliedSinceFlush += 1
            } else {
                duplicatesSinceFlush += 1
            }
        } catch {
            reject(delivery, .rejected(error), eventID: event.eventId)
            return
        }
        accept(delivery)
    }

    private func accept(_ delivery: Delivery) {
        pendingTag = delivery.tag
        machine.delivered(at: .now)
    }

    /// Bad input never stops the line: the delivery is stored in the dead-letter outbox, with the reason and its
    /// code, in the commit that acks it; the publisher thread sends it to `sameday.dead` afterwards.
    private func reject(_ delivery: Delivery, _ refusal: EventRefusal, eventID: String?) {
        let reason = eventID.map { "event \(Printable.quoted($0, limit: 128)): \(refusal)" } ?? refusal.description
        logger.warning(
            "event dead-lettered",
            metadata: [
                "amqp.message_id": "\(Printable.escaped(delivery.messageID ?? "?", limit: 128))",
                "refusal": "\(refusal.code)", "reason": "\(Printable.escaped(reason, limit: 300))",
            ])
        engine.stage(
            deadLetter: DeadLetter(
                messageID: delivery.messageID ?? "", routingKey: delivery.routingKey, queue: queue, reason: reason,
                refusal: refusal.code, body: delivery.body))
        metrics.increment(.deadLettersTotal)
        metrics.increment(.refusalsTotal, refusal.code)
        if case .retired = refusal { metrics.increment(.retiredDossierEventsTotal) }
        accept(delivery)
    }

    /// After each delivery or wait: fire due timers, collect a finished commit, commit when the batch is due,
    /// snapshot and prune when their time comes.
    public func step(consumer: Consumer?, idle: Bool) throws {
        engine.tick()
        try collect(consumer: consumer, wait: false)
        if let stall {
            // Nothing is committed or acked until the store and the files write again: the deliveries in hand (at
            // most the prefetch) wait here unacked, so the broker sends no more and counts no redelivery, and the
            // consumer keeps its heartbeats. The process stays up and says why it is not ready.
            metrics.setReady(false, reason: stall.reason)
            if stallLoggedAt.map({ ContinuousClock.now - $0 >= .seconds(30) }) ?? true {
                stallLoggedAt = .now
                logger.error(
                    "not consuming: writes fail and are retried (nothing is acked or dead-lettered meanwhile)",
                    metadata: [
                        "reason": "\(stall.reason.prefix(300))",
                        "seconds": "\(Int((ContinuousClock.now - stall.since).secondsValue))",
                    ])
            }
            return
        }
        if stallLoggedAt != nil {
            stallLoggedAt = nil
            logger.notice("writes succeed again: consuming")
        }
        if machine.next(now: .now, otherChanges: hasOtherChanges) == .commit {
            try flush(consumer: consumer)
        }
        if let failure = rollups.failure { throw RollupFailure(description: failure) }
        if let day = engine.clockDay, machine.snapshotDue(now: .now, day: day), rollups.backlog < 4 {
            rollups.snapshot(firstDay: engine.firstDay, lastDay: engine.lastEventDay, clockDay: day)
            machine.snapshotted(now: .now, day: day)
        }
        if ContinuousClock.now - lastPrune >= .seconds(10), let now = engine.now {
            lastPrune = .now
            engine.retireDue()
            committer.prune(
                .init(
                    eventsBefore: now - engine.retention.eventLogSeconds,
                    tombstonesBefore: now - engine.retention.eventLogSeconds,
                    alertsBeforeDay: LocalDate(
                        dayNumber: LocalTime.day(of: now) - Int64(engine.retention.eventLogDays)
                    ).description))
            noteFullestUnit()
        }
    }

    /// Units whose dossiers passed 80 % of `maxDossiersPerUnit` (logged once per crossing).
    private var unitsNearFull: Set<UnitID> = []

    /// The fullest unit's share of its dossier limit, as a gauge, and a warning when a unit nears it (its new
    /// dossiers are dead-lettered once it is full).
    private func noteFullestUnit() {
        guard let fullest = engine.fullestUnit() else { return }
        metrics.set(.unitDossiersFullestRatio, fullest.ratio)
        if fullest.ratio >= 0.8, unitsNearFull.insert(fullest.unit).inserted {
            logger.warning(
                "a unit nears its dossier limit (maxDossiersPerUnit): its new dossiers are dead-lettered once full",
                metadata: [
                    "unit": "\(engine.configuration.unit(fullest.unit).code)",
                    "share": "\(Int(fullest.ratio * 100))%",
                ])
        } else if fullest.ratio < 0.7 {
            unitsNearFull.removeAll()
        }
    }

    struct RollupFailure: Error, CustomStringConvertible { var description: String }

    /// Hands the batch in hand to the commit thread (after collecting the one before: one in flight).
    public func flush(consumer: Consumer?) throws {
        try collect(consumer: consumer, wait: true)
        engine.retireDue(limit: 500)
        var published = publisher?.takeConfirmed() ?? (alerts: [], deadLetters: [])
        published.alerts += publishedPending
        publishedPending.removeAll(keepingCapacity: true)
        deadLettersInFlight.subtract(published.deadLetters)
        let stagedDeadLetters = engine.hasStagedDeadLetters
        let prepared = engine.prepareCommit(
            published: published.alerts, filed: rollups.takeFiled(), deadLettersSent: published.deadLetters)
        machine.committed()
        if appliedSinceFlush > 0 { metrics.increment(.eventsTotal, by: appliedSinceFlush) }
        if duplicatesSinceFlush > 0 {
            metrics.increment(.eventsDuplicateTotal, by: duplicatesSinceFlush)
        }
        appliedSinceFlush = 0
        duplicatesSinceFlush = 0
        if let retired = prepared?.batch.retired.count, retired > 0 {
            metrics.increment(.dossiersRetiredTotal, by: retired)
        }
        if let prepared {
            committer.submit(prepared)
            inFlight = (pendingTag, stagedDeadLetters)
        } else if let tag = pendingTag, let consumer {
            // Only duplicates since the last commit: nothing to write, the earlier commits cover them.
            try consumer.ack(tag, multiple: true)
        }
        pendingTag = nil
        metrics.set(.dossiers, Double(engine.dossierCount))
        if let now = engine.now { metrics.set(.clockSeconds, Double(now)) }
        if let newest = engine.newestOccurredAt {
            metrics.set(.eventLagSeconds, Double(SystemClock().now() - newest))
        }
    }

    /// Collects the commit in flight (waiting for it with `wait`): acks what it covers, then sends its alerts to
    /// the files and the broker and its changes to the rollups.
    func collect(consumer: Consumer?, wait: Bool) throws {
        guard let flight = inFlight, let result = committer.collect(wait: wait) else { return }
        inFlight = nil
        let done = try result.get()
        if let tag = flight.tag, let consumer { try consumer.ack(tag, multiple: true) }
        rollups.apply(done.rollupChanges, clock: done.batch.clock)
        let added = done.alerts
        if !added.isEmpty {
            rollups.file(added)
            if let publisher { publisher.send(added) } else { publishedPending += added.map(\.alertID) }
            for alert in added {
                metrics.increment(.alertsTotal, alert.level)
            }
        }
        if flight.staged { try sendDeadLetters() }
        if publisher?.needsResync == true { try deliverOutbox() }
    }

    /// Alerts the outbox holds from a previous run that never reached the files: appended and marked at once.
    static func fileOutbox(store: any ShardStore, files: AlertFileSink) throws {
        while true {
            let unfiled = try store.unfiledAlerts(limit: 5000)
            if unfiled.isEmpty { break }
            try store.markFiled(try files.write(unfiled))
        }
    }

    /// What the outbox still holds from before (a previous run, a broker outage) goes to the broker, marked as its
    /// confirms come in.
    func deliverOutbox() throws {
        guard let publisher else {
            while true {
                let unpublished = try store.unpublishedAlerts(limit: 5000)
                if unpublished.isEmpty { break }
                try store.markPublished(unpublished.map(\.alertID))
            }
            return
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
    func sendDeadLetters(resync: Bool = false) throws {
        guard let publisher else { return }
        if resync { deadLettersInFlight.removeAll() }
        let pending = try store.pendingDeadLetters(limit: 10_000).filter { !deadLettersInFlight.contains($0.seq) }
        deadLettersInFlight.formUnion(pending.map(\.seq))
        publisher.send(deadLetters: pending)
    }

    /// The last commits on a graceful stop, with the confirms of alerts still in flight, then the final files.
    public func finish(consumer: Consumer?) throws {
        committer.stopRetrying()
        rollups.stopRetrying()
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
        publisher?.finish(timeout: .seconds(5))
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
        if let clockDay = engine.clockDay {
            rollups.snapshot(firstDay: engine.firstDay, lastDay: engine.lastEventDay, clockDay: clockDay)
        }
        rollups.drain()
        if let failure = rollups.failure { throw RollupFailure(description: failure) }
        // Mark what the files thread appended meanwhile.
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
    }

    /// Waits until the rollups thread has written every snapshot asked for (tests, the soak benchmark).
    public func drainRollups() { rollups.drain() }

    /// Commits what is in hand, snapshots the rollups now and waits for the files; returns the snapshot's seconds
    /// (the soak benchmark, tests).
    public func snapshotNow() throws -> Double {
        try flush(consumer: nil)
        try collect(consumer: nil, wait: true)
        rollups.drain()
        if let clockDay = engine.clockDay {
            rollups.snapshot(firstDay: engine.firstDay, lastDay: engine.lastEventDay, clockDay: clockDay)
        }
        rollups.drain()
        if let failure = rollups.failure { throw RollupFailure(description: failure) }
        return rollups.lastSnapshotSeconds
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
        try self.init(
            folder: folder, file: "shard-\(shard).lock",
            heldBy: "another worker of shard \(shard): with SQLite state a shard has one worker")
    }

    /// The lock of `sameday sources`' state folder: one watcher of the events stream per deployment.
    public init(sourcesFolder folder: String) throws {
        try self.init(
            folder: folder, file: "sources.lock",
            heldBy: "another `sameday sources`: one watcher reads the events stream and raises source_silent")
    }

    private init(folder: String, file: String, heldBy: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + file
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Held(description: "\(path): cannot open the state lock (errno \(errno))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Held(description: "\(path) is held by \(heldBy); stop the other one first")
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
