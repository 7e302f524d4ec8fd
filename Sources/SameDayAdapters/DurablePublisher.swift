import Foundation
import Logging
import RabbitMQ
import SameDayBroker
import SameDayCore

/// Publishes canonical events with confirms and falls back to the durable spool, so that an event is either
/// confirmed by the broker or fsynced to disk before the caller is told it is safe ("durable").
///
/// - Broker reachable: publish (persistent, mandatory, confirms); `onDurable` fires when the broker confirms.
/// - Broker unreachable, or blocked by an alarm beyond `blockedTimeout`: everything still unconfirmed and every
///   later event goes to the spool in order; `onDurable` fires after the fsync. Every `retryInterval` it tries the
///   broker again; once back it flushes the spool first, then publishes new events, so order is kept.
/// - A refusal that retrying cannot fix (403 access refused, 404 no exchange) is thrown to the caller.
///
/// Confined to one thread (it owns a `Publisher`): run it inside `BlockingThread.run` or a thread of its own.
public final class DurablePublisher {
    /// How an event became safe.
    public enum Outcome: Sendable, Equatable {
        case confirmed
        case spooled
        /// The broker confirmed it but no queue took it (no binding and no alternate exchange).
        case unroutable(String)
    }

    public let publisherConfiguration: PublisherConfiguration
    public let spool: Spool
    public let configuration: Configuration
    public let names: SameDayProducerNames
    public var retryInterval: Duration
    /// Called with the caller's token once each submitted event is confirmed or spooled.
    public var onDurable: ((Int, Outcome) -> Void)?
    private let logger: Logger
    private var publisher: Publisher?
    private var spooling = false
    private var lastAttempt: ContinuousClock.Instant?
    /// Unconfirmed events: token → (event, message id); `tokensByID` finds a settled message's oldest token.
    private var inflight: [Int: DossierEvent] = [:]
    private var tokensByID: [String: [Int]] = [:]
    /// Events waiting for one fsync (spool mode batches them).
    private var spoolBuffer: [(token: Int, event: DossierEvent)] = []
    public private(set) var confirmedCount = 0
    public private(set) var spooledCount = 0
    public private(set) var flushedCount = 0

    public init(
        publisher: PublisherConfiguration, spool: Spool, configuration: Configuration, names: SameDayProducerNames,
        retryInterval: Duration = .seconds(5), logger: Logger = Logger(label: "sameday.adapter")
    ) {
        self.publisherConfiguration = publisher
        self.spool = spool
        self.configuration = configuration
        self.names = names
        self.retryInterval = retryInterval
        self.logger = logger
    }

    /// Whether events currently go to the spool.
    public var isSpooling: Bool { spooling }

    /// Hands over one event. Throws `SpoolError` when the spool must take it and is full, or a non-retriable
    /// `AMQPError` (the event is then neither published nor spooled).
    public func submit(_ event: DossierEvent, message: OutboundMessage? = nil, token: Int) throws {
        if spooling, shouldRetry() { try reconnectAndFlush() }
        if spooling {
            spoolBuffer.append((token, event))
            if spoolBuffer.count >= 1000 { try writeSpoolBuffer() }
            return
        }
        if publisher == nil {
            try reconnectAndFlush()
            if spooling { return try submit(event, message: message, token: token) }
        }
        inflight[token] = event
        tokensByID[event.eventId, default: []].append(token)
        do {
            try publisher!.publish(
                message ?? EventMessage.make(event, configuration: configuration, names: names))
        } catch {
            try fallBack(after: error)
        }
    }

    /// Waits until every submitted event is durable (confirmed, or spooled after a failure).
    public func drain() throws {
        if spooling, shouldRetry() { try reconnectAndFlush() }
        if let publisher, !inflight.isEmpty {
            do {
                try publisher.waitForConfirms()
            } catch {
                try fallBack(after: error)
            }
        }
        try writeSpoolBuffer()
    }

    /// Publishes what the spool holds (in order) if the broker is reachable; returns how many went out.
    @discardableResult
    public func flushSpool() throws -> Int {
        try drain()
        if spooling || publisher == nil { try reconnectAndFlush() }
        return flushedCount
    }

