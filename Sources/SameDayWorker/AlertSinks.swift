import Dispatch
import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayFiles
import SameDayFormats
import SameDayStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `alerts-YYYY-MM-DD.jsonl` per day: one line per alert, appended and fsynced per batch. After a crash between
/// the append and the outbox update, the same alerts come again; lines already in the file are not written twice.
///
/// The active worker of a shard and its standby may share the folder. Each append happens under an exclusive
/// `flock` on the day's file, after reading what others appended since and asking `mayWrite`: a worker frozen
/// between its lease check and its write (a SIGSTOP, a hung machine) holds the lock, so the new holder waits for
/// that write and then skips its lines, where it would otherwise file them a second time.
final class AlertFileSink {
    let folder: String
    /// Per day still written to: the ids in its file, and the file's size when they were read.
    private var indexByDay: [String: (ids: Set<String>, size: Int64)] = [:]
    /// Whether this process may still write (false once a worker lost its shard's lease: the new holder files
    /// the same alerts, and a line written now would be a double). Asked under the file's lock, right before each
    /// append.
    let mayWrite: @Sendable () -> Bool
    /// How long an append waits for another process's lock before failing (the files thread retries, and the
    /// shard reports the stall).
    let lockWait: Duration

    init(folder: String, lockWait: Duration = .seconds(10), mayWrite: @escaping @Sendable () -> Bool = { true }) {
        self.folder = folder
        self.lockWait = lockWait
        self.mayWrite = mayWrite
    }

    func path(day: String) -> String { AlertFiles.path(folder: folder, day: day) }

    /// Appends the alerts not yet in their day's file; returns the ids now safely on disk.
    func write(_ alerts: [OutboxAlert]) throws -> [String] {
        var byDay: [String: [OutboxAlert]] = [:]
        for alert in alerts { byDay[alert.day, default: []].append(alert) }
        for (day, list) in byDay.sorted(by: { $0.key < $1.key }) {
            let path = path(day: day)
            try DurableFile.createFolder(of: path)
            let fd = try DurableFile.openForAppending(path, mode: DurableFile.publicMode, read: true)
            defer { close(fd) }  // releases the lock, after the fsync
            try lock(fd, path: path)
            var index = try refreshedIndex(day: day, fd: fd, path: path)
            var bytes: [UInt8] = []
            for alert in list where !index.ids.contains(alert.alertID) {
                bytes += Array(alert.json.utf8)
                bytes.append(0x0A)
                index.ids.insert(alert.alertID)
            }
            if !bytes.isEmpty {
                // Not filed: the outbox keeps them unfiled for whoever holds the shard now.
                guard mayWrite() else { return [] }
                do {
                    try DurableFile.writeAll(fd, bytes, path: path)
                    try DurableFile.sync(fd, path: path)
                } catch {
                    // A full disk can leave part of the append behind: the retry reads the file again, cuts a
                    // partial last line and writes only the alerts whose lines are not whole in it.
                    indexByDay[day] = nil
                    throw error
                }
                index.size += Int64(bytes.count)
            }
            indexByDay[day] = index
        }
        // Alerts are filed by the day they fire: only the latest days are still written to (an older one is read
        // again from its file if it ever is), so the cache does not grow with history.
        if indexByDay.count > 3, let newest = indexByDay.keys.max() {
            let keep = Set(indexByDay.keys.sorted().suffix(3) + [newest])
            indexByDay = indexByDay.filter { keep.contains($0.key) }
        }
        return alerts.map(\.alertID)
    }

    /// Takes the file's exclusive lock, waiting up to `lockWait` for another process to release it.
    private func lock(_ fd: Int32, path: String) throws {
        let deadline = ContinuousClock.now + lockWait
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                throw FileError("\(path): cannot lock (\(String(cString: strerror(code))))")
            }
            guard ContinuousClock.now < deadline else {
                throw FileError(
                    "\(path): another process has held its lock for \(lockWait) (a paused worker of the same shard?)")
            }
            usleep(10_000)
        }
    }

    /// The ids in the day's file, with what was appended since they were last read (by this process or another).
    /// Called under the lock.
    private func refreshedIndex(day: String, fd: Int32, path: String) throws -> (ids: Set<String>, size: Int64) {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw FileError("\(path): cannot stat (\(String(cString: strerror(errno))))")
        }
        let size = Int64(info.st_size)
        var index = indexByDay[day] ?? (ids: [], size: 0)
        if size == index.size { return index }
        if size < index.size { index = (ids: [], size: 0) }  // replaced or cut by hand: read it all again
        var data = [UInt8](repeating: 0, count: Int(size - index.size))
        var done = 0
        while done < data.count {
            let n = data.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + done, raw.count - done, off_t(index.size) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileError("\(path): cannot read (\(String(cString: strerror(errno))))") }
            done += n
        }
        // A process killed inside write(2) can leave half a line (the kernel stops a write on SIGKILL), and its
        // lock went with it. That alert is still unfiled in the outbox and comes again: cut the fragment so lines
        // stay whole.
        if let last = data.last, last != 0x0A {
            let keep = (data.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
            try DurableFile.truncate(fd, to: index.size + Int64(keep), path: path)
            data.removeSubrange(keep...)
        }
        // Every line starts with {"alertId":"<id>" (the core writes keys in a fixed order).
        let prefix = Array("{\"alertId\":\"".utf8)
        for line in data.split(separator: 0x0A) where line.starts(with: prefix) {
            let rest = line.dropFirst(prefix.count)
            if let end = rest.firstIndex(of: UInt8(ascii: "\"")) {
                index.ids.insert(String(decoding: rest[rest.startIndex..<end], as: UTF8.self))
            }
        }
        index.size += Int64(data.count)
        return index
    }
}

