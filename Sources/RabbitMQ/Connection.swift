import CRabbitMQ
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// One AMQP connection: the sole owner of a rabbitmq-c connection handle.
///
/// rabbitmq-c is not thread-safe, so a connection, its channels and every object built on it (`Publisher`,
/// `Consumer`, `TopologyDeclarer`) belong to the one thread that made them. Use `BlockingThread.run` to do that work
/// from async code without blocking Swift's cooperative pool.
public final class Connection {
    let state: amqp_connection_state_t
    /// The broker this connection reached (one of the configured addresses).
    public let broker: BrokerURL
    let logger: Logger
    /// Set once the broker closed the connection or the socket failed; every later call fails fast.
    private(set) var failure: AMQPError?
    private var closed = false
    /// Channels the broker closed (answered with close-ok): closing one again would send a `channel.close` the
    /// broker does not answer, and leave the next open of that number waiting.
    private var channelsClosedByBroker = Set<UInt16>()
    private(set) var isBlocked = false

    /// Runs `body` with the socket corked (`TCP_CORK`): what it sends leaves in full segments when the cork comes
    /// out, not one segment (and one wake-up of the broker) per frame set. Without a socket it just runs `body`.
    func corked<T>(_ body: () throws(AMQPError) -> T) throws(AMQPError) -> T {
        let socket = amqp_get_sockfd(state)
        guard socket >= 0 else { return try body() }
        setCork(socket, on: true)
        defer { setCork(socket, on: false) }
        return try body()
    }