    /// For an idle caller: if the spool holds events and the retry interval has passed, tries the broker and
    /// flushes. Never throws for an unreachable broker (it just stays in spool mode).
    public func retryIfDue() throws {
        guard spooling || spool.status.pendingEvents > 0, shouldRetry() else { return }
        try reconnectAndFlush()
    }

    /// Forgets every event not yet durable (after the caller has reported them as failed, e.g. the spool was
    /// full), so that they are not written later on behalf of a request that was already refused.
    public func discardPending() {
        spoolBuffer.removeAll()
        if !inflight.isEmpty {
            // They may still reach the broker: harmless, the caller was told to retry and ids dedupe.
            inflight.removeAll()
            tokensByID.removeAll()
            publisher?.close()
            publisher = nil
        }
    }

    public func close() {
        publisher?.close()
        publisher = nil
    }

    // MARK: -

    private func shouldRetry() -> Bool {
        guard let lastAttempt else { return true }
        return ContinuousClock.now - lastAttempt >= retryInterval
    }

    /// Connects (if needed) and empties the spool before anything new is published; on failure, spools.
    private func reconnectAndFlush() throws {
        lastAttempt = ContinuousClock.now
        try writeSpoolBuffer()
        do {
            if publisher == nil {
                let made = try Publisher(publisherConfiguration, logger: logger)
                made.onSettlement = { [unowned self] settlement in self.settled(settlement) }
                publisher = made
            }
            let publisher = publisher!
            let flushed = try spool.flush { events in
                for event in events {
                    try publisher.publish(EventMessage.make(event, configuration: configuration, names: names))
                }
                try publisher.waitForConfirms()
            }
            if flushed > 0 {
                flushedCount += flushed
                logger.info("spool flushed to the broker", metadata: ["spool.flushed": "\(flushed)"])
            }
            spooling = false
        } catch let error as AMQPError where error.isRetriable {
            publisher?.close()
            publisher = nil
            if !spooling {
                logger.warning(
                    "broker unavailable; events go to the spool",
                    metadata: ["error": "\(error)", "spool": "\(spool.directory)"])
            }
            spooling = true
        }
    }

    private func settled(_ settlement: Settlement) {
        let id: String
        let outcome: Outcome
        switch settlement {
        case .confirmed(let messageID):
            id = messageID
            outcome = .confirmed
        case .unroutable(let messageID, let code, let text):
            id = messageID
            outcome = .unroutable("\(code) \(text)")
        }
        // Spool flushes publish events that are not in flight: nothing to report for them.
        guard var tokens = tokensByID[id], !tokens.isEmpty else { return }
        let token = tokens.removeFirst()
        tokensByID[id] = tokens.isEmpty ? nil : tokens
        inflight[token] = nil
        confirmedCount += 1
        onDurable?(token, outcome)
    }

    private func fallBack(after error: Error) throws {
        guard let amqp = error as? AMQPError, amqp.isRetriable || amqp.kind == .blocked else { throw error }
        logger.warning(
            "broker lost or blocked; unconfirmed and new events go to the spool",
            metadata: ["error": "\(amqp)", "spool": "\(spool.directory)", "spool.moved": "\(inflight.count)"])
        publisher?.close()
        publisher = nil
        spooling = true
        lastAttempt = ContinuousClock.now
        // Unconfirmed events may or may not have reached the broker: spool them all (a duplicate is harmless).
        for token in inflight.keys.sorted() { spoolBuffer.append((token, inflight[token]!)) }
        inflight.removeAll()
        tokensByID.removeAll()
        try writeSpoolBuffer()
    }

    private func writeSpoolBuffer() throws {
        guard !spoolBuffer.isEmpty else { return }
        let batch = spoolBuffer
        try spool.append(batch.map(\.event))
        spoolBuffer.removeAll(keepingCapacity: true)
        spooledCount += batch.count
        for item in batch { onDurable?(item.token, .spooled) }
    }
}
