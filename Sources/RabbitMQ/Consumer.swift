import CRabbitMQ
import Logging

/// A message delivered to a consumer.
public struct Delivery: Sendable {
    /// The tag to ack with; it is only valid on the channel that delivered the message (see `DeliveryTag`).
    public var tag: DeliveryTag
    public var body: [UInt8]
    public var messageID: String?
    public var exchange: String
    public var routingKey: String
    public var redelivered: Bool
    public var headers: FieldTable

    /// A delivery made by hand (tests of the code that handles deliveries, without a broker).
    public init(
        tag: DeliveryTag, body: [UInt8], messageID: String?, exchange: String, routingKey: String,
        redelivered: Bool = false, headers: FieldTable = [:]
    ) {
        self.tag = tag
        self.body = body
        self.messageID = messageID
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.headers = headers
    }

    /// Quorum queues count deliveries in `x-delivery-count` (an i64): 0 or absent on the first delivery.
    public var deliveryCount: Int64 { headers["x-delivery-count"]?.intValue ?? 0 }
}

/// A delivery tag together with the channel incarnation it belongs to. After a reconnect the old tags mean nothing
/// (the broker has requeued those messages), so acking a stale tag is skipped instead of closing the new channel.
public struct DeliveryTag: Sendable, Hashable, Comparable {
    public var value: UInt64
    public var channelEpoch: Int

    public init(value: UInt64, channelEpoch: Int) {
        self.value = value
        self.channelEpoch = channelEpoch
    }

    public static func < (lhs: DeliveryTag, rhs: DeliveryTag) -> Bool {
        (lhs.channelEpoch, lhs.value) < (rhs.channelEpoch, rhs.value)
    }
}

/// Consumer settings. `prefetch` bounds unacked deliveries (default 500); `arguments` go to `basic.consume`
/// (`x-stream-offset` for streams); `maximumWaitFraction` of the heartbeat bounds one wait (default ¼).
public struct ConsumerConfiguration: Sendable {
    public var connection: ConnectionConfiguration
    public var queue: String
    public var prefetch: UInt16
    public var consumerTag: String
    public var exclusive: Bool
    public var arguments: FieldTable
    public var maximumWaitFraction: Double

    public init(
        connection: ConnectionConfiguration, queue: String, prefetch: UInt16 = 500, consumerTag: String = "",
        exclusive: Bool = false, arguments: FieldTable = [:], maximumWaitFraction: Double = 0.25
    ) {
        self.connection = connection
        self.queue = queue
        self.prefetch = prefetch
        self.consumerTag = consumerTag
        self.exclusive = exclusive
        self.arguments = arguments
        self.maximumWaitFraction = maximumWaitFraction
    }
}

/// Consumes one queue with manual acknowledgements.
///
/// `next(timeout:)` never blocks longer than a fraction of the heartbeat interval in one library call, so
/// heartbeats stay serviced and the caller can run its timers between calls. When the channel or connection fails,
/// when the broker closes either, or when it cancels the consumer, the consumer reconnects (with backoff, across the
/// configured brokers) and subscribes again; unacked deliveries are redelivered by the broker then.
/// Confined to the thread that made it.
public final class Consumer {
    public let configuration: ConsumerConfiguration
    private let logger: Logger
    private var connection: Connection?
    private static let channel: UInt16 = 1
    private var epoch = 0
    private var backoff: Backoff
    private var nextAttempt: ContinuousClock.Instant?
    private var brokerIndex = 0
    private var lastError: AMQPError?
    /// Set when the broker cancelled us and subscribing again failed: the queue is gone.
    private var cancelledError: AMQPError?
    /// The tag the broker gave this subscription (ours if configured, else generated).
    private var activeConsumerTag = ""

    public private(set) var reconnectCount = 0
    /// How many times the broker cancelled this consumer (`basic.cancel`).
    public private(set) var cancellationCount = 0