/// The worker's publishing connection, on a thread of its own: alerts to `sameday.alerts` (key
/// `<level>.<block>.<unit>`) and refused events to `sameday.dead` with the reason in a header. Both come from the
/// store's outboxes, so the consume thread never waits on the broker: a blocked broker (memory or disk alarm), a
/// reconnect or a slow confirm holds this thread only, while the consumer keeps its heartbeats and the group
/// commit goes on. Confirms come back through `takeConfirmed()`, to be marked in the next commit. Separate from
/// the consuming connection, as docs/architecture.md §5 advises; idle, it keeps servicing its heartbeats.
final class OutboxPublisher: Sendable {
    enum Item: Sendable {
        case alert(OutboxAlert)
        case deadLetter(DeadLetter)
    }

    private struct Shared {
        var queued: [Item] = []
        var confirmedAlerts: [String] = []
        var confirmedDeadLetters: [Int64] = []
        var needsResync = false
        var stopRequested = false
        var finished = false
    }
    private let shared = Mutex(Shared())
    private let connection: ConnectionConfiguration
    private let topology: SameDayTopology
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let done = DispatchSemaphore(value: 0)

    /// Whether this process may still publish (see `AlertFileSink.mayWrite`).
    private let mayPublish: @Sendable () -> Bool

    init(
        connection: ConnectionConfiguration, topology: SameDayTopology, metrics: WorkerMetrics, logger: Logger,
        mayPublish: @escaping @Sendable () -> Bool = { true }
    ) {
        self.mayPublish = mayPublish
        var connection = connection
        // Give up a connection attempt quickly: the outboxes keep what could not go out, and we try again.
        connection.reconnect.maximumAttempts = 2
        self.connection = connection
        self.topology = topology
        self.metrics = metrics
        self.logger = logger
        NamedThread.start("sameday.outbox") { [self] in self.run() }
    }

    /// The most items queued for the thread: the queue is only a copy of the store's outboxes, so past it the queue
    /// is dropped and the outboxes read again once the broker takes messages (a blocked broker must not make the
    /// worker's memory grow).
    static let maxQueued = 50_000

    /// Queues alerts (or dead letters) for the broker; returns at once.
    func send(_ alerts: [OutboxAlert]) {
        guard !alerts.isEmpty else { return }
        enqueue(alerts.map(Item.alert))
    }

    func send(deadLetters: [DeadLetter]) {
        guard !deadLetters.isEmpty else { return }
        enqueue(deadLetters.map(Item.deadLetter))
    }

    private func enqueue(_ items: [Item]) {
        shared.withLock { state in
            if state.queued.count + items.count > Self.maxQueued {
                state.queued.removeAll()
                state.needsResync = true
            } else {
                state.queued += items
            }
        }
    }

    /// What the broker confirmed since the last call.
    func takeConfirmed() -> (alerts: [String], deadLetters: [Int64]) {
        shared.withLock { state in
            defer {
                state.confirmedAlerts.removeAll(keepingCapacity: true)
                state.confirmedDeadLetters.removeAll(keepingCapacity: true)
            }
            return (state.confirmedAlerts, state.confirmedDeadLetters)
        }
    }

    /// Whether the broker confirmed anything not yet taken (the next commit marks it published).
    var hasConfirmed: Bool {
        shared.withLock { !$0.confirmedAlerts.isEmpty || !$0.confirmedDeadLetters.isEmpty }
    }

    /// Set when queued items could not be handed to the broker: the outboxes must be read again.
    var needsResync: Bool { shared.withLock { $0.needsResync } }
    func resynced() { shared.withLock { $0.needsResync = false } }

