import Foundation
import RabbitMQ
import SameDayTestKit
import Testing

/// Against the real RabbitMQ on loopback (deploy/local-broker.sh). Each test uses queues of its own.
@Suite("RabbitMQ client against the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct BrokerIntegrationTests {
    static func declare(_ topology: Topology, name: String) throws {
        let connection = try Connection.open(LocalBroker.configuration(name: name))
        try topology.declare(on: connection)
        connection.close()
    }

    static func message(_ index: Int, to queue: String, size: Int = 300) -> OutboundMessage {
        OutboundMessage(
            exchange: "", routingKey: queue, body: [UInt8](repeating: UInt8(index % 251), count: size),
            messageID: "m-\(index)")
    }

    /// Consumes until `expected` distinct ids arrived or `timeout` passed; acks every 100 and at the end.
    static func drain(_ consumer: Consumer, expected: Int, timeout: Duration = .seconds(60)) throws -> [String] {
        var ids: [String] = []
        let deadline = ContinuousClock.now + timeout
        var seen = Set<String>()
        var lastTag: DeliveryTag?
        while seen.count < expected && ContinuousClock.now < deadline {
            guard let delivery = try consumer.next(timeout: .seconds(1)) else { continue }
            ids.append(delivery.messageID ?? "?")
            seen.insert(delivery.messageID ?? "?")
            lastTag = delivery.tag
            if ids.count % 100 == 0 { try consumer.ack(delivery.tag, multiple: true) }
        }
        if let lastTag { try consumer.ack(lastTag, multiple: true) }
        return ids
    }

    @Test("after the broker closed a channel (406), the same connection opens it again at once")
    func channelReopensAfterBrokerClose() throws {
        let name = LocalBroker.uniqueName("reopen")
        let connection = try Connection.open(LocalBroker.configuration(name: name))
        defer { connection.close() }
        let topic = Topology(exchanges: [.init(name, kind: .topic, autoDelete: true)])
        try topic.declare(on: connection)
        // The same exchange with another type: the broker closes the channel with 406 PRECONDITION_FAILED.
        let error = try #require(throws: AMQPError.self) {
            try Topology(exchanges: [.init(name, kind: .fanout, autoDelete: true)]).declare(on: connection)
        }
        #expect(error.kind == .channelClosed && error.replyCode == 406, "\(error)")
        // Before, the closing of the closed channel left the next open of its number waiting until a timeout.
        let started = ContinuousClock.now
        try Topology(queues: [.init(name + ".q", kind: .classic, autoDelete: true)]).declare(on: connection)
        #expect(ContinuousClock.now - started < .seconds(2))
        try Topology(exchanges: [.init(name, kind: .topic)], queues: [.init(name + ".q", kind: .classic)])
            .delete(on: connection)
    }

    @Test("20,000 messages published with confirms are all consumed, each id exactly once")
    func twentyThousand() async throws {
        let queue = LocalBroker.uniqueName("twenty-k")
        defer { LocalBroker.deleteQueues([queue]) }
        let ids = try await BlockingThread.run {
            try Self.declare(Topology(queues: [.init(queue, kind: .quorum)]), name: queue)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            for index in 0..<20_000 { try publisher.publish(Self.message(index, to: queue)) }
            try publisher.waitForConfirms()
            #expect(publisher.confirmedCount == 20_000 && publisher.unconfirmedCount == 0)
            publisher.close()
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub"), queue: queue))
            defer { consumer.close() }
            return try Self.drain(consumer, expected: 20_000)
        }
        #expect(ids.count == 20_000)
        #expect(Set(ids) == Set((0..<20_000).map { "m-\($0)" }))
    }

    @Test("a delivery arrives whole: no body, a body of one frame, a body over several frames, id and headers")
    func deliveriesArriveWhole() async throws {
        let queue = LocalBroker.uniqueName("frames")
        defer { LocalBroker.deleteQueues([queue]) }
        // With the smallest frames AMQP allows (4096 bytes), a 10,000-byte body takes three body frames.
        let sizes = [0, 300, 4088, 10_000]
        let deliveries = try await BlockingThread.run {
            try Self.declare(Topology(queues: [.init(queue, kind: .quorum)]), name: queue)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            for (index, size) in sizes.enumerated() {
                var message = Self.message(index, to: queue, size: size)
                message.headers = [("dossier", "D-\(index)"), ("level", "warning")]
                try publisher.publish(message)
            }
            try publisher.waitForConfirms()
            publisher.close()
            var connection = LocalBroker.configuration(name: "\(queue).sub")
            connection.frameMax = 4096
            let consumer = try Consumer(.init(connection: connection, queue: queue))
            defer { consumer.close() }
            var deliveries: [Delivery] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while deliveries.count < sizes.count && ContinuousClock.now < deadline {
                if let delivery = try consumer.next(timeout: .seconds(1)) { deliveries.append(delivery) }
            }
            if let last = deliveries.last { try consumer.ack(last.tag, multiple: true) }
            return deliveries
        }
        try #require(deliveries.count == sizes.count)
        for (index, delivery) in deliveries.enumerated() {
            let whole = delivery.body == Self.message(index, to: queue, size: sizes[index]).body
            #expect(whole, "\(delivery.body.count) bytes arrived of \(sizes[index])")
            #expect(delivery.messageID == "m-\(index)")
            #expect(delivery.routingKey == queue && delivery.exchange.isEmpty && !delivery.redelivered)
            #expect(delivery.headers["dossier"]?.stringValue == "D-\(index)")
            #expect(delivery.headers["level"]?.stringValue == "warning")
        }
    }

    @Test("an unroutable mandatory publish is reported as returned, by message id")
    func unroutable() async throws {
        let exchange = LocalBroker.uniqueName("nowhere")
        let settlements = try await BlockingThread.run {
            let connection = try Connection.open(LocalBroker.configuration(name: exchange))
            try Topology(exchanges: [.init(exchange, kind: .topic, autoDelete: true)]).declare(on: connection)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(exchange).pub")))
            var settlements: [Settlement] = []
            publisher.onSettlement = { settlements.append($0) }
            try publisher.publish(
                OutboundMessage(
                    exchange: exchange, routingKey: "no.binding", body: Array("{}".utf8), messageID: "lost-1"))
            try publisher.waitForConfirms()
            #expect(publisher.unroutableCount == 1)
            publisher.close()
            try Topology(exchanges: [.init(exchange, kind: .topic)]).delete(on: connection)
            connection.close()
            return settlements
        }
        #expect(settlements == [.unroutable(messageID: "lost-1", replyCode: 312, replyText: "NO_ROUTE")])
    }

    @Test("a consumer whose queue is deleted notices the cancel")
    func cancelNotice() async throws {
        let queue = LocalBroker.uniqueName("cancel")
        let outcome = try await BlockingThread.run { () -> (Int, AMQPError?) in
            try Self.declare(Topology(queues: [.init(queue, kind: .classic)]), name: queue)
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub"), queue: queue))
            _ = try consumer.next(timeout: .milliseconds(200))
            try LocalBroker.rabbitmqctl(["delete_queue", queue])
            var failure: AMQPError?
            let deadline = ContinuousClock.now + .seconds(10)
            while failure == nil && ContinuousClock.now < deadline {
                do { _ = try consumer.next(timeout: .milliseconds(500)) } catch { failure = error as? AMQPError }
            }
            return (consumer.cancellationCount, failure)
        }
        #expect(outcome.0 == 1)
        #expect(outcome.1?.kind == .consumerCancelled)
        #expect(outcome.1?.replyCode == 404)
    }

    @Test("a consumer resubscribes when its channel is closed by the broker and its queue still exists")
    func resubscribeAfterCancel() async throws {
        let queue = LocalBroker.uniqueName("resubscribe")
        defer { LocalBroker.deleteQueues([queue]) }
        let received = try await BlockingThread.run { () -> [String] in
            try Self.declare(Topology(queues: [.init(queue, kind: .quorum)]), name: queue)
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub"), queue: queue))
            _ = try consumer.next(timeout: .milliseconds(200))
            #expect(try LocalBroker.closeConnections(named: "\(queue).sub") == 1)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            for index in 0..<10 { try publisher.publish(Self.message(index, to: queue)) }
            try publisher.waitForConfirms()
            let ids = try Self.drain(consumer, expected: 10, timeout: .seconds(20))
            #expect(consumer.reconnectCount >= 1)
            return ids
        }
        #expect(Set(received).count == 10)
    }

    @Test("connections closed by the broker are re-established by publisher and consumer; nothing confirmed is lost")
    func brokerClosesConnections() async throws {
        let queue = LocalBroker.uniqueName("close-conn")
        defer { LocalBroker.deleteQueues([queue]) }
        let (confirmed, consumed, reconnects) = try await BlockingThread.run {
            () -> (Set<String>, Set<String>, (Int, Int)) in
            try Self.declare(Topology(queues: [.init(queue, kind: .quorum)]), name: queue)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            var confirmed = Set<String>()
            publisher.onSettlement = { if case .confirmed(let id) = $0 { confirmed.insert(id) } }
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub"), queue: queue))
            var consumed = Set<String>()
            for index in 0..<6_000 {
                try publisher.publish(Self.message(index, to: queue))
                if index == 2_000 { try LocalBroker.closeConnections(named: "\(queue).pub") }
                if index == 3_000 {
                    // Take some deliveries unacked, then lose the consumer's connection: they must come back.
                    for _ in 0..<50 { if let d = try consumer.next(timeout: .seconds(1)) { _ = d } }
                    try LocalBroker.closeConnections(named: "\(queue).sub")
                }
            }
            try publisher.waitForConfirms(timeout: .seconds(60))
            consumed.formUnion(try Self.drain(consumer, expected: confirmed.count, timeout: .seconds(60)))
            let reconnects = (publisher.reconnectCount, consumer.reconnectCount)
            publisher.close()
            consumer.close()
            return (confirmed, consumed, reconnects)
        }
        #expect(reconnects.0 >= 1 && reconnects.1 >= 1)
        #expect(confirmed.count == 6_000)
        #expect(
            confirmed.subtracting(consumed).isEmpty,
            "confirmed but never consumed: \(confirmed.subtracting(consumed).count)")
    }

    @Test("a message rejected again and again is dead-lettered after its delivery limit")
    func deliveryLimit() async throws {
        let queue = LocalBroker.uniqueName("poison")
        let dead = queue + ".dead"
        defer { LocalBroker.deleteQueues([queue, dead]) }
        let (deliveries, deadLettered) = try await BlockingThread.run { () -> (Int, Delivery?) in
            try Self.declare(
                Topology(
                    exchanges: [.init(dead, kind: .fanout, autoDelete: true)],
                    queues: [
                        .init(dead, kind: .quorum),
                        .init(
                            queue, kind: .quorum,
                            arguments: ["x-delivery-limit": .int(3), "x-dead-letter-exchange": .string(dead)]),
                    ],
                    bindings: [.init(from: dead, to: .queue(dead), routingKey: "")]),
                name: queue)
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            try publisher.publish(
                OutboundMessage(exchange: "", routingKey: queue, body: Array("not json".utf8), messageID: "poison-1"))
            try publisher.waitForConfirms()
            publisher.close()
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub"), queue: queue))
            var deliveries = 0
            while let delivery = try consumer.next(timeout: .seconds(2)) {
                deliveries += 1
                try consumer.reject(delivery.tag, requeue: true)
            }
            consumer.close()
            let deadConsumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(dead).sub"), queue: dead))
            let deadLetter = try deadConsumer.next(timeout: .seconds(10))
            if let deadLetter { try deadConsumer.ack(deadLetter.tag) }
            deadConsumer.close()
            return (deliveries, deadLetter)
        }
        #expect(deliveries == 4)  // the first delivery and three redeliveries, then the limit
        #expect(deadLettered?.messageID == "poison-1")
        #expect(deadLettered.map { String(decoding: $0.body, as: UTF8.self) } == "not json")
    }

    @Test("a 2-second heartbeat keeps the connection alive across 10 idle seconds in the consumer's wait")
    func heartbeats() async throws {
        let queue = LocalBroker.uniqueName("heartbeat")
        defer { LocalBroker.deleteQueues([queue]) }
        let (longestCall, reconnects, gotMessage) = try await BlockingThread.run { () -> (Duration, Int, Bool) in
            try Self.declare(Topology(queues: [.init(queue, kind: .classic)]), name: queue)
            let consumer = try Consumer(
                .init(connection: LocalBroker.configuration(name: "\(queue).sub", heartbeat: 2), queue: queue))
            #expect(consumer.maximumWait == .milliseconds(500))
            var longest = Duration.zero
            let idleUntil = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < idleUntil {
                let start = ContinuousClock.now
                #expect(try consumer.next(timeout: .milliseconds(500)) == nil)
                longest = max(longest, ContinuousClock.now - start)
            }
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "\(queue).pub")))
            try publisher.publish(Self.message(1, to: queue))
            try publisher.waitForConfirms()
            publisher.close()
            let delivery = try consumer.next(timeout: .seconds(5))
            if let delivery { try consumer.ack(delivery.tag) }
            let reconnects = consumer.reconnectCount
            consumer.close()
            return (longest, reconnects, delivery != nil)
        }
        #expect(reconnects == 0, "the idle connection was dropped and re-made")
        #expect(gotMessage)
        #expect(longestCall < .seconds(1))
    }

    @Test("wrong credentials fail at once and are not retried")
    func badCredentials() async throws {
        let error = try await BlockingThread.run { () -> AMQPError? in
            var configuration = LocalBroker.configuration(name: "bad-credentials")
            configuration.brokers[0].password = "definitely-wrong"
            do {
                _ = try Connection.open(configuration)
                return nil
            } catch {
                return error as? AMQPError
            }
        }
        #expect(error?.kind == .authenticationFailed)
        #expect(error?.isRetriable == false)
    }
}
