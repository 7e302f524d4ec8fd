import RabbitMQ
import SameDayCore

/// SameDay's names on the broker and the topology that connects them (docs/architecture.md §2).
///
/// ```
/// sameday.events (topic, key <block>.<unit>.<type>) ─<block>.#─▶ sameday.events.sharded (x-consistent-hash on header `dossier`)
///   │   └─ alternate exchange: sameday.unroutable (fanout) ─▶ queue sameday.unroutable     ──1──▶ sameday.work.<n> (quorum)
///   └─<block>.#─▶ stream sameday.events.log (7 days)                    sameday.work.<n> ─ dead letters ─▶ sameday.dead
/// sameday.alerts (topic, key <level>.<block>.<unit>): supervisors bind their own queues.
/// ```
///
/// A `namePrefix` puts a whole private copy on one broker (tests use a unique prefix per test). A producer needs
/// only `SameDayProducerNames`, which this holds: the names both share are spelled there.
public struct SameDayTopology: Sendable {
    public var shards: Int
    /// The names a producer publishes to; `eventsExchange`, `eventsStream`, `shardHeader` and `namePrefix` are its.
    public var producerNames: SameDayProducerNames
    public var namePrefix: String {
        get { producerNames.namePrefix }
        set { producerNames.namePrefix = newValue }
    }
    /// Deliveries of one message before a quorum queue dead-letters it (poison messages).
    public var deliveryLimit: Int64
    /// Retention of the replayable event history.
    public var streamMaxAge: String

    public init(shards: Int, namePrefix: String = "", deliveryLimit: Int64 = 5, streamMaxAge: String = "7D") {
        self.shards = shards
        self.producerNames = SameDayProducerNames(namePrefix: namePrefix)
        self.deliveryLimit = deliveryLimit
        self.streamMaxAge = streamMaxAge
    }

    public var eventsExchange: String { producerNames.eventsExchange }
    public var shardingExchange: String { namePrefix + "sameday.events.sharded" }
    public var unroutableExchange: String { namePrefix + "sameday.unroutable" }
    public var unroutableQueue: String { namePrefix + "sameday.unroutable" }
    public var deadLetterExchange: String { namePrefix + "sameday.dead" }
    public var deadLetterQueue: String { namePrefix + "sameday.dead" }
    public var eventsStream: String { producerNames.eventsStream }
    public var alertsExchange: String { namePrefix + "sameday.alerts" }
    /// The header the consistent-hash exchange hashes: every event of a dossier lands on the same shard.
    public static let shardHeader = SameDayProducerNames.shardHeader

    /// The blocks (khối) of units; the first word of every event routing key.
    public static let blocks = Block.allCases.map(\.rawValue)

    /// Dead letters and unroutable events wait for a person: bounded, and past the bound the broker refuses more to
    /// their publishers (a worker's outbox keeps its dead letters and tries again; an adapter keeps its spool)
    /// instead of dropping what they hold.
    public static let sideQueueMaxLength: Int64 = 1_000_000

    /// The policy that bounds `sameday.dead` and `sameday.unroutable` (deploy/local-broker.sh sets the same).
    public var sideQueuesPolicy: Topology.Policy {
        let prefix = namePrefix.replacingOccurrences(of: ".", with: "\\.")
        return Topology.Policy(
            namePrefix + "sameday-bounded-side-queues", pattern: "^\(prefix)sameday\\.(dead|unroutable)$",
            definition: ["max-length": .int(Self.sideQueueMaxLength), "overflow": .string("reject-publish")])
    }

    /// The work queue of shard `index` (0-based).
    public func workQueue(_ index: Int) -> String { namePrefix + "sameday.work.\(index)" }

    /// The broker objects, in declaration order.
    public var topology: Topology {
        var exchanges: [Topology.Exchange] = [
            .init(unroutableExchange, kind: .fanout),
            .init(eventsExchange, kind: .topic, arguments: ["alternate-exchange": .string(unroutableExchange)]),
            .init(shardingExchange, kind: .consistentHash, arguments: ["hash-header": .string(Self.shardHeader)]),
            .init(deadLetterExchange, kind: .fanout),
            .init(alertsExchange, kind: .topic),
        ]
        exchanges.sort { $0.name < $1.name }
        var queues: [Topology.Queue] = [
            .init(unroutableQueue, kind: .quorum),
            .init(deadLetterQueue, kind: .quorum),
            .init(eventsStream, kind: .stream, arguments: ["x-max-age": .string(streamMaxAge)]),
        ]
        for shard in 0..<shards {
            queues.append(
                .init(
                    workQueue(shard), kind: .quorum,
                    arguments: [
                        "x-delivery-limit": .int(deliveryLimit),
                        "x-dead-letter-exchange": .string(deadLetterExchange),
                        // At-least-once dead-lettering needs reject-publish overflow (docs/architecture.md §5).
                        "x-dead-letter-strategy": .string("at-least-once"),
                        "x-overflow": .string("reject-publish"),
                        // One consumer per shard at a time, a second line of defence behind the shard's lease (PostgreSQL) or
                        // state lock (SQLite): a standby does not consume at all until it holds the lease.
                        "x-single-active-consumer": .bool(true),
                    ]))
        }
        var bindings: [Topology.Binding] = [
            .init(from: unroutableExchange, to: .queue(unroutableQueue), routingKey: ""),
            .init(from: deadLetterExchange, to: .queue(deadLetterQueue), routingKey: ""),
        ]
        // Only the four blocks route; any other key falls to the alternate exchange, where an operator sees it.
        for block in Self.blocks {
            bindings.append(.init(from: eventsExchange, to: .exchange(shardingExchange), routingKey: "\(block).#"))
            bindings.append(.init(from: eventsExchange, to: .queue(eventsStream), routingKey: "\(block).#"))
        }
        for shard in 0..<shards {
            // For a consistent-hash exchange the binding key is the shard's weight.
            bindings.append(.init(from: shardingExchange, to: .queue(workQueue(shard)), routingKey: "1"))
        }
        return Topology(exchanges: exchanges, queues: queues, bindings: bindings, policies: [sideQueuesPolicy])
    }
}

/// Routing keys. Topic routing keys split on dots, and agency codes such as `000.00.15.H29` contain dots, so a
/// unit code's dots become underscores inside a key (`Unit.routingWord`).
public enum SameDayRoutingKey {
    /// `<block>.<unit>.<type>` for a dossier event, e.g. `district.760.received`.
    public static func event(block: String, unit: String, type: String) -> String {
        "\(block).\(keyWord(unit)).\(type)"
    }

    /// `<level>.<block>.<unit>` for an alert, e.g. `overdue.commune.26740`.
    public static func alert(level: String, block: String, unit: String) -> String {
        "\(level).\(block).\(keyWord(unit))"
    }

    /// A unit code as one routing-key word (`Unit.routingWord`: its dots, which would split it, become underscores).
    public static func keyWord(_ unit: String) -> String { Unit.routingWord(unit) }
}