    private func setCork(_ socket: Int32, on: Bool) {
        var value: Int32 = on ? 1 : 0
        // TCP_CORK is 3 on Linux; a failure only costs the coalescing.
        _ = setsockopt(socket, Int32(IPPROTO_TCP), 3, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Opens a connection to the first broker of `configuration.brokers`, starting at `firstBroker`, that answers.
    public static func open(
        _ configuration: ConnectionConfiguration, firstBroker: Int = 0, logger: Logger = Logger(label: "sameday.amqp")
    ) throws(AMQPError) -> Connection {
        try configuration.validate()
        ignoreSIGPIPE
        var lastError = AMQPError(.connectionFailed, "no broker tried", isRetriable: true)
        for offset in 0..<configuration.brokers.count {
            let broker = configuration.brokers[(firstBroker + offset) % configuration.brokers.count]
            do {
                return try Connection(configuration, broker: broker, logger: logger)
            } catch {
                logger.debug(
                    "amqp connect failed", metadata: ["amqp.broker": "\(broker)", "error": "\(error)"])
                lastError = error
                if !error.isRetriable { throw error }
            }
        }
        throw lastError
    }

    private init(_ configuration: ConnectionConfiguration, broker: BrokerURL, logger: Logger) throws(AMQPError) {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.library, "amqp_new_connection failed (out of memory)", isRetriable: true)
        }
        self.state = state
        self.broker = broker
        var logger = logger
        logger[metadataKey: "amqp.broker"] = "\(broker)"
        self.logger = logger
        // From here on a failure leaves `self` to deinit, which destroys the handle (and the socket with it).
        let socket: OpaquePointer?
        if broker.useTLS {
            socket = amqp_ssl_socket_new(state)
            if let socket {
                let tls = broker.tls ?? configuration.tls
                if let ca = tls.caCertificatePath {
                    try Connection.check(status: amqp_ssl_socket_set_cacert(socket, ca), "loading CA file \(ca)")
                }
                if let cert = tls.clientCertificatePath, let key = tls.clientKeyPath {
                    try Connection.check(
                        status: amqp_ssl_socket_set_key(socket, cert, key), "loading client certificate \(cert)")
                }
                amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
                amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else {
            throw AMQPError(.library, "could not create a socket for \(broker)", isRetriable: true)
        }
        var connectTimeout = timeval(configuration.connectTimeout)
        try Connection.check(
            status: amqp_socket_open_noblock(socket, broker.host, Int32(broker.port), &connectTimeout),
            "connecting to \(broker)")
        var handshakeTimeout = timeval(configuration.connectTimeout)
        amqp_set_handshake_timeout(state, &handshakeTimeout)
        var rpcTimeout = timeval(configuration.rpcTimeout)
        amqp_set_rpc_timeout(state, &rpcTimeout)

        // Advertise the capabilities whose absence silently stalls a client (docs/architecture.md §5):
        // connection.blocked, consumer_cancel_notify; and name the connection so operators can find it.
        let properties: FieldTable = [
            "product": .string("SameDay"),
            "connection_name": .string(configuration.connectionName),
            "capabilities": .table([
                "connection.blocked": .bool(true),
                "consumer_cancel_notify": .bool(true),
                "publisher_confirms": .bool(true),
                "basic.nack": .bool(true),
                "authentication_failure_close": .bool(true),
            ]),
        ]
        let reply = CFieldTable.with(properties) { table in
            withUnsafePointer(to: table) { tablePointer in
                if broker.useTLS && (broker.tls ?? configuration.tls).clientCertificatePath != nil
                    && broker.password.isEmpty
                {
                    CRabbitMQ_login_external(
                        state, broker.virtualHost, 0, Int32(configuration.frameMax), Int32(configuration.heartbeat),
                        tablePointer, broker.user)
                } else {
                    CRabbitMQ_login_plain(
                        state, broker.virtualHost, 0, Int32(configuration.frameMax), Int32(configuration.heartbeat),
                        tablePointer, broker.user, broker.password)
                }
            }
        }
        if var error = AMQPError.from(reply: reply, while: "logging in to \(broker) as \(broker.user)") {
            if error.kind == .connectionClosed && (error.replyCode == 403 || error.replyCode == 530) {
                error.kind = .authenticationFailed
                error.isRetriable = false
            }
            if error.libraryStatus == AMQP_STATUS_CONNECTION_CLOSED.rawValue
                || error.libraryStatus == AMQP_STATUS_SOCKET_CLOSED.rawValue
            {
                // RabbitMQ drops the socket on a wrong password unless authentication_failure_close is honoured.
                error.message += " (wrong credentials or vhost?)"
            }
            throw error
        }
        logger.debug("amqp connected", metadata: ["amqp.connection_name": "\(configuration.connectionName)"])
    }

    deinit {
        if !closed && failure == nil {
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    /// Closes the connection politely (connection.close / close-ok). Safe to call twice.
    public func close() {
        guard !closed else { return }
        closed = true
        if failure == nil {
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
    }

    /// The heartbeat interval the broker agreed to, in seconds (0 = none).
    public var negotiatedHeartbeat: Int { Int(amqp_get_heartbeat(state)) }

    // MARK: Channels

    /// Opens channel `number`. Channel numbers are reused after a close, as rabbitmq-c recommends.
    public func openChannel(_ number: UInt16) throws(AMQPError) {
        try ensureUsable()
        channelsClosedByBroker.remove(number)
        _ = amqp_channel_open(state, number)
        try check(amqp_get_rpc_reply(state), channel: number, "opening channel \(number)")
    }

    /// Closes channel `number` politely; errors are ignored (the channel is gone either way).
    public func closeChannel(_ number: UInt16) {
        guard failure == nil, !closed, channelsClosedByBroker.remove(number) == nil else { return }
        _ = amqp_channel_close(state, number, AMQP_REPLY_SUCCESS)
    }

    // MARK: Error handling, in one place

    func ensureUsable() throws(AMQPError) {
        if let failure { throw failure }
        if closed { throw AMQPError(.connectionFailed, "connection to \(broker) is closed", isRetriable: true) }
    }

    /// Checks the reply of a synchronous method. A broker `channel.close` or `connection.close` is answered with
    /// close-ok here, so the protocol stays in step; a connection-level failure marks the connection failed.
    func check(_ reply: amqp_rpc_reply_t, channel: UInt16, _ action: String) throws(AMQPError) {
        guard let error = AMQPError.from(reply: reply, while: action) else { return }
        if reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION {
            acknowledgeServerClose(reply.reply.id, channel: channel)
        }
        if error.kind != .channelClosed { failure = error }
        throw error
    }

    /// Checks the status of a non-RPC call; any failure there is a transport failure.
    func check(status: Int32, _ action: String) throws(AMQPError) {
        guard status < 0 else { return }
        let error = AMQPError.library(status: status, while: action)
        failure = error
        throw error
    }

    private static func check(status: Int32, _ action: String) throws(AMQPError) {
        guard status < 0 else { return }
        throw AMQPError.library(status: status, while: action)
    }

    /// Answers a broker-initiated close so the broker can free the channel or connection.
    func acknowledgeServerClose(_ method: amqp_method_number_t, channel: UInt16) {
        if method == AMQP_CHANNEL_CLOSE_METHOD {
            var ok = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
            channelsClosedByBroker.insert(channel)
        } else if method == AMQP_CONNECTION_CLOSE_METHOD {
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
        }
    }

    /// Marks the connection unusable after a failure seen outside `check` (a frame read, a close from the broker).
    func markFailed(_ error: AMQPError) {
        if failure == nil { failure = error }
    }

    // MARK: Frames

    /// A frame from the broker that is not a delivery, decoded to what SameDay acts on.
    enum Event {
        case ack(tag: UInt64, multiple: Bool)
        case nack(tag: UInt64, multiple: Bool)
        case returned(messageID: String?, replyCode: UInt16, replyText: String)
        case channelClosed(channel: UInt16, AMQPError)
        case connectionClosed(AMQPError)
        case consumerCancelled(tag: String)
        case blocked(reason: String)
        case unblocked
        case other
    }

    /// Reads the next frame (waiting at most `timeout`; nil when none came) and decodes it. Close methods are
    /// answered before returning; the connection is marked failed on `connection.close` or a socket error.
    func nextEvent(timeout: Duration?) throws(AMQPError) -> Event? {
        guard let frame = try nextFrame(timeout: timeout) else { return nil }
        return try decode(frame)
    }

    /// Reads the next frame, waiting at most `timeout` (nil: until one comes); nil when none came. Its payload is
    /// valid only until the next read. A socket error marks the connection failed.
    func nextFrame(timeout: Duration?) throws(AMQPError) -> amqp_frame_t? {
        try ensureUsable()
        var frame = amqp_frame_t()
        let status: Int32
        if let timeout {
            var tv = timeval(timeout)
            status = amqp_simple_wait_frame_noblock(state, &frame, &tv)
        } else {
            status = amqp_simple_wait_frame(state, &frame)
        }
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        // Tested first: the error's text is built only for an error (this runs for every delivery).
        if status != AMQP_STATUS_OK.rawValue { try check(status: status, "waiting for a frame from \(broker)") }
        return frame
    }

    func decode(_ frame: amqp_frame_t) throws(AMQPError) -> Event {
        guard frame.frame_type == AMQP_FRAME_METHOD else { return .other }
        let method = frame.payload.method
        switch method.id {
        case AMQP_BASIC_ACK_METHOD:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(tag: ack.delivery_tag, multiple: ack.multiple != 0)
        case AMQP_BASIC_NACK_METHOD:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(tag: nack.delivery_tag, multiple: nack.multiple != 0)
        case AMQP_BASIC_RETURN_METHOD:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = returned.reply_code
            let text = returned.reply_text.string
            // The returned message's header and body follow; read them to learn its message id.
            var message = amqp_message_t()
            let reply = amqp_read_message(state, frame.channel, &message, 0)
            if let error = AMQPError.from(reply: reply, while: "reading a returned message") {
                failure = error
                throw error
            }
            defer { amqp_destroy_message(&message) }
            let flags = message.properties._flags
            let id = flags & CRabbitMQ_BASIC_MESSAGE_ID_FLAG != 0 ? message.properties.message_id.string : nil
            return .returned(messageID: id, replyCode: code, replyText: text)
        case AMQP_CHANNEL_CLOSE_METHOD:
            let error = AMQPError.fromServerClose(method: method, while: "on channel \(frame.channel)")
            acknowledgeServerClose(method.id, channel: frame.channel)
            return .channelClosed(channel: frame.channel, error)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let error = AMQPError.fromServerClose(method: method, while: "connection to \(broker)")
            acknowledgeServerClose(method.id, channel: 0)
            failure = error
            return .connectionClosed(error)
        case AMQP_BASIC_CANCEL_METHOD:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(tag: cancel.consumer_tag.string)
        case AMQP_CONNECTION_BLOCKED_METHOD:
            let blocked = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            isBlocked = true
            logger.warning("amqp connection blocked by the broker", metadata: ["reason": "\(blocked.reason.string)"])
            return .blocked(reason: blocked.reason.string)
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            isBlocked = false
            logger.info("amqp connection unblocked")
            return .unblocked
        default:
            return .other
        }
    }
}

/// rabbitmq-c's TCP socket sends with MSG_NOSIGNAL, but TLS writes can raise SIGPIPE when the broker has gone;
/// a signal must not kill a worker that would otherwise reconnect.
private let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
