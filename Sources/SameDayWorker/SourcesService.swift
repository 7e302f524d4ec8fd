import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayStore

/// `sameday sources`: the one place that sees every unit's events, whatever the shard count. It reads the events
/// stream (`sameday.events.log`, where the events exchange copies every event), keeps each unit's last event, and
/// raises `source_silent` (docs/rules.md §5.4, thresholds per unit or block from `alerting.json`) with the ids a worker
/// would give them, through its own durable outbox to the alerts exchange and to daily alert files.
///
/// One thread owns the stream consumer, the store and the files: the work per event is a dictionary update, so a
/// group commit (each unit's last event, the stream offset, the alerts) every `batchDelayMilliseconds` or
/// `batchSize` events is all the batching it needs. The offset is committed with what its events changed and the
/// deliveries are acked after that commit; a restart consumes from the stored offset + 1, and deliveries at or
/// below the offset already consumed (a resubscription after a reconnect) are skipped, so no event counts twice and
/// none is missed. A stream cannot dead-letter: a delivery that is not a valid event of a known unit under its own
/// routing key is counted, logged and passed over. The alerts publisher runs on its own thread and connection.
public final class SourcesService {
    public let configuration: WorkerConfiguration
    public let domain: Configuration
    public let metrics: WorkerMetrics
    private let clock: any WorkerClock
    private let logger: Logger
    private let topology: SameDayTopology

    /// - Parameter clock: nil for the wall clock guarded against jumps (`maxClockJumpSeconds`); tests inject theirs.
    ///   Ignored with `clock: events`, where the newest `occurredAt` read is the clock.
    public init(
        configuration: WorkerConfiguration, domain: Configuration, metrics: WorkerMetrics = WorkerMetrics(),
        clock: (any WorkerClock)? = nil, logger: Logger = Logger(label: "sameday.sources")
    ) {
        self.configuration = configuration
        self.domain = domain
        self.metrics = metrics
        self.logger = logger
        self.clock =
            clock
            ?? GuardedWallClock.forService(
                "sameday sources", maxJumpSeconds: configuration.maxClockJumpSeconds, metrics: metrics, logger: logger)
        self.topology = SameDayTopology(shards: 1, namePrefix: configuration.namePrefix)
    }

    /// The stream this service reads.
    public var stream: String { topology.eventsStream }

    /// Runs on the calling thread until `stop` is requested; throws on an error it cannot wait out.
    /// - Parameter stateLock: the sources folder's lock if the caller took it already; otherwise `run` takes it.
    public func run(until stop: StopFlag, stateLock: StateLock? = nil) throws {
        metrics.setReady(false, reason: "loading state")
        let lock = try stateLock ?? StateLock(sourcesFolder: configuration.resolvedSourcesDirectory)
        defer { if stateLock == nil { lock.release() } }
        if configuration.watchesSourceSilence {
            logger.warning(
                "workers with this configuration also raise source_silent (shards is 1 or sourceSilence is true): set \"sourceSilence\": false for them, so each silence is reported once"
            )
        }
        let connection = try configuration.connection(name: "sameday sources")
        var publisherConnection = connection
        publisherConnection.connectionName += " publisher"
        let publisher = OutboxPublisher(
            connection: publisherConnection, topology: topology, metrics: metrics, logger: logger)
        defer { publisher.finish(timeout: .seconds(1)) }
        let loop = try SourcesLoop(
            configuration: configuration, domain: domain, clock: clock, metrics: metrics, logger: logger,
            publisher: publisher)

        var consumerConnection = connection
        consumerConnection.connectionName += " consumer"
        let participant = StreamConsumer(
            loop: loop, stream: stream, prefetch: configuration.prefetch, connection: consumerConnection, logger: logger
        )
        try runConsumeLoop(participant, until: stop, metrics: metrics, logger: logger)
    }
}

/// The part of `sameday sources` in the consume loop: the events stream from the offset after the one consumed,
/// into `SourcesLoop`.
private final class StreamConsumer: ConsumeLoopParticipant {
    let role = "sources"
    let loop: SourcesLoop
    let source: String
    let prefetch: Int
    let connection: ConnectionConfiguration
    let logger: Logger