    /// On a graceful stop: sends what is queued and waits (bounded) for the confirms, then closes the connection.
    /// Idempotent: the worker also calls it on its way out after a failure, so the thread never outlives it.
    func finish(timeout: Duration) {
        let alreadyDone = shared.withLock { state -> Bool in
            defer { state.stopRequested = true }
            return state.finished
        }
        if alreadyDone { return }
        let seconds = Double(timeout.components.seconds) + 1
        if done.wait(timeout: .now() + seconds) == .timedOut {
            logger.warning("stopping with unconfirmed alerts; they will be sent again")
        } else {
            done.signal()  // a later call returns at once
        }
    }

    // MARK: The publishing thread

    private func run() {
        var publisher: Publisher?
        var retryAfter = ContinuousClock.now
        // message id → what it settles, in publishing order (a dead letter keeps its event's message id).
        var settles: [String: [Item]] = [:]
        var stopDeadline: ContinuousClock.Instant?
        defer {
            publisher?.close()
            shared.withLock { $0.finished = true }
            done.signal()
        }
        func settled(_ messageID: String) {
            // In place: a list copied out of the dictionary was copied again by its first change (both held it).
            guard let index = settles.index(forKey: messageID), !settles.values[index].isEmpty else { return }
            let item = settles.values[index].removeFirst()
            if settles.values[index].isEmpty { settles.remove(at: index) }
            shared.withLock { state in
                switch item {
                case .alert(let alert): state.confirmedAlerts.append(alert.alertID)
                case .deadLetter(let letter): state.confirmedDeadLetters.append(letter.seq)
                }
            }
        }
        func drop(_ error: any Error) {
            logger.warning(
                "alerts publisher failed; the outbox keeps what is unconfirmed", metadata: ["error": "\(error)"])
            publisher?.close()
            publisher = nil
            settles.removeAll()
            retryAfter = ContinuousClock.now + .seconds(2)
            shared.withLock {
                $0.queued.removeAll()
                $0.needsResync = true
            }
        }
        while true {
            let (batch, stopping) = shared.withLock { state in
                defer { state.queued.removeAll(keepingCapacity: true) }
                return (state.queued, state.stopRequested)
            }
            if stopping && stopDeadline == nil { stopDeadline = ContinuousClock.now + .seconds(5) }
            // A worker that lost its lease sends nothing more: the new holder publishes the same outbox rows.
            if !batch.isEmpty && !mayPublish() {
                sleep(milliseconds: 50)
                continue
            }
            if let stopDeadline, batch.isEmpty,
                (publisher?.unconfirmedCount ?? 0) == 0 || ContinuousClock.now >= stopDeadline
            {
                return
            }
            if publisher == nil && (!batch.isEmpty || stopping) {
                if stopping && batch.isEmpty { return }
                guard ContinuousClock.now >= retryAfter else {
                    shared.withLock { $0.needsResync = true }
                    sleep(milliseconds: 50)
                    continue
                }
                do {
                    let made = try Publisher(
                        PublisherConfiguration(connection: connection, confirmTimeout: .seconds(10)))
                    made.onSettlement = { settlement in
                        switch settlement {
                        case .confirmed(let id), .unroutable(let id, _, _): settled(id)
                        }
                    }
                    publisher = made
                } catch {
                    drop(error)
                    continue
                }
            }
            guard let active = publisher else {
                sleep(milliseconds: 50)
                continue
            }
            do {
                var messages: [OutboundMessage] = []
                messages.reserveCapacity(batch.count)
                for item in batch {
                    let message: OutboundMessage
                    switch item {
                    case .alert(let alert):
                        message = OutboundMessage(
                            exchange: topology.alertsExchange, routingKey: alert.routingKey,
                            body: Array(alert.json.utf8), messageID: alert.alertID, headers: [("level", alert.level)],
                            mandatory: false)
                        settles[alert.alertID, default: []].append(item)
                    case .deadLetter(let letter):
                        message = OutboundMessage(
                            exchange: topology.deadLetterExchange, routingKey: letter.routingKey, body: letter.body,
                            messageID: letter.messageID,
                            headers: [
                                ("x-sameday-reason", String(letter.reason.prefix(1000))),
                                ("x-sameday-refusal", letter.refusal), ("x-sameday-queue", letter.queue),
                                ("x-sameday-routing-key", letter.routingKey),
                            ],
                            mandatory: false)
                        settles[letter.messageID, default: []].append(item)
                    }
                    messages.append(message)
                }
                try active.publish(contentsOf: messages)
                metrics.set(.outboxInFlight, Double(active.unconfirmedCount))
                // Idle or not, a library call every turn keeps the heartbeats and reads the confirms.
                try active.serviceConnection(timeout: batch.isEmpty ? .milliseconds(50) : .zero)
            } catch {
                drop(error)
            }
        }
    }

    private func sleep(milliseconds: Int) { Thread.sleep(forTimeInterval: Double(milliseconds) / 1000) }
}
