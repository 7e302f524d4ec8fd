import CRabbitMQ

/// Every failure of the RabbitMQ module: what went wrong, the AMQP reply code or rabbitmq-c status behind it, and
/// whether trying again (after a reconnect or a pause) can succeed.
public struct AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The broad kind of failure; callers branch on this, logs print `description`.
    public enum Kind: String, Sendable, Equatable {
        /// The broker URL could not be parsed.
        case invalidURL
        /// A configuration value is out of range or inconsistent.
        case invalidConfiguration
        /// TCP or TLS connection could not be opened, or the socket failed later.
        case connectionFailed
        /// The broker refused the credentials or the virtual host.
        case authenticationFailed
        /// The broker closed the connection (`connection.close`), with `replyCode`.
        case connectionClosed
        /// The broker closed the channel (`channel.close`), with `replyCode` (404 not found, 406 precondition …).
        case channelClosed
        /// The broker cancelled our consumer (`basic.cancel`): its queue was deleted or moved.
        case consumerCancelled
        /// The broker blocked publishing (`connection.blocked`: memory or disk alarm) for longer than allowed.
        case blocked
        /// An operation did not complete within its time limit.
        case timeout
        /// Anything else rabbitmq-c reported (`libraryStatus` holds its status code).
        case library
    }

    public var kind: Kind
    /// The AMQP reply code the broker sent (e.g. 320 CONNECTION_FORCED, 404 NOT_FOUND, 406 PRECONDITION_FAILED).
    public var replyCode: UInt16?
    /// The rabbitmq-c status (`amqp_status_enum`, negative), when the library reported the failure.
    public var libraryStatus: Int32?
    /// A sentence for people: what was being done and what the broker or library said.
    public var message: String
    /// True when the same operation can succeed later without a change of configuration.
    public var isRetriable: Bool

    public init(
        _ kind: Kind, _ message: String, replyCode: UInt16? = nil, libraryStatus: Int32? = nil, isRetriable: Bool
    ) {
        self.kind = kind
        self.message = message
        self.replyCode = replyCode
        self.libraryStatus = libraryStatus
        self.isRetriable = isRetriable
    }

    public var description: String {
        var text = "AMQP \(kind.rawValue): \(message)"
        if let replyCode { text += " (reply code \(replyCode))" }
        if let libraryStatus { text += " (rabbitmq-c status \(libraryStatus))" }
        return text
    }

    /// Whether a broker reply code describes a passing condition (a forced close, a locked or exhausted resource)
    /// rather than a mistake in what we asked for (not found, access refused, precondition failed).
    public static func isRetriable(replyCode: UInt16) -> Bool {
        switch replyCode {
        case 320,  // CONNECTION_FORCED: broker shutting down, or an operator closed us
            405,  // RESOURCE_LOCKED: exclusive queue held by a consumer that is going away
            506,  // RESOURCE_ERROR: out of a resource on the broker
            541:  // INTERNAL_ERROR
            return true
        default:
            return false
        }
    }

    /// Whether a rabbitmq-c status is a transport problem (worth a reconnect) rather than a misuse of the library.
    public static func isRetriable(libraryStatus: Int32) -> Bool {
        switch amqp_status_enum(rawValue: libraryStatus) {
        case AMQP_STATUS_SOCKET_ERROR, AMQP_STATUS_CONNECTION_CLOSED, AMQP_STATUS_TIMEOUT,
            AMQP_STATUS_HEARTBEAT_TIMEOUT, AMQP_STATUS_SOCKET_CLOSED, AMQP_STATUS_TCP_ERROR,
            AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED, AMQP_STATUS_SSL_ERROR, AMQP_STATUS_SSL_CONNECTION_FAILED,
            AMQP_STATUS_NO_MEMORY, AMQP_STATUS_UNEXPECTED_STATE:
            return true
        default:
            return false
        }
    }

    /// The error for a rabbitmq-c status code returned by a non-RPC call (`amqp_basic_publish`, `amqp_basic_ack` …).
    static func library(status: Int32, while action: String) -> AMQPError {
        let kind: Kind
        switch amqp_status_enum(rawValue: status) {
        case AMQP_STATUS_TIMEOUT, AMQP_STATUS_HEARTBEAT_TIMEOUT: kind = .timeout
        case AMQP_STATUS_SOCKET_ERROR, AMQP_STATUS_CONNECTION_CLOSED, AMQP_STATUS_SOCKET_CLOSED, AMQP_STATUS_TCP_ERROR,
            AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED, AMQP_STATUS_SSL_ERROR, AMQP_STATUS_SSL_CONNECTION_FAILED:
            kind = .connectionFailed
        default: kind = .library
        }
        let text = String(cString: amqp_error_string2(status))
        return AMQPError(
            kind, "\(action): \(text)", libraryStatus: status, isRetriable: isRetriable(libraryStatus: status))
    }

    /// The one mapping from an `amqp_rpc_reply_t` to an error; nil when the reply is normal.
    static func from(reply: amqp_rpc_reply_t, while action: String) -> AMQPError? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_NONE:
            return AMQPError(.library, "\(action): no reply (missing RPC reply type)", isRetriable: false)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return library(status: reply.library_error, while: action)
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            return fromServerClose(method: reply.reply, while: action)
        default:
            return AMQPError(.library, "\(action): unknown reply type", isRetriable: false)
        }
    }

    /// Maps a `connection.close` or `channel.close` method sent by the broker.
    static func fromServerClose(method: amqp_method_t, while action: String) -> AMQPError {
        switch method.id {
        case AMQP_CONNECTION_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let code = close.reply_code
            let text = close.reply_text.string
            let kind: Kind = code == 403 || code == 530 ? .authenticationFailed : .connectionClosed
            return AMQPError(
                kind, "\(action): broker closed the connection: \(text)", replyCode: code,
                isRetriable: kind == .connectionClosed && (isRetriable(replyCode: code) || code == 320))
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let code = close.reply_code
            return AMQPError(
                .channelClosed, "\(action): broker closed the channel: \(close.reply_text.string)", replyCode: code,
                isRetriable: isRetriable(replyCode: code))
        default:
            return AMQPError(
                .library, "\(action): unexpected method 0x\(String(method.id, radix: 16)) from the broker",
                isRetriable: true)
        }
    }
}

extension amqp_bytes_t {
    /// The bytes as a String (UTF-8, lossy), for reply texts and message ids.
    var string: String {
        guard let bytes, len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }
}
