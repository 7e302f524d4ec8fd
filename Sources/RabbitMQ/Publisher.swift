import CRabbitMQ
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A message to publish. Persistent by default; `messageID` is required so that returns and consumers' dedupe can
/// name it.
public struct OutboundMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var messageID: String
    public var contentType: String?
    /// The `correlation_id` property (SameDay puts the dossier code there: the consistent-hash key).
    public var correlationID: String?
    /// String headers (SameDay uses one, `dossier`, as the consistent-hash key).
    public var headers: [(key: String, value: String)]
    public var persistent: Bool
    /// Ask the broker to return the message if no queue receives it.
    public var mandatory: Bool

    public init(
        exchange: String, routingKey: String, body: [UInt8], messageID: String,
        contentType: String? = "application/json", correlationID: String? = nil,
        headers: [(key: String, value: String)] = [], persistent: Bool = true, mandatory: Bool = true
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.messageID = messageID
        self.contentType = contentType
        self.correlationID = correlationID
        self.headers = headers
        self.persistent = persistent
        self.mandatory = mandatory
    }
}

/// What became of a published message once the broker settled it.
public enum Settlement: Sendable, Equatable {
    /// Stored by the broker (every queue it was routed to has it).
    case confirmed(messageID: String)
    /// No queue took it (`basic.return` with `mandatory`); it is confirmed but went nowhere.
    case unroutable(messageID: String, replyCode: UInt16, replyText: String)
}

/// Publisher settings. Defaults: a window of 1,000 unconfirmed messages (docs/architecture.md §5: about 10× the
/// throughput of waiting for each confirm), 60 s allowed under `connection.blocked` before `publish` reports
/// `.blocked`.
public struct PublisherConfiguration: Sendable {
    public var connection: ConnectionConfiguration
    public var confirmWindow: Int
    public var blockedTimeout: Duration
    /// How long `waitForConfirms` waits by default before it reports a timeout.
    public var confirmTimeout: Duration

    public init(
        connection: ConnectionConfiguration, confirmWindow: Int = 1000, blockedTimeout: Duration = .seconds(60),
        confirmTimeout: Duration = .seconds(30)
    ) {
        self.connection = connection
        self.confirmWindow = confirmWindow
        self.blockedTimeout = blockedTimeout
        self.confirmTimeout = confirmTimeout
    }
}

/// Publishes with publisher confirms, keeping up to `confirmWindow` messages unconfirmed.
///
/// Every message stays in memory until the broker confirms it. If the connection or channel fails, the publisher
/// reconnects (with backoff, trying each configured broker) and republishes everything unconfirmed, in order; a
/// `basic.nack` republishes that message. Consumers dedupe by message id, so a republished duplicate is harmless.
/// Confined to the thread that made it.
public final class Publisher {
    public let configuration: PublisherConfiguration
    private let logger: Logger
    private var connection: Connection?
    private static let channel: UInt16 = 1
    private var backoff: Backoff
    private var brokerIndex = 0

    /// Unconfirmed messages in delivery-tag order; `window[i]` has tag `firstTag + i`, nil once settled.
    private var window: [OutboundMessage?] = []
    private var windowHead = 0
    private var firstTag: UInt64 = 1
    private var nextTag: UInt64 = 1
    private var unsettled = 0
    /// Message ids returned by the broker whose ack has not come yet (a return precedes its ack).
    private var returned: [String: (code: UInt16, text: String)] = [:]

    /// Called on this thread for each message the broker settles.
    public var onSettlement: ((Settlement) -> Void)?
    /// Counters for metrics and tests.
    public private(set) var confirmedCount = 0
    public private(set) var unroutableCount = 0
    public private(set) var nackedCount = 0
    public private(set) var reconnectCount = 0

    /// Connects at once, so that bad credentials or a bad URL fail here rather than on the first publish.
    public init(_ configuration: PublisherConfiguration, logger: Logger = Logger(label: "sameday.amqp.publisher"))
        throws(AMQPError)
    {
        guard configuration.confirmWindow > 0 else {
            throw AMQPError(.invalidConfiguration, "confirm window must be at least 1", isRetriable: false)
        }
        self.configuration = configuration
        self.logger = logger
        self.backoff = Backoff(policy: configuration.connection.reconnect)
        try connect()
    }