    /// Connects and subscribes at once, so a missing queue or bad credentials fail here.
    public init(_ configuration: ConsumerConfiguration, logger: Logger = Logger(label: "sameday.amqp.consumer"))
        throws(AMQPError)
    {
        self.configuration = configuration
        self.logger = logger
        self.backoff = Backoff(policy: configuration.connection.reconnect)
        try subscribe()
    }

    deinit { connection?.close() }

    /// Whether the consumer currently has a working subscription.
    public var isConnected: Bool { connection != nil }

    /// The longest one library call may wait: a fraction of the negotiated heartbeat.
    public var maximumWait: Duration {
        let heartbeat = connection?.negotiatedHeartbeat ?? configuration.connection.heartbeat
        guard heartbeat > 0 else { return .seconds(1) }
        return .milliseconds(Int64(Double(heartbeat) * 1000 * configuration.maximumWaitFraction))
    }

    /// The next delivery, or nil when none came within `timeout` (waits in slices of at most `maximumWait`).
    /// Recovers from channel and connection failures by itself; throws `.consumerCancelled` when the broker
    /// cancelled the subscription and the queue cannot be subscribed again, and non-retriable errors.
    public func next(timeout: Duration) throws(AMQPError) -> Delivery? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let cancelledError {
                self.cancelledError = nil
                throw cancelledError
            }
            if connection == nil {
                try reconnectIfDue(deadline: deadline)
                if connection == nil {
                    if ContinuousClock.now >= deadline { return nil }
                    continue
                }
            }
            let remaining = deadline - ContinuousClock.now
            let slice = max(.zero, min(remaining, maximumWait))
            if let delivery = try receive(waiting: slice) { return delivery }
            if ContinuousClock.now >= deadline { return nil }
        }
    }

    /// Acknowledges `tag` (and with `multiple`, every earlier unacked delivery on the same channel).
    /// Returns false if the tag belongs to a channel that is gone (the broker will redeliver that message).
    @discardableResult
    public func ack(_ tag: DeliveryTag, multiple: Bool = false) throws(AMQPError) -> Bool {
        try settle(tag, "acknowledging") { state in amqp_basic_ack(state, Self.channel, tag.value, multiple ? 1 : 0) }
    }

    /// Negative acknowledgement; with `requeue: false` the message is dead-lettered (or dropped without a DLX).
    @discardableResult
    public func nack(_ tag: DeliveryTag, multiple: Bool = false, requeue: Bool) throws(AMQPError) -> Bool {
        try settle(tag, "nacking") { state in
            amqp_basic_nack(state, Self.channel, tag.value, multiple ? 1 : 0, requeue ? 1 : 0)
        }
    }

    /// Rejects one delivery; with `requeue: false` the message is dead-lettered (or dropped without a DLX).
    @discardableResult
    public func reject(_ tag: DeliveryTag, requeue: Bool) throws(AMQPError) -> Bool {
        try settle(tag, "rejecting") { state in amqp_basic_reject(state, Self.channel, tag.value, requeue ? 1 : 0) }
    }

    /// Cancels the subscription, lets outstanding acks reach the broker, then closes. On a quorum queue acks sent
    /// just before a channel close were sometimes lost (docs/architecture.md §5), hence the cancel-and-wait first.
    public func close() {
        guard let connection else { return }
        activeConsumerTag.withBytes { tag in
            _ = amqp_basic_cancel(connection.state, Self.channel, tag)
            _ = amqp_get_rpc_reply(connection.state)
        }
        connection.closeChannel(Self.channel)
        connection.close()
        self.connection = nil
    }

    // MARK: Internals

    private func settle(_ tag: DeliveryTag, _ action: String, _ call: (amqp_connection_state_t) -> Int32)
        throws(AMQPError) -> Bool
    {
        guard let connection, tag.channelEpoch == epoch else { return false }
        let status = call(connection.state)
        do {
            try connection.check(status: status, "\(action) delivery \(tag.value)")
        } catch {
            dropConnection(error)
            if !error.isRetriable { throw error }
            return false
        }
        return true
    }

    /// The next delivery, read frame by frame. rabbitmq-c's `amqp_consume_message` gives each message a 4 KiB
    /// pool of its own and four more allocations (a `calloc` that large also makes glibc consolidate the thread's
    /// small free chunks): here the frames stay in the connection's recycled pools and each is copied out as it
    /// comes, its bytes being valid only until the next read.
    private func receive(waiting slice: Duration) throws(AMQPError) -> Delivery? {
        guard let connection else { return nil }
        amqp_maybe_release_buffers(connection.state)
        do {
            guard let frame = try connection.nextFrame(timeout: slice) else { return nil }
            guard frame.frame_type == AMQP_FRAME_METHOD, frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD else {
                // Something other than a delivery: act on it.
                handle(try connection.decode(frame))
                return nil
            }
            return try readDelivery(frame, on: connection)
        } catch {
            dropConnection(error)
            if !error.isRetriable && error.kind != .connectionClosed && error.kind != .channelClosed { throw error }
            return nil
        }
    }

    /// The delivery a `basic.deliver` frame starts: its content header and body frames follow on its channel.
    private func readDelivery(_ deliverFrame: amqp_frame_t, on connection: Connection) throws(AMQPError) -> Delivery {
        let channel = deliverFrame.channel
        let deliver = deliverFrame.payload.method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
        let tag = DeliveryTag(value: deliver.delivery_tag, channelEpoch: epoch)
        let exchange = deliver.exchange.string
        let routingKey = deliver.routing_key.string
        let redelivered = deliver.redelivered != 0
        var frame = try nextContentFrame(on: channel, connection)
        guard frame.frame_type == AMQP_FRAME_HEADER, frame.payload.properties.class_id == AMQP_BASIC_CLASS else {
            throw unexpected(frame, connection)
        }
        let properties = frame.payload.properties.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self)
            .pointee
        let messageID =
            properties._flags & CRabbitMQ_BASIC_MESSAGE_ID_FLAG != 0 ? properties.message_id.string : nil
        let headers = properties._flags & CRabbitMQ_BASIC_HEADERS_FLAG != 0 ? FieldTable(properties.headers) : [:]
        let size = frame.payload.properties.body_size
        var body: [UInt8] = []
        // The broker's max_message_size bounds the size; the reservation is bounded too, whatever the header says.
        body.reserveCapacity(Int(min(size, 1 << 20)))
        while UInt64(body.count) < size {
            frame = try nextContentFrame(on: channel, connection)
            guard frame.frame_type == AMQP_FRAME_BODY else { throw unexpected(frame, connection) }
            let fragment = frame.payload.body_fragment
            guard UInt64(body.count) + UInt64(fragment.len) <= size else {
                throw AMQPError.library(
                    status: AMQP_STATUS_BAD_AMQP_DATA.rawValue,
                    while: "reading a delivery's body (longer than its header says)")
            }
            if let bytes = fragment.bytes, fragment.len > 0 {
                body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: fragment.len))
            }
        }
        return Delivery(
            tag: tag, body: body, messageID: messageID, exchange: exchange, routingKey: routingKey,
            redelivered: redelivered, headers: headers)
    }

    /// The next frame of a delivery's content on `channel`. The connection's own frames in between (a
    /// `connection.blocked`, say) are acted on and skipped; rabbitmq-c 0.11 exports no wait on one channel.
    private func nextContentFrame(on channel: amqp_channel_t, _ connection: Connection) throws(AMQPError)
        -> amqp_frame_t
    {
        while true {
            // Without a timeout a frame always comes back (or an error is thrown).
            guard let frame = try connection.nextFrame(timeout: nil) else { continue }
            if frame.channel == channel { return frame }
            if frame.frame_type == AMQP_FRAME_METHOD { handle(try connection.decode(frame)) }
            if self.connection == nil {
                throw connection.failure
                    ?? AMQPError(
                        .connectionFailed, "the connection closed in the middle of a delivery", isRetriable: true)
            }
        }
    }

    /// What a frame other than the content expected means: the broker closing the channel or the connection (the
    /// close is answered), or a protocol error.
    private func unexpected(_ frame: amqp_frame_t, _ connection: Connection) -> AMQPError {
        if frame.frame_type == AMQP_FRAME_METHOD, let event = try? connection.decode(frame) {
            switch event {
            case .channelClosed(_, let error), .connectionClosed(let error): return error
            default: break
            }
        }
        return AMQPError.library(
            status: AMQP_STATUS_UNEXPECTED_STATE.rawValue, while: "reading a delivery (a frame out of place)")
    }

    private func handle(_ event: Connection.Event) {
        switch event {
        case .consumerCancelled(let tag):
            cancellationCount += 1
            logger.warning(
                "amqp consumer cancelled by the broker (queue deleted or moved); subscribing again",
                metadata: ["amqp.queue": "\(configuration.queue)", "amqp.consumer_tag": "\(tag)"])
            dropConnection(nil)
            do {
                try subscribe()
            } catch {
                // The queue is gone: tell the caller once (from `next`), then keep trying on later calls.
                connection = nil
                scheduleRetry()
                cancelledError = AMQPError(
                    .consumerCancelled,
                    "the broker cancelled the consumer of '\(configuration.queue)' and it cannot subscribe again: "
                        + error.message,
                    replyCode: error.replyCode, isRetriable: true)
            }
        case .channelClosed(_, let error), .connectionClosed(let error):
            logger.warning("amqp consumer lost its channel", metadata: ["error": "\(error)"])
            dropConnection(error)
        case .ack, .nack, .returned, .blocked, .unblocked, .other:
            break
        }
    }

    private func dropConnection(_ error: AMQPError?) {
        if let error { lastError = error }
        if let connection {
            connection.markFailed(
                error ?? AMQPError(.connectionFailed, "consumer resubscribing", isRetriable: true))
        }
        connection = nil
        epoch += 1
    }

    private func scheduleRetry() {
        nextAttempt = ContinuousClock.now + backoff.nextDelay()
    }

    /// One reconnect attempt if its backoff delay has passed; otherwise sleeps until then or until `deadline`.
    private func reconnectIfDue(deadline: ContinuousClock.Instant) throws(AMQPError) {
        let now = ContinuousClock.now
        if let nextAttempt, nextAttempt > now {
            sleep(for: min(nextAttempt, deadline) - now)
            if ContinuousClock.now < nextAttempt { return }
        }
        do {
            try subscribe()
            reconnectCount += 1
            backoff.reset()
            nextAttempt = nil
            logger.info("amqp consumer subscribed again", metadata: ["amqp.queue": "\(configuration.queue)"])
        } catch {
            connection = nil
            brokerIndex += 1
            if !error.isRetriable && error.kind != .channelClosed && error.kind != .connectionClosed {
                throw error
            }
            scheduleRetry()
            logger.warning(
                "amqp consumer cannot subscribe; will retry",
                metadata: ["amqp.queue": "\(configuration.queue)", "error": "\(error)"])
        }
    }

    private func subscribe() throws(AMQPError) {
        let connection = try Connection.open(configuration.connection, firstBroker: brokerIndex, logger: logger)
        try connection.openChannel(Self.channel)
        _ = amqp_basic_qos(connection.state, Self.channel, 0, configuration.prefetch, 0)
        try connection.check(amqp_get_rpc_reply(connection.state), channel: Self.channel, "setting prefetch")
        let reply = configuration.queue.withBytes { queue in
            configuration.consumerTag.withBytes { tag in
                CFieldTable.with(configuration.arguments) { arguments in
                    let ok = amqp_basic_consume(
                        connection.state, Self.channel, queue, tag, 0, 0, configuration.exclusive ? 1 : 0, arguments)
                    if let ok { activeConsumerTag = ok.pointee.consumer_tag.string }
                    return amqp_get_rpc_reply(connection.state)
                }
            }
        }
        try connection.check(reply, channel: Self.channel, "subscribing to queue '\(configuration.queue)'")
        epoch += 1
        self.connection = connection
    }
}