    init(loop: SourcesLoop, stream: String, prefetch: Int, connection: ConnectionConfiguration, logger: Logger) {
        self.loop = loop
        self.source = stream
        self.prefetch = prefetch
        self.connection = connection
        self.logger = logger
    }

    func subscribe() throws(AMQPError) -> Consumer {
        let tail = streamTail()
        if case .some(let end) = tail, let consumed = loop.consumedUpTo, (end ?? -1) < consumed {
            // Offsets never go back in a stream: it was deleted and declared again. Its new events would sit at or
            // below the offset consumed and be skipped.
            logger.error(
                "the events stream ends before the offset already consumed: it was recreated; reading it from its first event",
                metadata: ["offset": "\(consumed)", "stream.end": "\(end.map(String.init) ?? "empty")"])
            loop.forgetOffset()
        }
        let from = loop.resumeOffset
        let consumer = try Consumer(
            ConsumerConfiguration(
                connection: connection, queue: source, prefetch: UInt16(prefetch),
                arguments: ["x-stream-offset": from.map { .int($0) } ?? .string("first")]),
            logger: logger)
        loop.subscribed(tail: tail)
        logger.info(
            "sources consuming the events stream",
            metadata: [
                "amqp.queue": "\(source)", "offset": "\(from.map(String.init) ?? "first")",
                "stream.end": "\(tail.map { $0.map(String.init) ?? "empty" } ?? "unknown")",
            ])
        return consumer
    }

    /// Confirms are still marked; silence waits: with the broker away no unit's events can arrive, and that is not
    /// the units' outage.
    func stepWithoutConsumer() throws { try loop.step(consumer: nil) }
    func waitBeforeNextDelivery() -> Duration { loop.waitBeforeNextDelivery() }
    func handle(_ delivery: Delivery) { loop.handle(delivery) }

    func nothingArrived(waited: Duration, connected: Bool) {
        // Nothing within a real wait (not a poll between two commits): where the stream's end could not be read,
        // this is the sign that the backlog is read.
        if connected && waited >= .milliseconds(500) { loop.idle() }
    }

    /// The consumer subscribed again with the offset it started from: commit what is in hand (its acks are void on
    /// the new channel), then subscribe anew after what was consumed rather than skip through the stream again.
    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool {
        try loop.commit(consumer: nil)
        return true
    }

    func step(consumer: Consumer, idle: Bool) throws { try loop.step(consumer: consumer) }

    func finish(consumer: Consumer?) throws {
        try loop.finish(consumer: consumer)
        logger.info("sources stopped", metadata: ["units": "\(loop.unitCount)"])
    }

