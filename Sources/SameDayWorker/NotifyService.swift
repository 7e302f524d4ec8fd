import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFiles
import SameDayFormats
import SameDayNotify
import SameDayPostgres
import SameDayStore
import ServiceLifecycle
import Synchronization

/// `sameday notify`: alerts to the people they are for (docs/notify.md). It consumes its own durable queue bound to
/// `sameday.alerts`, records what each person is owed in its store before it acks (a SIGKILL loses nothing; a
/// redelivery is not owed twice), groups each person's alerts into digests on her unit's calendar
/// (`NotifyPlanner`), stores each digest's messages and clears what they carry in one transaction, and hands the
/// messages to their channels on threads of their own: one per channel, so a chat API that hangs does not hold the
/// e-mail back. A message its channel refuses for good, or after the retry policy's last attempt, stays in the
/// failed-deliveries outbox (`sameday notify failed list|retry`).
///
/// Clock: the wall clock (guarded against jumps), or with `clock: events` the alerts' own time (the newest
/// `firedAt` read, running on with the wall clock from there): for demonstrations and benchmarks that replay a
/// month of alerts in minutes.
public final class NotifyService: Sendable {
    public let configuration: WorkerConfiguration
    public let settings: NotifySettings
    public let domain: Configuration
    public let metrics: WorkerMetrics
    private let clockOverride: (any WorkerClock)?
    private let logger: Logger

    public init(
        configuration: WorkerConfiguration, settings: NotifySettings, domain: Configuration,
        metrics: WorkerMetrics = WorkerMetrics(), clock: (any WorkerClock)? = nil,
        logger: Logger = Logger(label: "sameday.notify")
    ) {
        self.configuration = configuration
        self.settings = settings
        self.domain = domain
        self.metrics = metrics
        self.clockOverride = clock
        self.logger = logger
    }

    /// The queue this notifier consumes.
    public var queue: String {
        NotifyQueue.name(topology: SameDayTopology(shards: 1, namePrefix: configuration.namePrefix))
    }

    /// Runs on the calling thread until `stop` is requested; throws on an error it cannot wait out.
    /// - Parameter stateLock: the notifier's lock if the caller took it already; otherwise `run` takes it. Unused
    ///   with the PostgreSQL store, where the lease takes its place.
    public func run(until stop: StopFlag, stateLock: StateLock? = nil) throws {
        metrics.setReady(false, reason: "loading state")
        if let store = settings.store {
            try runHoldingLease(url: try PostgresStoreURL(store), until: stop)
            return
        }
        let lock = try stateLock ?? StateLock(notifyFolder: settings.stateDirectory)
        defer { if stateLock == nil { lock.release() } }
        try serve(store: try NotifyStore(path: settings.databasePath), lease: nil, until: stop)
    }

    /// With the shared store: a standby (consuming nothing, sending nothing) until the notifier's lease is free, as a
    /// worker waits for its shard's; then it serves with every write fenced by the lease's epoch. A graceful stop
    /// gives the lease back.
    private func runHoldingLease(url: PostgresStoreURL, until stop: StopFlag) throws {
        let lease = try ShardLease(
            url: url, passwordFile: settings.storePasswordFile, shard: queue,
            holder: "\(ProcessInfo.processInfo.hostName) pid \(getpid())", ttl: .seconds(settings.leaseSeconds),
            logger: logger)
        defer { lease.release() }
        guard
            let epoch = try awaitLease(
                lease, of: queue, otherHolder: "another notifier", message: "notify standby: waiting for the lease",
                until: stop, metrics: metrics, logger: logger)
        else { return }
        metrics.set(.leaseHeld, 1)
        metrics.increment(.leaseTakeoversTotal)
        defer { metrics.set(.leaseHeld, 0) }
        logger.info("notify lease taken", metadata: ["epoch": "\(epoch)", "store": "\(url)"])
        let store = try PostgresNotifyStore(
            url: url, passwordFile: settings.storePasswordFile, notifier: queue, fencingEpoch: epoch, logger: logger)
        try serve(store: store, lease: (lease, epoch), until: stop)
    }

