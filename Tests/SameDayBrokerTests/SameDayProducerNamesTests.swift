import RabbitMQ
import SameDayBroker
import SameDayCore
import Testing

/// Producers name the broker through `SameDayProducerNames`, workers and `sameday topology` through
/// `SameDayTopology`: the two must name the same objects, or events go where no topology was declared.
@Suite("Producer names agree with the topology")
struct SameDayProducerNamesTests {
    static let prefixes = ["", "t.", "bench.4242.0.adapter.", "receiver-1a2b3c."]

    @Test("the names a producer uses are the topology's, whatever the prefix and the shard count", arguments: prefixes)
    func sameNames(prefix: String) {
        let names = SameDayProducerNames(namePrefix: prefix)
        for shards in [1, 4] {
            let topology = SameDayTopology(shards: shards, namePrefix: prefix)
            #expect(topology.producerNames == names)
            #expect(topology.namePrefix == names.namePrefix)
            #expect(topology.eventsExchange == names.eventsExchange)
            #expect(topology.eventsStream == names.eventsStream)
        }
        #expect(SameDayTopology.shardHeader == SameDayProducerNames.shardHeader)
    }

    @Test(
        "what a producer publishes to is declared: the events exchange, routed to the stream, hashed on its header",
        arguments: prefixes)
    func declared(prefix: String) throws {
        let names = SameDayProducerNames(namePrefix: prefix)
        let topology = SameDayTopology(shards: 4, namePrefix: prefix)
        let model = topology.topology
        let exchange = try #require(model.exchanges.first { $0.name == names.eventsExchange })
        #expect(exchange.kind == .topic)
        let stream = try #require(model.queues.first { $0.name == names.eventsStream })
        #expect(stream.kind == .stream)
        #expect(
            model.bindings.contains {
                $0.source == names.eventsExchange && $0.destination == .queue(names.eventsStream)
            })
        let sharding = try #require(model.exchanges.first { $0.name == topology.shardingExchange })
        #expect(sharding.arguments["hash-header"] == .string(SameDayProducerNames.shardHeader))
    }

    @Test("the names are the ones on the broker and in deploy/rabbitmq/definitions.json, byte for byte")
    func literalNames() {
        #expect(SameDayProducerNames().eventsExchange == "sameday.events")
        #expect(SameDayProducerNames().eventsStream == "sameday.events.log")
        #expect(SameDayProducerNames.shardHeader == "dossier")
        let prefixed = SameDayProducerNames(namePrefix: "t.")
        #expect(prefixed.eventsExchange == "t.sameday.events" && prefixed.eventsStream == "t.sameday.events.log")
    }

    @Test("a topology whose prefix changes takes its producer names along")
    func prefixFollows() {
        var topology = SameDayTopology(shards: 2)
        topology.namePrefix = "moved."
        #expect(topology.producerNames == SameDayProducerNames(namePrefix: "moved."))
        #expect(topology.eventsExchange == "moved.sameday.events")
        #expect(topology.workQueue(1) == "moved.sameday.work.1")
    }

    @Test("an event message goes to the producer's exchange with the dossier in the header the topology hashes")
    func eventMessage() throws {
        let event = try DossierEvent.decode(
            #"{"schema":"sameday.dossier-event/1","eventId":"e-1","dossier":"000.00.15.H29-220518-0001","unit":"000.00.15.H29","procedure":"2.000815.000.00.00.H29","type":"received","occurredAt":"2022-05-18T09:00:00+07:00","channel":"direct","source":"test"}"#
        )
        let topology = SameDayTopology(shards: 3, namePrefix: "m.")
        let message = EventMessage.make(event, block: .department, names: topology.producerNames)
        #expect(message.exchange == topology.eventsExchange)
        #expect(message.routingKey == "department.000_00_15_H29.received")
        #expect(message.messageID == "e-1")
        #expect(message.headers.map(\.key) == [SameDayTopology.shardHeader])
        #expect(message.headers.first?.value == event.dossier)
    }
}
