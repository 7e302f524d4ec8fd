import CRabbitMQ
import Testing

@testable import RabbitMQ

@Suite("Error mapping")
struct ErrorMappingTests {
    @Test("a normal reply is no error")
    func normal() {
        var reply = amqp_rpc_reply_t()
        reply.reply_type = AMQP_RESPONSE_NORMAL
        #expect(AMQPError.from(reply: reply, while: "x") == nil)
    }

    @Test("library exceptions keep the status; socket trouble is retriable, misuse is not")
    func library() throws {
        var reply = amqp_rpc_reply_t()
        reply.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION
        reply.library_error = AMQP_STATUS_SOCKET_ERROR.rawValue
        let socket = try #require(AMQPError.from(reply: reply, while: "publishing"))
        #expect(socket.kind == .connectionFailed && socket.isRetriable)
        #expect(socket.libraryStatus == AMQP_STATUS_SOCKET_ERROR.rawValue)
        #expect(socket.message.hasPrefix("publishing: "))

        reply.library_error = AMQP_STATUS_TIMEOUT.rawValue
        #expect(AMQPError.from(reply: reply, while: "x")?.kind == .timeout)

        reply.library_error = AMQP_STATUS_INVALID_PARAMETER.rawValue
        let misuse = try #require(AMQPError.from(reply: reply, while: "x"))
        #expect(misuse.kind == .library && !misuse.isRetriable)
    }

    @Test("a channel.close from the broker carries its reply code and text")
    func channelClose() throws {
        var close = amqp_channel_close_t()
        close.reply_code = 404
        let text = Array("NOT_FOUND - no queue 'q'".utf8)
        let error = try text.withUnsafeBytes { buffer in
            close.reply_text = amqp_bytes_t(
                len: buffer.count, bytes: UnsafeMutableRawPointer(mutating: buffer.baseAddress))
            return try withUnsafeMutablePointer(to: &close) { pointer in
                var reply = amqp_rpc_reply_t()
                reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION
                reply.reply = amqp_method_t(id: AMQP_CHANNEL_CLOSE_METHOD, decoded: UnsafeMutableRawPointer(pointer))
                return try #require(AMQPError.from(reply: reply, while: "declaring queue 'q'"))
            }
        }
        #expect(error.kind == .channelClosed && error.replyCode == 404 && !error.isRetriable)
        #expect(error.message.contains("no queue 'q'"))
    }

    @Test("connection.close: forced is retriable, access refused is an authentication failure")
    func connectionClose() throws {
        func mapped(_ code: UInt16) throws -> AMQPError {
            var close = amqp_connection_close_t()
            close.reply_code = code
            return try withUnsafeMutablePointer(to: &close) { pointer in
                var reply = amqp_rpc_reply_t()
                reply.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION
                reply.reply = amqp_method_t(id: AMQP_CONNECTION_CLOSE_METHOD, decoded: UnsafeMutableRawPointer(pointer))
                return try #require(AMQPError.from(reply: reply, while: "x"))
            }
        }
        let forced = try mapped(320)
        #expect(forced.kind == .connectionClosed && forced.isRetriable)
        let refused = try mapped(403)
        #expect(refused.kind == .authenticationFailed && !refused.isRetriable)
    }

    @Test("reply codes: passing conditions retry, mistakes do not")
    func replyCodes() {
        #expect(AMQPError.isRetriable(replyCode: 320))
        #expect(AMQPError.isRetriable(replyCode: 405))
        #expect(!AMQPError.isRetriable(replyCode: 404))
        #expect(!AMQPError.isRetriable(replyCode: 406))
        #expect(!AMQPError.isRetriable(replyCode: 403))
    }
}

@Suite("Field tables")
struct FieldTableTests {
    @Test("a table survives the trip to C and back, nested tables included")
    func roundTrip() {
        let table: FieldTable = [
            "x-queue-type": .string("quorum"), "x-delivery-limit": .int(5), "x-single-active-consumer": .bool(true),
            "capabilities": .table(["connection.blocked": .bool(true), "name": .string("Sở Tư pháp")]),
        ]
        let back = CFieldTable.with(table) { FieldTable($0) }
        #expect(back == table)
    }
}
