import SameDayStore

/// Where alerts go to the broker: `OutboxPublisher` on its own thread and connection; a recording double in tests.
protocol AlertPublishing: AnyObject {
    /// Queues alerts for the broker; returns at once.
    func send(_ alerts: [OutboxAlert])
    func send(deadLetters: [DeadLetter])
    /// What the broker confirmed since the last call.
    func takeConfirmed() -> (alerts: [String], deadLetters: [Int64])
    var hasConfirmed: Bool { get }
    /// Set when queued items could not be handed to the broker: the outbox must be read again.
    var needsResync: Bool { get }
    func resynced()
    /// Sends what is queued and waits (bounded) for the confirms.
    func finish(timeout: Duration)
}

extension OutboxPublisher: AlertPublishing {}

/// Where alerts go to the daily alert files: a shard's files thread (`RollupThread`, in the background), or
/// `ImmediateAlertFiler` on the caller's thread (`sameday sources`).
protocol AlertFiling: AnyObject {
    func file(_ alerts: [OutboxAlert]) throws
    /// Whether alert ids were appended since the last `takeFiled()`.
    var hasFiled: Bool { get }
    /// Alert ids appended to the files since the last call.
    func takeFiled() -> [String]
}

extension RollupThread: AlertFiling {}

/// Files alerts on the caller's thread, at once.
final class ImmediateAlertFiler: AlertFiling {
    let sink: AlertFileSink
    private var filed: [String] = []

    init(sink: AlertFileSink) { self.sink = sink }

    func file(_ alerts: [OutboxAlert]) throws { filed += try sink.write(alerts) }
    var hasFiled: Bool { !filed.isEmpty }
    func takeFiled() -> [String] {
        defer { filed.removeAll(keepingCapacity: true) }
        return filed
    }
}

/// The one path an alert takes after the commit that stored it in the outbox, for every service that raises alerts
/// (a worker shard, `sameday sources`):
///
/// 1. the caller commits the alert into its store's outbox, then acks the deliveries that commit covers;
/// 2. `committed(_:deadLettersStaged:)` hands it to the alert files, then to the broker;
/// 3. what the files took and the broker confirmed comes back as `Marks`, which the caller's next commit writes;
/// 4. a crash before those marks sends it again from the outbox (`fileBacklog` and `deliverOutbox` at start): the
///    files skip ids they hold and the broker's consumers dedupe by id, so nothing is lost or shown twice.
///
/// When the publisher dropped what it had queued (a broker blocked long enough to fill its queue), the whole
/// unconfirmed outbox is read and sent again. Without a publisher (in process, the soak benchmark) an alert counts
/// as published once it has been handed to the files.
///
/// Not thread-safe: it lives on the caller's consume thread, as the store's commits do.
final class AlertRelay {
    /// Delivery marks for the caller's next commit.
    struct Marks: Equatable {
        var published: [String] = []
        var filed: [String] = []
        var deadLettersSent: [Int64] = []
    }

    let store: any AlertOutboxStore
    let filer: any AlertFiling
    let publisher: (any AlertPublishing)?
    let metrics: WorkerMetrics
    /// Without a publisher: alert ids handed to the files, marked published in the next commit.
    private var publishedWithoutBroker: [String] = []
    /// Dead letters handed to the publisher and not yet confirmed (not sent twice, except after a resync).
    private var deadLettersInFlight = Set<Int64>()

    init(
        store: any AlertOutboxStore, filer: any AlertFiling, publisher: (any AlertPublishing)?, metrics: WorkerMetrics
    ) {
        self.store = store
        self.filer = filer
        self.publisher = publisher
        self.metrics = metrics
    }

    /// At start, before anything else writes the files: alerts the outbox holds from a previous run that never
    /// reached the files are appended and marked at once.
    static func fileBacklog(store: any AlertOutboxStore, files: AlertFileSink) throws {
        while true {
            let unfiled = try store.unfiledAlerts(limit: 5000)
            if unfiled.isEmpty { break }
            try store.markFiled(try files.write(unfiled))
        }
    }

    /// What the outbox still holds unconfirmed (a previous run, a broker outage) goes to the broker, marked as its
    /// confirms come in; so do its dead letters.
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
        var after: Int64 = 0
        while true {
            let page = try store.unpublishedAlerts(limit: 1000, after: after)
            guard let last = page.last, !publisher.needsResync else { break }
            publisher.send(page.map(\.alert))
            after = last.seq
        }
        try sendDeadLetters(resync: true)
    }

    /// Whether the next commit has marks to write even without a delivery (an idle service still records what the
    /// broker confirmed, or a crash would send it again).
    var hasMarks: Bool { !publishedWithoutBroker.isEmpty || publisher?.hasConfirmed == true || filer.hasFiled }

    /// The marks for the commit about to be written.
    func takeMarks() -> Marks {
        var confirmed = publisher?.takeConfirmed() ?? (alerts: [], deadLetters: [])
        confirmed.alerts += publishedWithoutBroker
        publishedWithoutBroker.removeAll(keepingCapacity: true)
        deadLettersInFlight.subtract(confirmed.deadLetters)
        return Marks(published: confirmed.alerts, filed: filer.takeFiled(), deadLettersSent: confirmed.deadLetters)
    }

    /// After the commit that stored `alerts` (and, when `deadLettersStaged`, new dead letters) is durable and its
    /// deliveries are acked: the alerts go to the files first (they are ours alone), then to the broker.
    func committed(_ alerts: [OutboxAlert], deadLettersStaged: Bool) throws {
        if !alerts.isEmpty {
            try filer.file(alerts)
            if let publisher {
                publisher.send(alerts)
            } else {
                publishedWithoutBroker += alerts.map(\.alertID)
            }
            for alert in alerts { metrics.increment(.alertsTotal, alert.level) }
        }
        if deadLettersStaged { try sendDeadLetters() }
        if publisher?.needsResync == true { try deliverOutbox() }
    }

    /// On a graceful stop: what is queued for the broker is sent and its confirms awaited (bounded).
    func finish(timeout: Duration) { publisher?.finish(timeout: timeout) }

    /// Hands the stored dead letters not yet in flight to the publisher (all of them again after a resync).
    private func sendDeadLetters(resync: Bool = false) throws {
        guard let publisher else { return }
        if resync { deadLettersInFlight.removeAll() }
        let pending = try store.pendingDeadLetters(limit: 10_000).filter { !deadLettersInFlight.contains($0.seq) }
        deadLettersInFlight.formUnion(pending.map(\.seq))
        publisher.send(deadLetters: pending)
    }
}