    /// The offset of the stream's newest message when asked (`.some(nil)`: the stream is empty), read with a
    /// short-lived consumer at `last` (the stream's last chunk); nil when it cannot be read.
    private func streamTail() -> Int64?? {
        var probeConnection = connection
        probeConnection.connectionName += " tail"
        probeConnection.reconnect.maximumAttempts = 1
        do {
            let probe = try Consumer(
                ConsumerConfiguration(
                    connection: probeConnection, queue: source, prefetch: 1000,
                    arguments: ["x-stream-offset": .string("last")]),
                logger: logger)
            defer { probe.close() }
            var tail: Int64?
            // A stream subscription takes a moment to start delivering; then the chunk comes at once.
            var wait = Duration.seconds(2)
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline, let delivery = try probe.next(timeout: wait) {
                if let offset = delivery.headers["x-stream-offset"]?.intValue { tail = max(tail ?? offset, offset) }
                try probe.ack(delivery.tag)
                wait = .milliseconds(300)
            }
            return .some(tail)
        } catch {
            logger.warning("cannot read the events stream's end", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

/// The state and the work of `sameday sources` apart from the consume loop: the silence watch, its store, the alert
/// files and the publisher.
final class SourcesLoop {
    let configuration: WorkerConfiguration
    let domain: Configuration
    let clock: any WorkerClock
    let metrics: WorkerMetrics
    let logger: Logger
    let store: SourcesStore
    /// Outbox → files → broker, and the marks each commit writes back.
    let relay: AlertRelay
    let bounds: EventTimeBounds
    private var watch = SourceSilenceWatch()
    /// The newest offset handled (committed or in hand); deliveries at or below it are skipped.
    private var consumedOffset: Int64?
    /// The newest offset handled since the last commit.
    private var pendingOffset: Int64?
    private var pendingTag: DeliveryTag?
    /// When the batch in hand is due: the same decisions as a worker shard's (`BatchingStateMachine`).
    private var machine: BatchingStateMachine<ContinuousClock.Instant>
    private var staged: [Alert] = []
    private var lastPrune = ContinuousClock.now - .seconds(3600)
    /// Whether the stream has been read up to the end it had when the subscription started. On the wall clock
    /// silences fire only then: while a backlog is read (a start, a reconnect) a unit's newer events may still be
    /// unread, and its stored last event would make it look silent.
    private var isCaughtUp = false
    /// The stream's newest offset when the subscription started (nil: not known; then an idle wait decides).
    private var tailOffset: Int64??
    private var eventsSinceCommit = 0
    private var invalidSinceCommit = 0
    private var skippedSinceCommit = 0
    private let invalidLog = LogThrottle()

    init(
        configuration: WorkerConfiguration, domain: Configuration, clock: any WorkerClock, metrics: WorkerMetrics,
        logger: Logger, publisher: OutboxPublisher
    ) throws {
        let started = Date()
        self.configuration = configuration
        self.domain = domain
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        self.bounds = configuration.eventTimeBounds
        machine = BatchingStateMachine(
            settings: .init(
                batchSize: configuration.batchSize, batchDelay: .milliseconds(configuration.batchDelayMilliseconds),
                // Confirms are marked and the clock read at least once a second.
                pollInterval: .seconds(1)))
        store = try SourcesStore(path: configuration.sourcesDatabasePath)
        let files = AlertFileSink(folder: configuration.sourcesAlertsDirectory)
        var forgotten = 0
        for unit in try store.units() {
            guard let id = domain.unitID(unit.code) else {
                forgotten += 1  // no longer in units.csv: nothing to watch
                continue
            }
            watch.restore(unit: id, lastEventAt: unit.lastEventAt, alerted: unit.alerted, config: domain)
        }
        consumedOffset = try store.offset()
        // What the outbox holds from before goes to the files and the broker first (what fires below is sent by
        // its own commit, once).
        try AlertRelay.fileBacklog(store: store, files: files)
        relay = AlertRelay(
            store: store, filer: ImmediateAlertFiler(sink: files), publisher: publisher, metrics: metrics)
        try relay.deliverOutbox()
        // Events clock: silences due by the stored clock and not marked as reported were not yet raised (they
        // would have been at the next event); they are now, at that clock. On the wall clock what came due while
        // the service was down fires once the stream is read up to its end (`caughtUp`), late-fired.
        if configuration.clock == .events, let stored = try store.clock() {
            staged += watch.advance(to: stored, config: domain)
        }
        try commit(consumer: nil)
        logger.info(
            "sources state loaded",
            metadata: [
                "units": "\(unitCount)", "offset": "\(consumedOffset.map(String.init) ?? "none")",
                "units_not_in_configuration": "\(forgotten)",
                "seconds": "\(Date().timeIntervalSince(started))",
            ])
        metrics.set(.sourcesUnits, Double(unitCount))
        if let consumedOffset { metrics.set(.sourcesOffset, Double(consumedOffset)) }
    }

    var unitCount: Int { watch.monitor.units.count }

    /// Where a new subscription starts: after the newest offset consumed (nil: the stream's first).
    var resumeOffset: Int64? { consumedOffset.map { $0 + 1 } }

    /// The newest offset handled (committed or in hand).
    var consumedUpTo: Int64? { consumedOffset }

    /// The stream was recreated: read the new one from its first event (the next commit stores its offsets).
    func forgetOffset() {
        consumedOffset = nil
        pendingOffset = nil
    }

    /// How long the consumer may wait for the next delivery: not past a due commit, nor (wall clock) past the next
    /// silence, nor more than a second (confirms are marked and the clock read at least that often).
    func waitBeforeNextDelivery() -> Duration {
        let nextSilence: Duration? =
            configuration.clock == .wall && isCaughtUp
            ? watch.nextTimerAt.map { .seconds(max(0, $0 - clock.now())) } : nil
        switch machine.next(now: .now, otherChanges: hasOtherChanges, nextTimer: nextSilence) {
        case .commit: return .zero
        case .wait(let duration): return duration
        }
    }

    /// Something to commit besides deliveries: silences fired by the clock, or delivery marks of alerts.
    private var hasOtherChanges: Bool { !staged.isEmpty || relay.hasMarks }

    /// A new subscription reads from the stored offset: a backlog up to `tail`, the stream's newest offset when it
    /// started (`.some(nil)`: the stream was empty; nil: not known).
    func subscribed(tail: Int64??) {
        tailOffset = tail
        switch tail {
        case .some(.none): isCaughtUp = true
        case .some(.some(let end)): isCaughtUp = (consumedOffset ?? -1) >= end
        case .none: isCaughtUp = false
        }
    }

    /// The stream had nothing more to deliver within a wait: caught up, where its end was not known.
    func idle() {
        if case .none = tailOffset { isCaughtUp = true }
    }

    /// One delivery from the stream.
    func handle(_ delivery: Delivery) {
        pendingTag = delivery.tag
        machine.delivered(at: .now)
        guard let offset = delivery.headers["x-stream-offset"]?.intValue else {
            refuse(
                delivery, reason: "no x-stream-offset header (not a stream delivery?)", code: "not_a_stream_delivery")
            return
        }
        if let consumedOffset, offset <= consumedOffset {
            skippedSinceCommit += 1
            return
        }
        consumedOffset = offset
        pendingOffset = offset
        if !isCaughtUp, case .some(.some(let end)) = tailOffset, offset >= end { isCaughtUp = true }
        guard delivery.body.count <= DossierEvent.maxBodyBytes else {
            refuse(delivery, .tooLarge(bytes: delivery.body.count, limit: DossierEvent.maxBodyBytes))
            return
        }
        let event: DossierEvent
        do throws(EventDecodingError) {
            event = try DossierEvent.decode(bytes: delivery.body)
        } catch {
            refuse(delivery, .invalid(error))
            return
        }
        // What the worker dead-letters must not keep a unit looking alive either: the routing key (what topic
        // permissions check) must say the event's unit, and the unit must own the dossier.
        let envelope = DeliveryEnvelope(
            routingKey: delivery.routingKey,
            dossierHeader: delivery.headers[SameDayTopology.shardHeader]?.stringValue, messageID: delivery.messageID)
        if let refusal = domain.admissionRefusal(of: event, envelope: envelope) {
            refuse(delivery, refusal)
            return
        }
        guard let unit = domain.unitID(event.unit) else {
            refuse(delivery, .unknownUnit(event.unit))
            return
        }
        let wallNow = clock.now()
        if let reason = bounds.violation(of: event, now: wallNow) {
            refuse(delivery, .implausibleTime("\(reason)"))
            return
        }
        switch configuration.clock {
        case .wall:
            // Silences are judged on the clock in `step`, once the stream is read up to its end.
            watch.record(unit: unit, occurredAt: event.occurredAt, config: domain)
        case .events:
            let now = max(watch.clock ?? event.occurredAt, event.occurredAt)
            staged += watch.observe(unit: unit, occurredAt: event.occurredAt, now: now, config: domain)
        }
        eventsSinceCommit += 1
    }

    private func refuse(_ delivery: Delivery, _ refusal: EventRefusal) {
        refuse(delivery, reason: refusal.description, code: refusal.code)
    }

    /// Stream deliveries cannot be dead-lettered (the stream keeps them for the workers): a refused one is passed
    /// over, counted by code, and logged at most once a minute.
    private func refuse(_ delivery: Delivery, reason: String, code: String) {
        invalidSinceCommit += 1
        metrics.increment(.sourcesRefusalsTotal, code)
        guard invalidLog.allows(at: SystemClock().now()) else { return }
        logger.warning(
            "stream delivery passed over (at most one line a minute; see sameday_sources_invalid_events_total)",
            metadata: [
                "amqp.message_id": "\(Printable.escaped(delivery.messageID ?? "?", limit: 128))",
                "amqp.routing_key": "\(Printable.escaped(delivery.routingKey, limit: 200))",
                "refusal": "\(code)", "reason": "\(Printable.escaped(reason, limit: 300))",
            ])
    }

    /// After each delivery or wait: fire due silences (wall clock, once the stream is read up to its end), commit
    /// when the batch is due.
    func step(consumer: Consumer?) throws {
        if configuration.clock == .wall && isCaughtUp && consumer != nil {
            // At the wall clock's now: fired within a second of its threshold in the run of things, or late-fired
            // after a start or an outage.
            staged += watch.jump(to: clock.now(), config: domain)
        }
        if machine.next(now: .now, otherChanges: hasOtherChanges) == .commit { try commit(consumer: consumer) }
        if ContinuousClock.now - lastPrune >= .seconds(3600), let clock = watch.clock {
            lastPrune = .now
            let day = LocalDate(dayNumber: LocalTime.day(of: clock) - Int64(configuration.eventLogDays))
            let pruned = try store.pruneAlerts(before: day.description)
            if pruned > 0 { metrics.increment(.prunedRowsTotal, by: pruned) }
        }
    }

    /// Writes what is in hand in one transaction (units changed, the offset, the clock, new alerts, delivery
    /// marks), then acks the deliveries it covers and sends the new alerts to the files and the broker.
    func commit(consumer: Consumer?) throws {
        var batch = SourcesCommit()
        for unit in watch.takeChangedUnits() {
            guard let state = watch.monitor.state(of: unit) else { continue }
            batch.units.append((domain.unit(unit).code, state.lastEventAt, state.alerted))
        }
        batch.offset = pendingOffset
        if let clock = watch.clock, !batch.units.isEmpty || !staged.isEmpty || pendingOffset != nil {
            batch.clock = clock
        }
        let alerts = staged.map(OutboxAlert.init)
        batch.alerts = alerts
        let marks = relay.takeMarks()
        batch.publishedAlertIDs = marks.published
        batch.filedAlertIDs = marks.filed
        let tag = pendingTag
        staged.removeAll(keepingCapacity: true)
        pendingOffset = nil
        pendingTag = nil
        machine.committed()
        if !batch.isEmpty {
            let started = ContinuousClock.now
            try store.commit(batch)
            metrics.observeCommit(seconds: (ContinuousClock.now - started).secondsValue)
        }
        if let tag, let consumer { try consumer.ack(tag, multiple: true) }
        if eventsSinceCommit > 0 { metrics.increment(.sourcesEventsTotal, by: eventsSinceCommit) }
        if invalidSinceCommit > 0 {
            metrics.increment(.sourcesInvalidEventsTotal, by: invalidSinceCommit)
        }
        if skippedSinceCommit > 0 {
            metrics.increment(.sourcesSkippedDeliveriesTotal, by: skippedSinceCommit)
        }
        eventsSinceCommit = 0
        invalidSinceCommit = 0
        skippedSinceCommit = 0
        if let offset = batch.offset { metrics.set(.sourcesOffset, Double(offset)) }
        if !batch.units.isEmpty { metrics.set(.sourcesUnits, Double(unitCount)) }
        if let clock = watch.clock { metrics.set(.clockSeconds, Double(clock)) }
        for alert in alerts {
            logger.notice(
                "source_silent raised",
                metadata: ["alert.id": "\(alert.alertID)", "amqp.routing_key": "\(alert.routingKey)"])
        }
        try relay.committed(alerts, deadLettersStaged: false)
    }

    /// The last commit on a graceful stop, then the confirms of alerts still in flight.
    func finish(consumer: Consumer?) throws {
        try commit(consumer: consumer)
        relay.finish(timeout: .seconds(5))
        try commit(consumer: consumer)
    }
}