    private func serve(store: any NotifyStoring, lease: (lease: ShardLease, epoch: Int64)?, until stop: StopFlag)
        throws
    {
        let clock: any WorkerClock
        let alertsClock: AlertsClock?
        if let clockOverride {
            clock = clockOverride
            alertsClock = nil
        } else if configuration.clock == .events {
            let resumed = AlertsClock(resumingAt: try store.clock())
            clock = resumed
            alertsClock = resumed
        } else {
            clock = GuardedWallClock.forService(
                "sameday notify", maxJumpSeconds: configuration.maxClockJumpSeconds, metrics: metrics, logger: logger)
            alertsClock = nil
        }
        // With a lease, nothing is sent once it is lost: the notifier that took over sends it.
        let maySend: @Sendable () -> Bool = { lease?.lease.lostReason == nil }
        let channels = try NotifyChannels(settings: settings)
        defer { channels.shutdown() }
        let senders = settings.channelNames.map { name in
            ChannelSender(
                channel: name, channels: channels, store: store, settings: settings, clock: clock, metrics: metrics,
                logger: logger, maySend: maySend)
        }
        for sender in senders { sender.start() }
        defer { for sender in senders { sender.stop() } }

        let loop = try NotifyLoop(
            settings: settings, domain: domain, store: store, clock: clock, alertsClock: alertsClock,
            metrics: metrics, logger: logger, wake: { for sender in senders { sender.wake() } })
        var connection = try configuration.connection(name: "sameday notify")
        if let file = settings.credentialsFile { try connection.useCredentials(fromFile: file) }
        let participant = NotifyConsumer(
            loop: loop, queue: queue, topology: SameDayTopology(shards: 1, namePrefix: configuration.namePrefix),
            prefetch: UInt16(min(settings.batchSize * 2, 65_535)), connection: connection, lease: lease,
            logger: logger)
        try runConsumeLoop(participant, until: stop, metrics: metrics, logger: logger)
    }
}

/// The alerts' own time for `clock: events`: the newest `firedAt` read, running on with the wall clock from the
/// moment it was read (so a group wait ends after the last alert of a replay too); resumed from the stored clock.
final class AlertsClock: WorkerClock {
    private struct State {
        var base: Instant
        var readAt: ContinuousClock.Instant
    }
    private let state: Mutex<State?>

    init(resumingAt stored: Instant?) {
        state = Mutex(stored.map { State(base: $0, readAt: .now) })
    }

    func now() -> Instant {
        state.withLock { s in
            guard let s else { return SystemClock().now() }
            return s.base + (ContinuousClock.now - s.readAt).components.seconds
        }
    }

    /// An alert fired at `firedAt` was read: the clock is never behind it.
    func observe(_ firedAt: Instant) {
        state.withLock { s in
            let current = s.map { $0.base + (ContinuousClock.now - $0.readAt).components.seconds }
            if current == nil || firedAt > current! { s = State(base: firedAt, readAt: .now) }
        }
    }
}

/// The channels of the settings, built once (token files read, URLs checked: a bad one stops the start).
final class NotifyChannels: Sendable {
    let mail: SendmailChannel?
    let hooks: [String: WebhookChannel]
    let from: String

    init(settings: NotifySettings) throws(ChannelConfigurationError) {
        mail = try settings.mail.map { (s) throws(ChannelConfigurationError) in try SendmailChannel(s) }
        var hooks: [String: WebhookChannel] = [:]
        for (name, hook) in settings.webhooks {
            do {
                hooks[name] = try WebhookChannel(hook)
            } catch {
                for built in hooks.values { try? built.syncShutdown() }
                throw ChannelConfigurationError("webhook \"\(name)\": \(error.description)")
            }
        }
        self.hooks = hooks
        from = settings.from
    }

    /// Sends one stored message by its channel; blocks until the channel's answer or timeout.
    func deliver(_ message: NotifyMessage) -> DeliveryOutcome {
        if message.channel == NotifySettings.emailChannel {
            guard let mail else { return .permanent(reason: "e-mail is switched off (\"mail\": false)") }
            return mail.deliver(rendered: message.body, from: from, to: message.destination)
        }
        let name = String(message.channel.dropFirst("webhook:".count))
        guard message.channel.hasPrefix("webhook:"), let hook = hooks[name] else {
            return .permanent(reason: "no channel \(message.channel) in notify.json")
        }
        return hook.deliver(body: message.body, alertIDs: message.alertIDs, messageID: message.messageID)
    }

