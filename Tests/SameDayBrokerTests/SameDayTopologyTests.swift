import Foundation
import RabbitMQ
import SameDayBroker
import SameDayTestKit
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite("SameDay topology")
struct SameDayTopologyTests {
    @Test("deploy/rabbitmq/definitions.json declares exactly the topology of `SameDayTopology(shards: 4)`")
    func definitionsFileMatchesCode() throws {
        // The file also holds the broker users (Tests/SameDayAdaptersTests pins those, and the file's bytes).
        let file = try Data(contentsOf: repositoryRoot.appendingPathComponent("deploy/rabbitmq/definitions.json"))
        let parsed = try Topology(definitionsJSON: file)
        let code = SameDayTopology(shards: 4).topology
        #expect(parsed.exchanges.map(\.name) == code.exchanges.map(\.name))
        #expect(parsed.queues.map(\.name) == code.queues.map(\.name))
        for (a, b) in zip(parsed.queues, code.queues) {
            #expect(a.kind == b.kind && a.arguments.sortedByKey == b.arguments.sortedByKey, "queue \(a.name)")
        }
        for (a, b) in zip(parsed.exchanges, code.exchanges) {
            #expect(a.kind == b.kind && a.arguments.sortedByKey == b.arguments.sortedByKey, "exchange \(a.name)")
        }
        #expect(parsed.bindings.count == code.bindings.count)
        for (a, b) in zip(parsed.bindings, code.bindings) {
            #expect(a.source == b.source && a.destination == b.destination && a.routingKey == b.routingKey)
        }
        // The bound on the side queues travels as a policy (a queue argument could not change on a running broker).
        let document = try #require(try JSONSerialization.jsonObject(with: file) as? [String: Any])
        let policies = try #require(document["policies"] as? [[String: Any]])
        #expect(policies.count == 1)
        #expect(policies.first?["pattern"] as? String == #"^sameday\.(dead|unroutable)$"#)
        let definition = policies.first?["definition"] as? [String: Any]
        #expect(definition?["max-length"] as? Int == 1_000_000)
        #expect(definition?["overflow"] as? String == "reject-publish")
        for name in ["sameday.dead", "sameday.unroutable"] {
            #expect(name.range(of: #"^sameday\.(dead|unroutable)$"#, options: .regularExpression) != nil)
        }
        #expect("sameday.work.0".range(of: #"^sameday\.(dead|unroutable)$"#, options: .regularExpression) == nil)
    }

    @Test("shard queues are quorum queues with a delivery limit, dead-lettering and single active consumer")
    func shardQueues() throws {
        let topology = SameDayTopology(shards: 3).topology
        let work = topology.queues.filter { $0.name.hasPrefix("sameday.work.") }
        #expect(work.map(\.name) == ["sameday.work.0", "sameday.work.1", "sameday.work.2"])
        for queue in work {
            #expect(queue.kind == .quorum)
            #expect(queue.arguments["x-delivery-limit"] == .int(5))
            #expect(queue.arguments["x-dead-letter-exchange"] == .string("sameday.dead"))
            #expect(queue.arguments["x-single-active-consumer"] == .bool(true))
        }
    }

    @Test("routing keys: a unit code's dots become underscores so it stays one word")
    func routingKeys() {
        #expect(SameDayRoutingKey.event(block: "district", unit: "760", type: "received") == "district.760.received")
        #expect(
            SameDayRoutingKey.event(block: "department", unit: "000.00.15.H29", type: "resolved")
                == "department.000_00_15_H29.resolved")
        #expect(SameDayRoutingKey.alert(level: "overdue", block: "commune", unit: "26740") == "overdue.commune.26740")
    }
}

@Suite("SameDay topology on the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct SameDayTopologyBrokerTests {
    @Test("definitions.json imported by RabbitMQ and the AMQP declaration agree (a redeclare would fail with 406)")
    func importedDefinitionsAgreeWithDeclaration() async throws {
        let vhost = LocalBroker.uniqueName("vhost")
        try LocalBroker.rabbitmqctl(["add_vhost", vhost])
        defer { _ = try? LocalBroker.rabbitmqctl(["delete_vhost", vhost]) }
        try LocalBroker.rabbitmqctl(["set_permissions", "-p", vhost, LocalBroker.url.user, ".*", ".*", ".*"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(vhost).json")
        try SameDayTopology(shards: 4).topology.definitionsJSON(virtualHost: vhost).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try LocalBroker.rabbitmqctl(["import_definitions", file.path])
        try await BlockingThread.run {
            var configuration = LocalBroker.configuration(name: "definitions-agree")
            configuration.brokers[0].virtualHost = vhost
            let connection = try Connection.open(configuration)
            defer { connection.close() }
            try SameDayTopology(shards: 4).topology.declare(on: connection)
        }
    }

    @Test(
        "events route by block to the shards (a dossier always to the same shard) and the stream; others to the alternate exchange"
    )
    func routing() async throws {
        let names = SameDayTopology(shards: 3, namePrefix: LocalBroker.uniqueName("topo") + ".")
        defer { LocalBroker.deleteQueues(names.topology.queues.map(\.name)) }
        let perShard = try await BlockingThread.run { () -> [[String]] in
            let admin = try Connection.open(LocalBroker.configuration(name: "topology-routing"))
            defer {
                try? names.topology.delete(on: admin)
                admin.close()
            }
            try names.topology.declare(on: admin)
            try names.topology.declare(on: admin)  // idempotent
            let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "topology-routing.pub")))
            for dossier in 0..<60 {
                for type in ["received", "resolved"] {
                    try publisher.publish(
                        OutboundMessage(
                            exchange: names.eventsExchange,
                            routingKey: SameDayRoutingKey.event(block: "commune", unit: "26740", type: type),
                            body: Array("{}".utf8), messageID: "d\(dossier)-\(type)",
                            headers: [(SameDayTopology.shardHeader, "000.00.15.H29-220518-\(dossier)")]))
                }
            }
            try publisher.publish(
                OutboundMessage(
                    exchange: names.eventsExchange, routingKey: "nonsense.1.received", body: [], messageID: "stray"))
            try publisher.waitForConfirms()
            #expect(publisher.unroutableCount == 0)
            publisher.close()
            var shards: [[String]] = []
            for index in 0..<names.shards {
                shards.append(try Self.drain(names.workQueue(index)))
            }
            #expect(try Self.drain(names.unroutableQueue) == ["stray"])
            return shards
        }
        let all = perShard.flatMap { $0 }
        #expect(all.count == 120)
        #expect(perShard.allSatisfy { !$0.isEmpty }, "60 dossiers should reach all 3 shards")
        for shard in perShard {
            for id in shard where id.hasSuffix("-received") {
                #expect(shard.contains(id.replacingOccurrences(of: "-received", with: "-resolved")))
            }
        }
    }

    static func drain(_ queue: String) throws -> [String] {
        let consumer = try Consumer(.init(connection: LocalBroker.configuration(name: "drain"), queue: queue))
        defer { consumer.close() }
        var ids: [String] = []
        while let delivery = try consumer.next(timeout: .milliseconds(700)) {
            ids.append(delivery.messageID ?? "")
            try consumer.ack(delivery.tag)
        }
        return ids
    }
}
