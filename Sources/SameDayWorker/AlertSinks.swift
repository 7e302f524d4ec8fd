import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayStore

#if canImport(Glibc)
    import Glibc
#endif

/// `alerts-YYYY-MM-DD.jsonl` per day: one line per alert, appended and fsynced per batch. After a crash between
/// the append and the outbox update, the same alerts come again; lines already in the file are not written twice.
final class AlertFileSink {
    let folder: String
    private var idsByDay: [String: Set<String>] = [:]

    init(folder: String) { self.folder = folder }

    func path(day: String) -> String { (folder as NSString).appendingPathComponent("alerts-\(day).jsonl") }

    /// Appends the alerts not yet in their day's file; returns the ids now safely on disk.
    func write(_ alerts: [OutboxAlert]) throws -> [String] {
        var byDay: [String: [OutboxAlert]] = [:]
        for alert in alerts { byDay[alert.day, default: []].append(alert) }
        for (day, list) in byDay.sorted(by: { $0.key < $1.key }) {
            var known = try knownIDs(day: day)
            var bytes: [UInt8] = []
            for alert in list where !known.contains(alert.alertID) {
                bytes += Array(alert.json.utf8)
                bytes.append(0x0A)
                known.insert(alert.alertID)
            }
            if !bytes.isEmpty { try AtomicFile.append(bytes, to: path(day: day)) }
            idsByDay[day] = known
        }
        return alerts.map(\.alertID)
    }

    private func knownIDs(day: String) throws -> Set<String> {
        if let known = idsByDay[day] { return known }
        var known = Set<String>()
        if var data = FileManager.default.contents(atPath: path(day: day)) {
            // A process killed inside write(2) can leave half a line (the kernel stops a write on SIGKILL). That
            // alert is still unfiled in the outbox and comes again: cut the fragment so lines stay whole.
            if let last = data.last, last != 0x0A {
                let keep = (data.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
                guard truncate(path(day: day), off_t(keep)) == 0 else {
                    throw AtomicFile.WriteError(description: "\(path(day: day)): cannot cut a partial last line")
                }
                data = data.prefix(keep)
            }
            // Every line starts with {"alertId":"<id>" (the core writes keys in a fixed order).
            let prefix = Array("{\"alertId\":\"".utf8)
            for line in data.split(separator: 0x0A) where line.starts(with: prefix) {
                let rest = line.dropFirst(prefix.count)
                if let end = rest.firstIndex(of: UInt8(ascii: "\"")) {
                    known.insert(String(decoding: rest[rest.startIndex..<end], as: UTF8.self))
                }
            }
        }
        return known
    }
}

/// The worker's publishing connection: alerts to `sameday.alerts` (key `<level>.<block>.<unit>`) and events that
/// cannot be processed to `sameday.dead` with the reason in a header. Separate from the consuming connection, as
/// RABBITMQ.md advises. Connects lazily and again after failures, never blocking the consume loop for long.
final class WorkerPublisher {
    private let connection: ConnectionConfiguration
    private let topology: SameDayTopology
    private let logger: Logger
    private var publisher: Publisher?
    private var retryAfter: ContinuousClock.Instant?

    init(connection: ConnectionConfiguration, topology: SameDayTopology, logger: Logger) {
        var connection = connection
        // Give up quickly: the outbox keeps what could not go out, and the next flush tries again.
        connection.reconnect.maximumAttempts = 2
        self.connection = connection
        self.topology = topology
        self.logger = logger
    }

    private func ready() throws(AMQPError) -> Publisher {
        if let publisher { return publisher }
        if let retryAfter, ContinuousClock.now < retryAfter {
            throw AMQPError(.connectionFailed, "alerts publisher waiting to reconnect", isRetriable: true)
        }
        do {
            let made = try Publisher(PublisherConfiguration(connection: connection, confirmTimeout: .seconds(10)))
            made.onSettlement = { [weak self] settlement in
                switch settlement {
                case .confirmed(let id), .unroutable(let id, _, _): self?.confirmed.append(id)
                }
            }
            publisher = made
            retryAfter = nil
            return made
        } catch {
            retryAfter = ContinuousClock.now + .seconds(2)
            throw error
        }
    }

    /// Alert ids the broker confirmed since the last `takeConfirmed()`.
    private var confirmed: [String] = []
    /// Set when alerts could not be handed to the broker: the outbox must be read again once it is back.
    private(set) var needsResync = false

    /// Hands alerts to the broker without waiting for its confirms (they arrive in `takeConfirmed()`); the window
    /// of the publisher bounds what is in flight. When the broker is away they stay in the outbox.
    func send(_ alerts: [OutboxAlert]) {
        guard !alerts.isEmpty else { return }
        do {
            let publisher = try ready()
            for alert in alerts {
                try publisher.publish(
                    OutboundMessage(
                        exchange: topology.alertsExchange, routingKey: alert.routingKey, body: Array(alert.json.utf8),
                        messageID: alert.alertID, headers: [("level", alert.level)], mandatory: false))
            }
        } catch {
            logger.warning("alerts not published yet; they stay in the outbox", metadata: ["error": "\(error)"])
            dropPublisher()
        }
    }

    /// Confirmed alert ids since the last call (reading whatever confirms have arrived, without blocking).
    func takeConfirmed() -> [String] {
        if let publisher, publisher.unconfirmedCount > 0 {
            do { try publisher.pollConfirms() } catch {
                logger.warning("alerts publisher failed", metadata: ["error": "\(error)"])
                dropPublisher()
            }
        }
        defer { confirmed.removeAll(keepingCapacity: true) }
        return confirmed
    }

    /// Waits (bounded) for every alert in flight to be confirmed: on a graceful stop.
    func finish(timeout: Duration) {
        guard let publisher else { return }
        do { try publisher.waitForConfirms(timeout: timeout) } catch {
            logger.warning("stopping with unconfirmed alerts; they will be sent again", metadata: ["error": "\(error)"])
        }
    }

    /// Called once a resync from the outbox has been done.
    func resynced() { needsResync = false }

    private func dropPublisher() {
        publisher?.close()
        publisher = nil
        needsResync = true
    }

    /// Sends one delivery to the dead-letter exchange with `reason`, and waits for the broker's confirm.
    func deadLetter(_ delivery: Delivery, queue: String, reason: String) throws(AMQPError) {
        let publisher = try ready()
        do {
            try publisher.publish(
                OutboundMessage(
                    exchange: topology.deadLetterExchange, routingKey: delivery.routingKey, body: delivery.body,
                    messageID: delivery.messageID ?? "",
                    headers: [
                        ("x-sameday-reason", String(reason.prefix(1000))), ("x-sameday-queue", queue),
                        ("x-sameday-routing-key", delivery.routingKey),
                    ],
                    mandatory: false))
            try publisher.waitForConfirms(timeout: .seconds(10))
        } catch {
            dropPublisher()
            throw error
        }
    }

    func close() {
        publisher?.close()
        publisher = nil
    }
}