    func shutdown() {
        for hook in hooks.values { try? hook.syncShutdown() }
    }
}

/// One channel's delivery thread: sends the channel's due messages one at a time, oldest first, and records each
/// outcome as the retry policy decides (delivered, retry at, failed). Woken when a digest is stored; otherwise it
/// looks again at its next retry or every second.
final class ChannelSender: @unchecked Sendable {
    let channel: String
    private let channels: NotifyChannels
    private let store: any NotifyStoring
    private let settings: NotifySettings
    private let maySend: @Sendable () -> Bool
    private let clock: any WorkerClock
    private let metrics: WorkerMetrics
    private let logger: Logger
    private let signal = DispatchSemaphore(value: 0)
    private let stopFlag = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    private let failures = LogThrottle()

    init(
        channel: String, channels: NotifyChannels, store: any NotifyStoring, settings: NotifySettings,
        clock: any WorkerClock, metrics: WorkerMetrics, logger: Logger, maySend: @escaping @Sendable () -> Bool
    ) {
        self.maySend = maySend
        self.channel = channel
        self.channels = channels
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    func start() {
        // `send.email`, `send.<webhook name>` where the OS shows it (docs/operations.md, "Which thread is busy").
        let shortName = channel.hasPrefix("webhook:") ? String(channel.dropFirst("webhook:".count)) : channel
        NamedThread.start("sameday.send.\(shortName)") { [self] in
            defer { done.signal() }
            while !stopFlag.isRequested {
                let wait: Duration
                do {
                    wait = try sendDue()
                } catch {
                    logger.error("notify: the store refused a delivery mark", metadata: ["error": "\(error)"])
                    wait = .seconds(1)
                }
                if wait > .zero { _ = signal.wait(timeout: .now() + .milliseconds(Int(wait.secondsValue * 1000))) }
            }
        }
    }

    func wake() { signal.signal() }

    /// Asks the thread to stop after the message in hand (bounded by the channel's timeout) and waits for it.
    func stop() {
        stopFlag.request()
        signal.signal()
        done.wait()
    }

    /// Sends what is due; returns how long to wait before looking again.
    private func sendDue() throws -> Duration {
        let now = clock.now()
        let due = try store.dueMessages(at: now, channel: channel, limit: 50)
        for message in due {
            if stopFlag.isRequested || !maySend() { return .seconds(1) }
            let outcome = channels.deliver(message)
            let attempt = message.attempts + 1
            switch settings.retry.decide(attempt: attempt, outcome: outcome, at: clock.now()) {
            case .delivered:
                try store.markDelivered(seq: message.seq, attempts: attempt)
                metrics.increment(.notifyDeliveriesTotal, "delivered")
            case .retry(let at):
                try store.markRetry(seq: message.seq, attempts: attempt, nextAttemptAt: at, error: outcome.reason ?? "")
                metrics.increment(.notifyDeliveriesTotal, "retry")
                if failures.allows(at: SystemClock().now()) {
                    logger.warning(
                        "notify: delivery will be retried (at most one line a minute per channel)",
                        metadata: [
                            "channel": "\(channel)", "recipient": "\(message.recipient)", "attempt": "\(attempt)",
                            "retry_at": "\(at)", "reason": "\(outcome.reason ?? "")",
                        ])
                }
            case .failed(let reason, let attempts):
                try store.markFailed(seq: message.seq, attempts: attempts, error: reason)
                metrics.increment(.notifyDeliveriesTotal, "failed")
                logger.error(
                    "notify: message moved to the failed-deliveries outbox (sameday notify failed list|retry)",
                    metadata: [
                        "channel": "\(channel)", "recipient": "\(message.recipient)", "message.seq": "\(message.seq)",
                        "attempts": "\(attempts)", "reason": "\(reason)",
                    ])
            }
        }
        if due.count == 50 { return .zero }
        guard let next = try store.nextAttemptAt(channel: channel) else { return .seconds(1) }
        return .seconds(min(1, max(0, next - clock.now())))
    }
}

/// The part of `sameday notify` in the consume loop: its queue, into `NotifyLoop`.
private final class NotifyConsumer: ConsumeLoopParticipant {
    let role = "notify"
    let loop: NotifyLoop
    let source: String
    let topology: SameDayTopology
    let prefetch: UInt16
    let connection: ConnectionConfiguration
    let lease: (lease: ShardLease, epoch: Int64)?
    let logger: Logger

