import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayPostgres
import SameDayStore
import Synchronization

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
    let files: AlertFileSink
    /// Outbox → files → broker, and the marks each commit writes back.
    let relay: AlertRelay
    let committer: CommitThread
    let rollups: RollupThread
    var machine: BatchingStateMachine<ContinuousClock.Instant>
    /// The newest delivery taken since the last commit was handed over.
    var pendingTag: DeliveryTag?
    /// The commit being written, and the newest delivery it covers.
    var inFlight: (tag: DeliveryTag?, staged: Bool)?
    var lastPrune = ContinuousClock.now - .seconds(3600)
    /// The worker's clock at the last prune. On the events clock a backlog (a catch-up after an outage, a replayed
    /// month) moves days in seconds; pruning only every 10 s of wall time would let the log hold the window plus the
    /// backlog, so a day on the worker's clock also prunes.
    var lastPruneClock: Instant?
    static let pruneEveryClockSeconds: Int64 = 86_400
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
        metrics: WorkerMetrics, logger: Logger, publisher: (any AlertPublishing)?, queue: String,
        mayWrite: @escaping @Sendable () -> Bool = { true }
    ) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.bounds = configuration.eventTimeBounds
        self.clock = clock
        self.queue = queue
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
        for (key, count) in summary.retiredStock {
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
        // What the outbox holds from before goes to the files here, before the files thread owns them. Should a
        // file refuse (a day's file locked past the wait by a paused worker of this shard, still inside its append;
        // a full disk), the files thread takes the rest and retries while the shard reports the stall: the worker
        // stays up, and files them once the lock or the disk frees.
        var backlog: [OutboxAlert] = []
        do {
            try AlertRelay.fileBacklog(store: store, files: files)
        } catch {
            logger.warning(
                "the alert files refuse the outbox's backlog at start: the files thread retries it",
                metadata: ["error": "\(error)"])
            backlog = try store.unfiledAlerts(limit: 1_000_000)
        }
        rollups = RollupThread(keeper: keeper, alertFiles: files, metrics: metrics)
        rollups.file(backlog)
        rollups.load(engine.heldDossiers())
        // Nil publisher in process (the soak benchmark): alerts count as published once filed.
        relay = AlertRelay(store: store, filer: rollups, publisher: publisher, metrics: metrics)
        try relay.deliverOutbox()
    }

    /// Stops the helper threads (after `finish`, or on the way out after an error).
    public func close() {
        if inFlight != nil { _ = committer.collect(wait: true) }
        inFlight = nil
        committer.finish()
        rollups.finish()
    }

    /// Why nothing can be committed now (the store or the files refuse to write, and are retried), or nil.
    var stall: (reason: String, since: ContinuousClock.Instant)? { stall(files: rollups.condition) }

    private func stall(files: RollupThread.Condition) -> (reason: String, since: ContinuousClock.Instant)? {
        if let store = committer.retrying { return ("the state store cannot write: \(store.reason)", store.since) }
        if let retrying = files.retrying {
            return ("the output files cannot be written: \(retrying.reason)", retrying.since)
        }
        // The files thread's queue grows by a job per commit: past this it is let catch up first, so the queue
        // stays bounded however slow the disk is.
        if files.backlog > Self.maxFilesBacklog { return ("the files thread is \(files.backlog) jobs behind", .now) }
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

    /// Something to commit besides a batch of deliveries: the engine's staged changes (timers fired, retirements),
    /// or alerts and dead letters the broker confirmed or the files took, whose marks only a commit keeps. Without
    /// the marks, an idle shard kept its alerts unpublished in its store until the next event or a stop, and a crash
    /// meanwhile sent them again.
    private var hasOtherChanges: Bool {
        engine.hasStagedChanges || relay.hasMarks
    }

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
        let files = rollups.condition
        if let stall = stall(files: files) {
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
        if let failure = files.failure { throw RollupFailure(description: failure) }
        if engine.sawSimulatedEvents, !markedSimulated {
            markedSimulated = true
            rollups.markSimulated()
        }
        if let day = engine.clockDay, machine.snapshotDue(now: .now, day: day), rollups.backlog < 4 {
            rollups.snapshot(firstDay: engine.firstDay, lastDay: engine.lastEventDay, clockDay: day)
            machine.snapshotted(now: .now, day: day)
        }
        if let now = engine.now,
            ContinuousClock.now - lastPrune >= .seconds(10)
                || now - (lastPruneClock ?? now) >= Self.pruneEveryClockSeconds
        {
            lastPrune = .now
            lastPruneClock = now
            engine.retireDue()
            committer.prune(
                .init(
                    eventsBefore: now - engine.retention.eventLogSeconds,
                    tombstonesBefore: now - engine.retention.eventLogSeconds,
                    alertsBeforeDay: LocalDate(
                        dayNumber: LocalTime.day(of: now) - Int64(engine.retention.eventLogDays)
                    ).description))
            noteFullestUnit()
            noteCalendarCoverage()
        }
    }

    /// The rollups folder was marked as holding simulated figures (once per process).
    private var markedSimulated = false

    /// The day each calendar was last warned about (running out soon; run out), so each is logged once a day.
    private var calendarWarnedOn: [String: Int64] = [:]
    private var calendarRunOutLoggedOn: [String: Int64] = [:]
    /// Warn this many days before a calendar runs out of listed holidays.
    static let calendarWarningDays: Int64 = 45

    /// A calendar that runs out of listed holidays is loud: events past its `holidaysThrough` are counted
    /// (`sameday_calendar_run_out_events_total`) and logged, and from 45 days before, a warning a day asks for next
    /// year's holidays.
    private func noteCalendarCoverage() {
        let configuration = engine.configuration
        guard let today = engine.clockDay else { return }
        for (calendar, count) in engine.takeCalendarRunOuts() {
            metrics.increment(.calendarRunOutEventsTotal, calendar, by: count)
            if calendarRunOutLoggedOn[calendar] != today {
                calendarRunOutLoggedOn[calendar] = today
                let through = configuration.calendarDefinitions.first { $0.id == calendar }?.holidaysThrough
                logger.error(
                    "events past the holidays their calendar lists: their deadlines count every weekday as a working day; add the holidays to calendars.json",
                    metadata: [
                        "calendar": "\(calendar)", "events": "\(count)",
                        "holidays_through": "\(through.map { LocalDate(dayNumber: $0).description } ?? "-")",
                    ])
            }
        }
        let used = Set(configuration.units.map(\.calendar))
        for index in used.sorted() {
            let definition = configuration.calendarDefinitions[index]
            guard let through = definition.holidaysThrough, through - today <= Self.calendarWarningDays,
                through >= today, calendarWarnedOn[definition.id] != today
            else { continue }
            calendarWarnedOn[definition.id] = today
            logger.warning(
                "a calendar runs out of listed holidays soon: add the next year's holidays and swapped days to calendars.json",
                metadata: [
                    "calendar": "\(definition.id)",
                    "holidays_through": "\(LocalDate(dayNumber: through))", "days_left": "\(through - today)",
                ])
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
        let marks = relay.takeMarks()
        let stagedDeadLetters = engine.hasStagedDeadLetters
        let prepared = engine.prepareCommit(
            published: marks.published, filed: marks.filed, deadLettersSent: marks.deadLettersSent)
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

    /// Collects the commit in flight (waiting for it with `wait`): acks what it covers, then sends its changes to
    /// the rollups and its alerts on their way (`AlertRelay`).
    func collect(consumer: Consumer?, wait: Bool) throws {
        guard let flight = inFlight, let result = committer.collect(wait: wait) else { return }
        inFlight = nil
        let done = try result.get()
        if let tag = flight.tag, let consumer { try consumer.ack(tag, multiple: true) }
        rollups.apply(done.rollupChanges, clock: done.batch.clock)
        try relay.committed(done.alerts, deadLettersStaged: flight.staged)
    }

    /// The last commits on a graceful stop, with the confirms of alerts still in flight, then the final files.
    public func finish(consumer: Consumer?) throws {
        committer.stopRetrying()
        rollups.stopRetrying()
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
        relay.finish(timeout: .seconds(5))
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
        if let clockDay = engine.clockDay {
            rollups.snapshot(firstDay: engine.firstDay, lastDay: engine.lastEventDay, clockDay: clockDay)
        }
        rollups.drain()
        if let failure = rollups.failure { throw RollupFailure(description: failure) }
        // Mark what the files thread appended meanwhile, and save the rows: the next start replays nothing.
        engine.saveRowsAtNextCommit()
        try flush(consumer: consumer)
        try collect(consumer: consumer, wait: true)
    }

    /// Waits until the rollups thread has written every snapshot asked for (tests, the soak benchmark).
    public func drainRollups() { rollups.drain() }

    /// Commits what is in hand, snapshots the rollups now and waits for the files; returns the snapshot's seconds
    /// (the soak benchmark, tests).
    public func snapshotNow() throws -> Double {
        engine.saveRowsAtNextCommit()
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
