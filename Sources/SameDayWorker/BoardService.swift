import Foundation
import Logging
import RabbitMQ
import SameDayBoard
import SameDayBroker
import SameDayCore
import SameDayFiles
import SameDayFormats
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday board`'s alert intake (docs/board.md): it builds the board's view from the alert stream alone. At
/// start, from its own state file (the alerts its view was built from) and the workers' alert files of the last
/// `alertFileDays` days; then from its own durable queue bound to `sameday.alerts`. An alert is shown to the live
/// clients as soon as it is read, and acked once the state file that holds it is written (at most a second later):
/// a SIGKILL loses nothing, and an alert read twice changes nothing.
///
/// Clock: the wall clock, or with `clock: events` the alerts' own time (for the demonstration, which replays a
/// month of 2022 in minutes): the working minutes left are counted from it.
public final class BoardService: Sendable {
    public let configuration: WorkerConfiguration
    public let settings: BoardSettings
    public let domain: Configuration
    public let metrics: WorkerMetrics
    public let hub: BoardHub
    private let clock: any WorkerClock
    private let alertsClock: AlertsClock?
    private let logger: Logger

    public init(
        configuration: WorkerConfiguration, settings: BoardSettings, domain: Configuration,
        metrics: WorkerMetrics = WorkerMetrics(), logger: Logger = Logger(label: "sameday.board")
    ) {
        self.configuration = configuration
        self.settings = settings
        self.domain = domain
        self.metrics = metrics
        self.logger = logger
        if configuration.clock == .events {
            let alerts = AlertsClock(resumingAt: nil)
            clock = alerts
            alertsClock = alerts
        } else {
            clock = GuardedWallClock.forService(
                "sameday board", maxJumpSeconds: configuration.maxClockJumpSeconds, metrics: metrics, logger: logger)
            alertsClock = nil
        }
        let clock = clock
        hub = BoardHub(
            domain: domain,
            view: BoardView(staleSeconds: Int64(domain.alerting.staleAfterDays) * 86_400),
            maxClients: settings.maxClients, now: { clock.now() })
    }

    /// The queue this board consumes.
    public var queue: String {
        BoardQueue.name(topology: SameDayTopology(shards: 1, namePrefix: configuration.namePrefix))
    }

    /// Rebuilds the view before the page is served: the state file, then the alert files, in firing order.
    /// Returns how many alerts were read from each.
    @discardableResult
    public func restore() throws -> (state: Int, files: Int) {
        let started = ContinuousClock.now
        var alerts: [Alert] = []
        let fromState = try readState(into: &alerts)
        let fromFiles = readAlertFiles(into: &alerts)
        alerts.sort { ($0.firedAt, $0.episode) < ($1.firedAt, $1.episode) }
        for alert in alerts { alertsClock?.observe(alert.firedAt) }
        hub.apply(alerts)
        hub.expire()
        _ = hub.takeUnsaved()
        try FileManager.default.createDirectory(atPath: settings.stateDirectory, withIntermediateDirectories: true)
        let compacted = try BoardJournal(path: settings.statePath, compactingTo: hub.persistentAlerts())
        journal.withLock { $0 = compacted }
        metrics.set(.boardEntries, Double(hub.entryCount))
        logger.info(
            "board state loaded",
            metadata: [
                "state_alerts": "\(fromState)", "file_alerts": "\(fromFiles)", "entries": "\(hub.entryCount)",
                "seconds": "\((ContinuousClock.now - started).secondsValue)",
            ])
        return (fromState, fromFiles)
    }

    /// The state file: one alert per line. A line that cannot be read back is skipped and logged (the alert files
    /// and the queue still hold what it said).
    private func readState(into alerts: inout [Alert]) throws -> Int {
        guard let data = FileManager.default.contents(atPath: settings.statePath) else { return 0 }
        var count = 0
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            do {
                alerts.append(try Alert.decode(json: Array(line), source: settings.statePath))
                count += 1
            } catch {
                logger.warning(
                    "board: a line of its state file cannot be read back; skipped",
                    metadata: ["file": "\(settings.statePath)", "line": "\(index + 1)", "error": "\(error)"])
            }
        }
        return count
    }

    /// The workers' alert files of the newest `alertFileDays` days (from the newest file found, so a replayed month
    /// is read as well as today's).
    private func readAlertFiles(into alerts: inout [Alert]) -> Int {
        var files: [(day: LocalDate, path: String)] = []
        for folder in settings.alertFolders {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                // A worker that never ran has no folder yet; one that exists and cannot be read is a mistake.
                if FileManager.default.fileExists(atPath: folder) {
                    logger.warning("board: cannot read an alert folder", metadata: ["folder": "\(folder)"])
                } else {
                    logger.info("board: no alert folder yet", metadata: ["folder": "\(folder)"])
                }
                continue
            }
            for name in names {
                if let day = AlertFiles.day(ofFileNamed: name) {
                    files.append((day, (folder as NSString).appendingPathComponent(name)))
                }
            }
        }
        guard let newest = files.map(\.day.dayNumber).max() else { return 0 }
        let first = newest - Int64(settings.alertFileDays) + 1
        var count = 0
        var unreadable = 0
        for file in files where file.day.dayNumber >= first {
            guard let data = FileManager.default.contents(atPath: file.path) else { continue }
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                if let alert = try? Alert.decode(json: Array(line), source: file.path) {
                    alerts.append(alert)
                    count += 1
                } else {
                    unreadable += 1
                }
            }
        }
        if unreadable > 0 {
            logger.warning(
                "board: alert file lines that are not alerts were skipped", metadata: ["lines": "\(unreadable)"])
        }
        return count
    }

    /// Consumes until `stop` is requested (on the calling thread); restores first if `restore` was not called.
    public func run(until stop: StopFlag) throws {
        if journal.withLock({ $0 == nil }) { try restore() }
        var connection = try configuration.connection(name: "sameday board")
        if let file = settings.credentialsFile { try connection.useCredentials(fromFile: file) }
        let intake = BoardIntake(service: self, alertsClock: alertsClock, connection: connection, logger: logger)
        try runConsumeLoop(intake, until: stop, metrics: metrics, logger: logger)
    }

    /// The state file, opened after `restore` (which compacts it to what the view holds).
    private let journal = Mutex<BoardJournal?>(nil)

    /// Appends the alerts taken since the last call to the state file and fsyncs it; rewrites it with only what the
    /// view holds once it has grown to several times that (so its size follows the dossiers at risk).
    func saveState() throws {
        let unsaved = hub.takeUnsaved()
        try journal.withLock { journal in
            // `run` restores first: the file is never written before it has been read.
            guard journal != nil, !unsaved.isEmpty else { return }
            if journal!.lines + unsaved.count > max(20_000, 4 * hub.entryCount) {
                try journal!.compact(to: hub.persistentAlerts())
            } else {
                try journal!.append(unsaved)
            }
        }
    }

    /// Today's figures per unit from the workers' rollup files (each shard's folder on its own).
    public func refreshFigures() {
        guard !settings.rollups.isEmpty else { return }
        let now = clock.now()
        let dayNumber = LocalTime.day(of: now)
        let day = LocalDate(dayNumber: dayNumber)
        var figures: [String: RollupFigures] = [:]
        for root in settings.rollups {
            guard let period = try? RollupFolder.period(rollups: [root], from: day, to: day, fields: false) else {
                continue
            }
            for row in period.rollup.units { figures[row.unit] = (figures[row.unit] ?? RollupFigures()) + row.figures }
        }
        hub.setFigures(figures, day: dayNumber)
    }
}

/// The board's part in the consume loop: its queue into the hub, the state file written before each ack, and the
/// chores (keep-alives, figures, expiry) once a second at most.
private final class BoardIntake: ConsumeLoopParticipant {
    let role = "board"
    let source: String
    let service: BoardService
    let alertsClock: AlertsClock?
    let connection: ConnectionConfiguration
    let logger: Logger
    private var pendingTag: DeliveryTag?
    private var refused: [DeliveryTag] = []
    private var firstPendingAt: ContinuousClock.Instant?
    private var lastKeepAlive = ContinuousClock.now
    private var lastFigures = ContinuousClock.now - .seconds(3600)
    private var lastExpiry = ContinuousClock.now
    private let refusalLog = LogThrottle()

    /// The most an alert waits for its ack (the state file is written at most this often).
    static let saveInterval = Duration.seconds(1)

    init(service: BoardService, alertsClock: AlertsClock?, connection: ConnectionConfiguration, logger: Logger) {
        self.service = service
        self.source = service.queue
        self.alertsClock = alertsClock
        self.connection = connection
        self.logger = logger
    }

    func subscribe() throws(AMQPError) -> Consumer {
        let topology = SameDayTopology(shards: 1, namePrefix: service.configuration.namePrefix)
        return try consumeDeclaring(
            BoardQueue.declarations(topology: topology, queue: source), queue: source, connection: connection,
            prefetch: 4_000, role: role, logger: logger)
    }

    func handle(_ delivery: Delivery) {
        service.metrics.increment(.boardAlertsTotal)
        defer {
            pendingTag = delivery.tag
            if firstPendingAt == nil { firstPendingAt = .now }
        }
        let alert: Alert
        switch AlertDelivery.read(delivery) {
        case .success(let read): alert = read
        case .failure(let refusal):
            refuse(delivery, code: refusal.code, reason: refusal.reason)
            return
        }
        guard alert.level == .sourceSilent || service.domain.unitID(alert.unit) != nil else {
            refuse(delivery, code: "unknown_unit", reason: "unit \(alert.unit) is not in units.csv")
            return
        }
        alertsClock?.observe(alert.firedAt)
        let before = service.hub.droppedCount
        service.hub.apply([alert])
        if service.hub.droppedCount > before { service.metrics.increment(.boardDroppedTotal) }
    }

    private func refuse(_ delivery: Delivery, code: String, reason: String) {
        service.metrics.increment(.boardRefusalsTotal, code)
        refused.append(delivery.tag)
        if refusalLog.allows(at: SystemClock().now()) {
            logger.warning(
                "board: delivery dead-lettered (at most one line a minute; see sameday_board_refusals_total)",
                metadata: [
                    "amqp.routing_key": "\(Printable.escaped(delivery.routingKey, limit: 200))",
                    "refusal": "\(code)", "reason": "\(Printable.escaped(reason, limit: 300))",
                ])
        }
    }

    func waitBeforeNextDelivery() -> Duration {
        guard let first = firstPendingAt else { return .seconds(1) }
        return max(.zero, Self.saveInterval - (ContinuousClock.now - first))
    }

    func stepWithoutConsumer() throws { chores() }

    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool {
        // The tags in hand belong to the old channel; those deliveries come again (and change nothing).
        pendingTag = nil
        refused.removeAll()
        firstPendingAt = nil
        return false
    }

    func step(consumer: Consumer, idle: Bool) throws {
        if let first = firstPendingAt, ContinuousClock.now - first >= Self.saveInterval {
            try save(consumer: consumer)
        }
        chores()
    }

    func finish(consumer: Consumer?) throws {
        try save(consumer: consumer)
        logger.info("board stopped", metadata: ["entries": "\(service.hub.entryCount)"])
    }

    /// Appends the alerts taken to the state file, then acks them and dead-letters the refused.
    private func save(consumer: Consumer?) throws {
        try service.saveState()
        defer {
            pendingTag = nil
            refused.removeAll()
            firstPendingAt = nil
        }
        guard let consumer else { return }
        for tag in refused { _ = try consumer.reject(tag, requeue: false) }
        if let tag = pendingTag { _ = try consumer.ack(tag, multiple: true) }
    }

    private func chores() {
        let now = ContinuousClock.now
        if now - lastKeepAlive >= .seconds(15) {
            lastKeepAlive = now
            service.hub.wakeAll()
        }
        if now - lastFigures >= .seconds(30) {
            lastFigures = now
            service.refreshFigures()
        }
        if now - lastExpiry >= .seconds(60) {
            lastExpiry = now
            service.hub.expire()
        }
        service.metrics.set(.boardEntries, Double(service.hub.entryCount))
        service.metrics.set(.boardClients, Double(service.hub.clientCount))
    }
}

/// The intake as a swift-service-lifecycle `Service`, on a thread of its own like the worker's.
public struct BoardRunner: Service {
    let service: BoardService
    let stop: StopFlag

    public init(service: BoardService, stop: StopFlag = StopFlag()) {
        self.service = service
        self.stop = stop
    }

    public func run() async throws {
        let service = service
        try await runOnOwnThread(name: "sameday.board", stop: stop, logger: Logger(label: "sameday.board")) { stop in
            try service.run(until: stop)
        }
    }
}

/// Ends the live streams when the service group stops, before the HTTP server's graceful shutdown waits for them.
public struct BoardStreamsCloser: Service {
    let hub: BoardHub

    public init(hub: BoardHub) { self.hub = hub }

    public func run() async throws {
        try? await gracefulShutdown()
        hub.closeAll()
    }
}

/// The board's state file (`board-alerts.jsonl`): one alert per line, appended and fsynced before the alerts are
/// acked, rewritten atomically with only what the view holds when it has grown. Reading it back in any order gives
/// the same view (`BoardView` orders alerts itself); a torn last line after a crash is skipped at start, and its
/// alert, never acked, comes again from the queue.
final class BoardJournal: @unchecked Sendable {  // used under BoardService's lock only
    let path: String
    private(set) var lines = 0
    private var descriptor: Int32

    /// Rewrites the file with `alerts`, then opens it for appending.
    init(path: String, compactingTo alerts: [Alert]) throws {
        self.path = path
        try DurableFile.writeAtomically(Self.bytes(alerts), to: path, mode: 0o640)
        descriptor = try DurableFile.openForAppending(path, mode: 0o640)
        lines = alerts.count
    }

    deinit { close(descriptor) }

    func append(_ alerts: [Alert]) throws {
        try DurableFile.writeAll(descriptor, Self.bytes(alerts), path: path)
        try DurableFile.sync(descriptor, path: path)
        lines += alerts.count
    }

    func compact(to alerts: [Alert]) throws {
        try DurableFile.writeAtomically(Self.bytes(alerts), to: path, mode: 0o640)
        close(descriptor)
        descriptor = try DurableFile.openForAppending(path, mode: 0o640)
        lines = alerts.count
    }

    static func bytes(_ alerts: [Alert]) -> [UInt8] {
        var bytes: [UInt8] = []
        for alert in alerts {
            bytes += alert.jsonLine().utf8
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }
}