    init(
        loop: NotifyLoop, queue: String, topology: SameDayTopology, prefetch: UInt16,
        connection: ConnectionConfiguration, lease: (lease: ShardLease, epoch: Int64)?, logger: Logger
    ) {
        self.lease = lease
        self.loop = loop
        self.source = queue
        self.topology = topology
        self.prefetch = prefetch
        self.connection = connection
        self.logger = logger
    }

    func subscribe() throws(AMQPError) -> Consumer {
        try consumeDeclaring(
            NotifyQueue.declarations(topology: topology, queue: source), queue: source, connection: connection,
            prefetch: prefetch, role: role, logger: logger)
    }

    func stepWithoutConsumer() throws {
        try checkLease()
        try loop.step(consumer: nil)
    }
    func waitBeforeNextDelivery() -> Duration { loop.waitBeforeNextDelivery() }
    func handle(_ delivery: Delivery) { loop.handle(delivery) }

    /// Deliveries in hand on the old channel will come again: drop them uncommitted (what was recorded stays
    /// recorded, and a redelivered alert is not owed twice).
    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool {
        loop.dropUncommitted()
        return false
    }

    func step(consumer: Consumer, idle: Bool) throws {
        try checkLease()
        try loop.step(consumer: consumer)
    }

    /// A lease no longer held means a standby may serve now: stop before recording or sending more (the fenced
    /// writes would be refused anyway); the deliveries in hand are redelivered to the new holder.
    private func checkLease() throws {
        guard let lease, let reason = lease.lease.lostReason else { return }
        logger.error("notify lease lost: stopping", metadata: ["reason": "\(reason)"])
        (loop.store as? PostgresNotifyStore)?.abandon("lease lost: \(reason)")
        throw LeaseLost(shard: source, heldEpoch: lease.epoch, currentEpoch: nil)
    }

    func finish(consumer: Consumer?) throws {
        try checkLease()
        try loop.commit(consumer: consumer)
        logger.info("notify stopped", metadata: ["queues": "\(loop.planner.queueCount)"])
    }
}

/// The state and the work of `sameday notify` apart from the consume loop and the channels.
final class NotifyLoop {
    let settings: NotifySettings
    let domain: Configuration
    let store: any NotifyStoring
    let clock: any WorkerClock
    let alertsClock: AlertsClock?
    let metrics: WorkerMetrics
    let logger: Logger
    private(set) var planner: NotifyPlanner
    private let wake: () -> Void
    private var machine: BatchingStateMachine<ContinuousClock.Instant>
    private var batch: [(alertID: String, json: String, recipients: [String], alert: Alert)] = []
    private var pendingTag: DeliveryTag?
    private var lastMaintenance = ContinuousClock.now - .seconds(3600)
    private var lastSummaryCheck = ContinuousClock.now - .seconds(3600)
    private let refusalLog = LogThrottle()

    init(
        settings: NotifySettings, domain: Configuration, store: any NotifyStoring, clock: any WorkerClock,
        alertsClock: AlertsClock?, metrics: WorkerMetrics, logger: Logger, wake: @escaping () -> Void
    ) throws {
        let started = Date()
        self.settings = settings
        self.domain = domain
        self.store = store
        self.clock = clock
        self.alertsClock = alertsClock
        self.metrics = metrics
        self.logger = logger
        self.wake = wake
        machine = BatchingStateMachine(
            settings: .init(
                batchSize: settings.batchSize, batchDelay: .milliseconds(settings.batchDelayMilliseconds),
                pollInterval: .milliseconds(500)))
        planner = NotifyPlanner(settings: settings, domain: domain)
        let owed = try store.owed()
        let unreadable = planner.restore(states: try store.recipientStates(), owed: owed)
        if !planner.unreachable.isEmpty {
            logger.warning(
                "notify: people in alerting.json whom no channel reaches (no e-mail address, no chat in notify.json); they get nothing",
                metadata: ["people": "\(planner.unreachable.joined(separator: ", "))"])
        }
        logger.info(
            "notify state loaded",
            metadata: [
                "owed": "\(owed.count)", "unreadable_owed": "\(unreadable)", "queues": "\(planner.queueCount)",
                "seconds": "\(Date().timeIntervalSince(started))",
            ])
        // Digests that came due while the notifier was down go out now.
        try takeDigests()
        try refreshGauges()
    }