    deinit {
        connection?.close()
    }

    /// Messages published but not yet confirmed (they would be republished after a reconnect).
    public var unconfirmedCount: Int { unsettled }

    /// Whether the broker has blocked this connection (memory or disk alarm).
    public var isBlocked: Bool { connection?.isBlocked ?? false }

    /// Publishes one message; returns once it is on the wire and the window has room again. Throws a retriable
    /// error if the broker stays unreachable through the backoff policy or blocked beyond `blockedTimeout`; the
    /// message is then still held and goes out with the next successful call.
    public func publish(_ message: OutboundMessage) throws(AMQPError) {
        append(message)
        try sendAppended(corked: false)
    }

    /// Publishes a burst, as `publish` does message by message, but each chunk of up to 256 is sent with the
    /// socket corked (the kernel coalesces the frames into full segments) and the confirms that arrived are read
    /// once per chunk, not once per message. When it throws, the chunks after the failing one were not taken.
    public func publish(contentsOf messages: [OutboundMessage]) throws(AMQPError) {
        var start = 0
        while start < messages.count {
            let end = min(messages.count, start + 256)
            for message in messages[start..<end] { append(message) }
            start = end
            try sendAppended(corked: true)
        }
    }

    /// Sends what was appended, waits while the window is full, and settles the confirms already in.
    private func sendAppended(corked: Bool) throws(AMQPError) {
        try ensureConnected()
        do {
            try waitWhileBlocked()
            if corked, let connection {
                try connection.corked { () throws(AMQPError) in try sendUnsent() }
            } else {
                try sendUnsent()
            }
            while unsettled >= configuration.confirmWindow {
                try readEvents(timeout: configuration.confirmTimeout, failIfNone: true)
            }
            // Settle whatever has already arrived without blocking, so callbacks come promptly.
            try readEvents(timeout: .zero, failIfNone: false)
        } catch {
            try recover(from: error)
        }
    }