    func waitBeforeNextDelivery() -> Duration {
        let nextDigest: Duration? = planner.nextDueAt().map { .seconds(max(0, $0 - clock.now())) }
        switch machine.next(now: .now, otherChanges: false, nextTimer: nextDigest) {
        case .commit: return .zero
        case .wait(let duration): return duration
        }
    }

    func handle(_ delivery: Delivery) {
        let alert: Alert
        switch AlertDelivery.read(delivery) {
        case .success(let read): alert = read
        case .failure(let refusal):
            refuse(delivery, code: refusal.code, reason: refusal.reason)
            return
        }
        guard let recipients = planner.recipients(of: alert) else {
            refuse(delivery, code: "unknown_unit", reason: "unit \(alert.unit) is not in units.csv")
            return
        }
        alertsClock?.observe(alert.firedAt)
        batch.append((alert.alertId, alert.jsonLine(), recipients, alert))
        pendingTag = delivery.tag
        machine.delivered(at: .now)
    }

    /// Not an alert this notifier can deliver: dead-lettered (`sameday.dead`), counted, logged once a minute.
    private func refuse(_ delivery: Delivery, code: String, reason: String) {
        metrics.increment(.notifyRefusalsTotal, code)
        refusals.append(delivery.tag)
        machine.delivered(at: .now)
        if refusalLog.allows(at: SystemClock().now()) {
            logger.warning(
                "notify: delivery dead-lettered (at most one line a minute; see sameday_notify_refusals_total)",
                metadata: [
                    "amqp.routing_key": "\(Printable.escaped(delivery.routingKey, limit: 200))",
                    "refusal": "\(code)", "reason": "\(Printable.escaped(reason, limit: 300))",
                ])
        }
    }
    private var refusals: [DeliveryTag] = []

    func dropUncommitted() {
        batch.removeAll()
        refusals.removeAll()
        pendingTag = nil
        machine.committed()
    }

    /// After each delivery or wait: commit the batch when due, take the digests that are due, prune hourly.
    func step(consumer: Consumer?) throws {
        if machine.next(now: .now, otherChanges: false) == .commit { try commit(consumer: consumer) }
        try takeDigests()
        if settings.dailySummary != nil, ContinuousClock.now - lastSummaryCheck >= .seconds(1) {
            lastSummaryCheck = .now
            try takeSummaries()
        }
        if ContinuousClock.now - lastMaintenance >= .seconds(600) {
            lastMaintenance = .now
            let now = clock.now()
            planner.dropIdle(at: now)
            let pruned = try store.prune(before: now - Int64(settings.retentionDays) * 86_400)
            if pruned > 0 { metrics.increment(.prunedRowsTotal, by: pruned) }
            try refreshGauges()
        }
    }

    /// Records what the batch makes owed, in one transaction, then acks it (and rejects the refused deliveries, so
    /// the queue dead-letters them).
    func commit(consumer: Consumer?) throws {
        let alerts = batch
        let tag = pendingTag
        let refused = refusals
        batch.removeAll(keepingCapacity: true)
        refusals.removeAll()
        pendingTag = nil
        machine.committed()
        if !alerts.isEmpty {
            let started = ContinuousClock.now
            let owed = try store.recordOwed(alerts.map { ($0.alertID, $0.json, $0.recipients) }, at: clock.now())
            try store.trackOverdue(
                opened: alerts.filter { $0.alert.level == .overdue || $0.alert.level == .escalated }.map {
                    ($0.alert.unit, $0.alert.dossier, $0.json)
                },
                closed: alerts.filter { $0.alert.level == .cleared || $0.alert.level == .resolvedLate }.map {
                    ($0.alert.unit, $0.alert.dossier)
                }, at: clock.now())
            if let alertsClock { try store.saveClock(alertsClock.now()) }
            metrics.observeCommit(seconds: (ContinuousClock.now - started).secondsValue)
            let byID = Dictionary(alerts.map { ($0.alertID, $0.alert) }, uniquingKeysWith: { a, _ in a })
            for row in owed {
                if let alert = byID[row.alertID] { planner.add(row, alert: alert) }
            }
            metrics.increment(.notifyAlertsTotal, by: alerts.count)
            metrics.increment(.notifyOwedTotal, by: owed.count)
            metrics.set(.notifyQueues, Double(planner.queueCount))
        }
        guard let consumer else { return }
        for r in refused { _ = try consumer.reject(r, requeue: false) }
        if let tag { _ = try consumer.ack(tag, multiple: true) }
    }

    /// Stores every digest that is due, then wakes the channels.
    private func takeDigests() throws {
        guard let next = planner.nextDueAt(), next <= clock.now() else { return }
        let now = clock.now()
        let planned = planner.takeDue(at: now)
        for p in planned {
            try store.commitDigest(
                recipient: p.recipient, throughSeq: p.throughSeq, at: now, messages: p.messages,
                lastSentAt: p.lastSentAt, openEscalations: p.openEscalations)
        }
        guard !planned.isEmpty else { return }
        metrics.increment(.notifyDigestsTotal, by: planned.count)
        metrics.set(.notifyQueues, Double(planner.queueCount))
        wake()
        try refreshGauges()
    }

    /// The daily summaries due: today's figures read once from the workers' rollup files, the open overdue
    /// dossiers from the store, one summary per person, stored (once per person and day) and sent.
    private func takeSummaries() throws {
        guard let configured = settings.dailySummary else { return }
        let now = clock.now()
        let people = planner.summariesDue(at: now)
        guard !people.isEmpty else { return }
        let day = LocalDate(dayNumber: LocalTime.day(of: now))
        // Each shard's folder on its own: one that has not written today's file yet leaves the others' figures.
        var figures: [String: RollupFigures] = [:]
        var unread: [String] = []
        for root in configured.rollups {
            do {
                let period = try RollupFolder.period(rollups: [root], from: day, to: day, fields: false)
                for row in period.rollup.units {
                    figures[row.unit] = (figures[row.unit] ?? RollupFigures()) + row.figures
                }
            } catch {
                unread.append("\(error)")
            }
        }
        if !unread.isEmpty {
            logger.warning(
                "notify: daily summaries without some shards' figures",
                metadata: ["day": "\(day)", "errors": "\(unread.joined(separator: "; "))"])
        }
        var messages: [NotifyMessage] = []
        for person in people {
            let units = planner.units(of: person)
            let overdue = try store.openOverdue(units: Set(units.map(\.code))).compactMap {
                try? Alert.decode(json: Array($0.utf8))
            }
            let summary = DailySummary(
                day: day, sentAt: now, units: units.map { ($0, figures[$0.code]) }, overdue: overdue)
            messages += planner.summaryMessages(summary, to: person)
        }
        let stored = try store.storeMessages(messages)
        logger.info("notify: daily summaries", metadata: ["people": "\(people.count)", "messages": "\(stored)"])
        if stored > 0 { wake() }
    }

    private func refreshGauges() throws {
        let counts = try store.messageCounts()
        metrics.set(.notifyMessagesPending, Double(counts.pending))
        metrics.set(.notifyMessagesFailed, Double(counts.failed))
        metrics.set(.clockSeconds, Double(clock.now()))
    }
}

/// `sameday notify` as a swift-service-lifecycle `Service`, on a thread of its own like the worker
/// (`WorkerRunner`): a graceful stop commits and acks what is in hand and lets each channel finish its message.
public struct NotifyRunner: Service {
    let service: NotifyService
    let stateLock: StateLock?
    let stop: StopFlag

    public init(service: NotifyService, stateLock: StateLock? = nil, stop: StopFlag = StopFlag()) {
        self.service = service
        self.stateLock = stateLock
        self.stop = stop
    }

    public func run() async throws {
        let (service, stateLock) = (service, stateLock)
        try await runOnOwnThread(name: "sameday.notify", stop: stop, logger: Logger(label: "sameday.notify")) {
            stop in try service.run(until: stop, stateLock: stateLock)
        }
    }
}