    /// Waits until every published message is settled, or `timeout` passes (then a retriable `.timeout`).
    public func waitForConfirms(timeout: Duration? = nil) throws(AMQPError) {
        let limit = timeout ?? configuration.confirmTimeout
        let deadline = ContinuousClock.now + limit
        while unsettled > 0 {
            try ensureConnected()
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw AMQPError(
                    .timeout, "\(unsettled) messages still unconfirmed after \(limit)", isRetriable: true)
            }
            do {
                try sendUnsent()
                try readEvents(timeout: min(remaining, .milliseconds(500)), failIfNone: false)
            } catch {
                try recover(from: error)
            }
        }
    }

    /// Settles whatever confirms have already arrived, without waiting (for callers that publish in bursts and
    /// want their `onSettlement` callbacks between them).
    public func pollConfirms() throws(AMQPError) {
        guard unsettled > 0 else { return }
        try ensureConnected()
        do {
            try sendUnsent()
            try readEvents(timeout: .zero, failIfNone: false)
        } catch {
            try recover(from: error)
        }
    }

    /// Waits up to `timeout` for frames (confirms, `connection.blocked`, heartbeats) without publishing. rabbitmq-c
    /// sends and checks heartbeats only inside its own calls, so an idle publisher calls this in its loop to stay
    /// connected; without a connection it just waits.
    public func serviceConnection(timeout: Duration) throws(AMQPError) {
        guard connection != nil else {
            sleep(for: timeout)
            return
        }
        do {
            try readEvents(timeout: timeout, failIfNone: false)
        } catch {
            try recover(from: error)
        }
    }

    /// Closes the connection; unconfirmed messages are dropped (call `waitForConfirms` first).
    public func close() {
        connection?.closeChannel(Self.channel)
        connection?.close()
        connection = nil
    }

    // MARK: Window bookkeeping

    private func append(_ message: OutboundMessage) {
        if windowHead > 4096 && windowHead * 2 > window.count {
            window.removeFirst(windowHead)
            firstTag += UInt64(windowHead)
            windowHead = 0
        }
        window.append(message)
        unsettled += 1
    }

    private func settle(through tag: UInt64, multiple: Bool, confirmed: Bool) {
        let lower = multiple ? firstTag + UInt64(windowHead) : tag
        guard tag >= lower else { return }
        for current in lower...tag {
            let index = Int(current - firstTag)
            // Taken out of the window (settled either way), not copied: a copy is a retain and a release of each
            // of the message's buffers.
            guard index >= 0, index < window.count, let message = window[index].take() else { continue }
            if confirmed {
                unsettled -= 1
                if let (code, text) = returned.removeValue(forKey: message.messageID) {
                    unroutableCount += 1
                    onSettlement?(.unroutable(messageID: message.messageID, replyCode: code, replyText: text))
                } else {
                    confirmedCount += 1
                    onSettlement?(.confirmed(messageID: message.messageID))
                }
            } else {
                // A nack means the broker could not store it: send it again under a new tag.
                nackedCount += 1
                window.append(message)
                returned.removeValue(forKey: message.messageID)
            }
        }
        while windowHead < window.count && window[windowHead] == nil { windowHead += 1 }
    }

    // MARK: Wire

    private func send(_ message: OutboundMessage, tag: UInt64) throws(AMQPError) {
        guard let connection else { throw AMQPError(.connectionFailed, "not connected", isRetriable: true) }
        var properties = amqp_basic_properties_t()
        properties._flags = CRabbitMQ_BASIC_DELIVERY_MODE_FLAG | CRabbitMQ_BASIC_MESSAGE_ID_FLAG
        properties.delivery_mode = message.persistent ? 2 : 1
        let status = message.exchange.withBytes { exchange in
            message.routingKey.withBytes { routingKey in
                message.messageID.withBytes { messageID in
                    (message.contentType ?? "").withBytes { contentType in
                        (message.correlationID ?? "").withBytes { correlationID in
                            message.body.withUnsafeBytes { body in
                                properties.message_id = messageID
                                if message.correlationID != nil {
                                    properties._flags |= CRabbitMQ_BASIC_CORRELATION_ID_FLAG
                                    properties.correlation_id = correlationID
                                }
                                if message.contentType != nil {
                                    properties._flags |= CRabbitMQ_BASIC_CONTENT_TYPE_FLAG
                                    properties.content_type = contentType
                                }
                                let bodyBytes = amqp_bytes_t(
                                    len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
                                if message.headers.isEmpty {
                                    return amqp_basic_publish(
                                        connection.state, Self.channel, exchange, routingKey,
                                        message.mandatory ? 1 : 0, 0, &properties, bodyBytes)
                                }
                                let table = FieldTable(message.headers.map { ($0.key, FieldValue.string($0.value)) })
                                return CFieldTable.with(table) { headers in
                                    properties._flags |= CRabbitMQ_BASIC_HEADERS_FLAG
                                    properties.headers = headers
                                    return amqp_basic_publish(
                                        connection.state, Self.channel, exchange, routingKey,
                                        message.mandatory ? 1 : 0, 0, &properties, bodyBytes)
                                }
                            }
                        }
                    }
                }
            }
        }
        try connection.check(status: status, "publishing to exchange '\(message.exchange)'")
    }

    /// Reads and applies broker frames; waits up to `timeout` for the first one, then takes what is buffered.
    private func readEvents(timeout: Duration, failIfNone: Bool) throws(AMQPError) {
        guard let connection else { throw AMQPError(.connectionFailed, "not connected", isRetriable: true) }
        var wait: Duration? = timeout
        while true {
            if wait == .zero && amqp_frames_enqueued(connection.state) == 0
                && amqp_data_in_buffer(connection.state) == 0
            {
                // Nothing buffered: one non-blocking poll of the socket is enough.
                guard let event = try connection.nextEvent(timeout: .zero) else { return }
                try apply(event)
            } else {
                guard let event = try connection.nextEvent(timeout: wait ?? .zero) else {
                    if failIfNone && wait != .zero {
                        throw AMQPError(
                            .timeout, "no confirm from \(connection.broker) within \(timeout)", isRetriable: true)
                    }
                    return
                }
                try apply(event)
            }
            wait = .zero
            amqp_maybe_release_buffers(connection.state)
        }
    }

    private func apply(_ event: Connection.Event) throws(AMQPError) {
        switch event {
        case .ack(let tag, let multiple):
            settle(through: tag, multiple: multiple, confirmed: true)
        case .nack(let tag, let multiple):
            settle(through: tag, multiple: multiple, confirmed: false)
            try sendUnsent()
        case .returned(let messageID, let code, let text):
            if let messageID { returned[messageID] = (code, text) }
            logger.debug(
                "amqp message returned", metadata: ["amqp.message_id": "\(messageID ?? "?")", "reason": "\(text)"])
        case .channelClosed(_, let error), .connectionClosed(let error):
            throw error
        case .blocked, .unblocked, .consumerCancelled, .other:
            break
        }
    }

    /// Sends what the window holds beyond the last sent tag: a new message, or one requeued after a nack.
    /// Invariant afterwards: the window's last entry has tag `nextTag - 1`.
    private func sendUnsent() throws(AMQPError) {
        let sentThrough = Int(nextTag - firstTag)
        guard sentThrough < window.count else { return }
        for index in sentThrough..<window.count {
            if let message = window[index] { try send(message, tag: nextTag) }
            nextTag += 1
        }
    }

    private func waitWhileBlocked() throws(AMQPError) {
        guard let connection, connection.isBlocked else { return }
        let deadline = ContinuousClock.now + configuration.blockedTimeout
        while connection.isBlocked {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                throw AMQPError(
                    .blocked, "broker \(connection.broker) has blocked publishing for \(configuration.blockedTimeout)",
                    isRetriable: true)
            }
            try readEvents(timeout: min(remaining, .milliseconds(250)), failIfNone: false)
        }
    }

    // MARK: Connection recovery

    private func connect() throws(AMQPError) {
        let connection = try Connection.open(
            configuration.connection, firstBroker: brokerIndex, logger: logger)
        try connection.openChannel(Self.channel)
        _ = amqp_confirm_select(connection.state, Self.channel)
        try connection.check(amqp_get_rpc_reply(connection.state), channel: Self.channel, "enabling confirms")
        self.connection = connection
    }

    /// Makes sure there is a connection, reconnecting with backoff if needed, and that every unconfirmed message
    /// has been (re)sent on it.
    private func ensureConnected() throws(AMQPError) {
        if connection != nil { return }
        while true {
            do {
                try connect()
                backoff.reset()
                reconnectCount += 1
                try resendUnconfirmed()
                logger.info(
                    "amqp publisher reconnected",
                    metadata: [
                        "amqp.republished": "\(unsettled)", "amqp.broker": "\(connection?.broker.description ?? "")",
                    ])
                return
            } catch {
                connection = nil
                brokerIndex += 1
                guard error.isRetriable, backoff.mayRetry else { throw error }
                let delay = backoff.nextDelay()
                logger.warning(
                    "amqp publisher cannot reach a broker; retrying",
                    metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                sleep(for: delay)
            }
        }
    }

    /// Renumbers and resends every unconfirmed message on the new channel (tags restart at 1 on a new channel).
    private func resendUnconfirmed() throws(AMQPError) {
        let pending = window[windowHead...].compactMap { $0 }
        window = pending
        windowHead = 0
        firstTag = 1
        nextTag = 1
        returned.removeAll()
        for message in pending {
            try send(message, tag: nextTag)
            nextTag += 1
        }
    }

    private func recover(from error: AMQPError) throws(AMQPError) {
        if error.kind == .blocked || (error.kind == .timeout && connection?.isBlocked == true) { throw error }
        guard error.isRetriable else {
            // 403 (topic permission), 404 (no such exchange), 406 …: republishing would fail the same way. The
            // unconfirmed messages stay held; the next call reconnects and sends them again.
            connection = nil
            throw error
        }
        logger.warning("amqp publisher lost its channel; reconnecting", metadata: ["error": "\(error)"])
        connection = nil  // deinit destroys the old handle
        try ensureConnected()
    }
}

func sleep(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

extension String {
    /// Runs `body` with the UTF-8 bytes of the string as an `amqp_bytes_t`, valid only inside the closure.
    func withBytes<R>(_ body: (amqp_bytes_t) throws -> R) rethrows -> R {
        var copy = self
        return try copy.withUTF8 { buffer in
            try body(amqp_bytes_t(len: buffer.count, bytes: UnsafeMutableRawPointer(mutating: buffer.baseAddress)))
        }
    }
}
