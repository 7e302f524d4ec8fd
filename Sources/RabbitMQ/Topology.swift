import CRabbitMQ
import Foundation

/// Exchanges, queues and bindings, as values: declared idempotently over AMQP, or rendered as a RabbitMQ
/// definitions file. Declaring the same topology twice changes nothing; declaring a queue that exists with other
/// arguments fails with 406 PRECONDITION_FAILED naming the queue.
public struct Topology: Sendable, Equatable {
    public struct Exchange: Sendable, Equatable {
        public enum Kind: String, Sendable {
            case direct, topic, fanout, headers
            /// rabbitmq_consistent_hash_exchange: routes by a hash of the routing key, a header or a property.
            case consistentHash = "x-consistent-hash"
        }
        public var name: String
        public var kind: Kind
        public var durable = true
        public var autoDelete = false
        public var `internal` = false
        public var arguments: FieldTable = [:]

        public init(
            _ name: String, kind: Kind, durable: Bool = true, autoDelete: Bool = false, internal: Bool = false,
            arguments: FieldTable = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.autoDelete = autoDelete
            self.internal = `internal`
            self.arguments = arguments
        }
    }

    public struct Queue: Sendable, Equatable {
        public enum Kind: String, Sendable {
            case classic, quorum, stream
        }
        public var name: String
        public var kind: Kind
        public var durable = true
        public var exclusive = false
        public var autoDelete = false
        /// Arguments besides `x-queue-type`, which `kind` sets.
        public var arguments: FieldTable = [:]

        public init(
            _ name: String, kind: Kind, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
            arguments: FieldTable = [:]
        ) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.arguments = arguments
        }

        /// The arguments as sent to the broker.
        public var declaredArguments: FieldTable {
            var all: FieldTable = ["x-queue-type": .string(kind.rawValue)]
            all.entries += arguments.entries
            return all
        }
    }

    public struct Binding: Sendable, Equatable {
        public enum Destination: Sendable, Equatable {
            case queue(String)
            case exchange(String)
        }
        public var source: String
        public var destination: Destination
        /// For a consistent-hash exchange, the binding key is the weight ("1").
        public var routingKey: String
        public var arguments: FieldTable = [:]

        public init(from source: String, to destination: Destination, routingKey: String, arguments: FieldTable = [:]) {
            self.source = source
            self.destination = destination
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }

    /// A broker policy: settings RabbitMQ applies to the queues whose names match `pattern`, changeable on a
    /// running broker without redeclaring a queue (a queue argument cannot change: a redeclare with another value
    /// fails with 406). Not declared over AMQP: it travels in the definitions file, or `rabbitmqctl set_policy`.
    public struct Policy: Sendable, Equatable {
        public var name: String
        /// A regular expression on queue names.
        public var pattern: String
        public var definition: FieldTable
        public var priority: Int

        public init(_ name: String, pattern: String, definition: FieldTable, priority: Int = 10) {
            self.name = name
            self.pattern = pattern
            self.definition = definition
            self.priority = priority
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]
    public var policies: [Policy]

    public init(
        exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = [], policies: [Policy] = []
    ) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
        self.policies = policies
    }
}

// MARK: Declaring over AMQP

extension Topology {
    /// Declares everything on `connection` (exchanges, then queues, then bindings), using a channel of its own.
    public func declare(on connection: Connection, channel: UInt16 = 2) throws(AMQPError) {
        try connection.openChannel(channel)
        defer { connection.closeChannel(channel) }
        let state = connection.state
        for exchange in exchanges {
            let reply = exchange.name.withBytes { name in
                exchange.kind.rawValue.withBytes { type in
                    CFieldTable.with(exchange.arguments) { arguments in
                        _ = amqp_exchange_declare(
                            state, channel, name, type, 0, exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0,
                            exchange.internal ? 1 : 0, arguments)
                        return amqp_get_rpc_reply(state)
                    }
                }
            }
            try connection.check(reply, channel: channel, "declaring exchange '\(exchange.name)'")
        }
        for queue in queues {
            let reply = queue.name.withBytes { name in
                CFieldTable.with(queue.declaredArguments) { arguments in
                    _ = amqp_queue_declare(
                        state, channel, name, 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0,
                        queue.autoDelete ? 1 : 0, arguments)
                    return amqp_get_rpc_reply(state)
                }
            }
            try connection.check(reply, channel: channel, "declaring \(queue.kind) queue '\(queue.name)'")
        }
        for binding in bindings {
            let reply = binding.source.withBytes { source in
                binding.routingKey.withBytes { key in
                    CFieldTable.with(binding.arguments) { arguments in
                        switch binding.destination {
                        case .queue(let queue):
                            _ = queue.withBytes { amqp_queue_bind(state, channel, $0, source, key, arguments) }
                        case .exchange(let exchange):
                            _ = exchange.withBytes { amqp_exchange_bind(state, channel, $0, source, key, arguments) }
                        }
                        return amqp_get_rpc_reply(state)
                    }
                }
            }
            try connection.check(reply, channel: channel, "binding \(binding.destination) to '\(binding.source)'")
        }
    }

    /// Deletes one queue, whatever it holds, and returns how many messages it held; nil when there is no such queue
    /// (RabbitMQ answers `queue.delete` of a missing queue with success, so a passive declare asks first). Any other
    /// refusal (403 ACCESS_REFUSED: no configure permission on the name) is thrown.
    public static func deleteQueue(_ name: String, on connection: Connection, channel: UInt16 = 2) throws(AMQPError)
        -> UInt32?
    {
        try connection.openChannel(channel)
        let exists = name.withBytes { queue in
            _ = amqp_queue_declare(connection.state, channel, queue, 1, 0, 0, 0, amqp_empty_table)
            return amqp_get_rpc_reply(connection.state)
        }
        do {
            try connection.check(exists, channel: channel, "looking up queue '\(name)'")
        } catch  where error.kind == .channelClosed && error.replyCode == 404 {
            return nil  // the broker closed the channel
        }
        defer { connection.closeChannel(channel) }
        var count: UInt32 = 0
        let reply = name.withBytes { queue in
            if let ok = amqp_queue_delete(connection.state, channel, queue, 0, 0) { count = ok.pointee.message_count }
            return amqp_get_rpc_reply(connection.state)
        }
        try connection.check(reply, channel: channel, "deleting queue '\(name)'")
        return count
    }

    /// Deletes the queues and exchanges (for tests and teardown); missing ones are ignored.
    public func delete(on connection: Connection, channel: UInt16 = 2) throws(AMQPError) {
        for queue in queues {
            try connection.openChannel(channel)
            let reply = queue.name.withBytes { name in
                _ = amqp_queue_delete(connection.state, channel, name, 0, 0)
                return amqp_get_rpc_reply(connection.state)
            }
            if (try? connection.check(reply, channel: channel, "deleting queue \(queue.name)")) != nil {
                connection.closeChannel(channel)
            }
        }
        for exchange in exchanges {
            try connection.openChannel(channel)
            let reply = exchange.name.withBytes { name in
                _ = amqp_exchange_delete(connection.state, channel, name, 0)
                return amqp_get_rpc_reply(connection.state)
            }
            if (try? connection.check(reply, channel: channel, "deleting exchange \(exchange.name)")) != nil {
                connection.closeChannel(channel)
            }
        }
    }
}

// MARK: RabbitMQ definitions file

extension Topology {
    /// The topology in RabbitMQ's definitions format (`rabbitmqctl import_definitions`, or
    /// `definitions.local.path` in rabbitmq.conf): pretty-printed JSON with sorted keys, so the file diffs well.
    public func definitionsJSON(virtualHost: String = "/") -> Data {
        let document: [String: Any] = [
            "vhosts": [["name": virtualHost]],
            "exchanges": exchanges.map { exchange in
                [
                    "name": exchange.name, "vhost": virtualHost, "type": exchange.kind.rawValue,
                    "durable": exchange.durable, "auto_delete": exchange.autoDelete, "internal": exchange.internal,
                    "arguments": exchange.arguments.jsonObject,
                ] as [String: Any]
            },
            "queues": queues.map { queue in
                [
                    "name": queue.name, "vhost": virtualHost, "durable": queue.durable,
                    "auto_delete": queue.autoDelete, "arguments": queue.declaredArguments.jsonObject,
                ] as [String: Any]
            },
            "bindings": bindings.map { binding in
                let (destination, kind): (String, String) =
                    switch binding.destination {
                    case .queue(let name): (name, "queue")
                    case .exchange(let name): (name, "exchange")
                    }
                return [
                    "source": binding.source, "vhost": virtualHost, "destination": destination,
                    "destination_type": kind, "routing_key": binding.routingKey,
                    "arguments": binding.arguments.jsonObject,
                ] as [String: Any]
            },
            "policies": policies.map { policy in
                [
                    "name": policy.name, "vhost": virtualHost, "pattern": policy.pattern, "apply-to": "queues",
                    "priority": policy.priority, "definition": policy.definition.jsonObject,
                ] as [String: Any]
            },
        ]
        // Serialising plain dictionaries, strings, numbers and booleans cannot fail.
        return try! JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// Reads the exchanges, queues and bindings of a definitions file (other sections, such as users and
    /// permissions, are ignored), to compare a deployed file with the code.
    public init(definitionsJSON data: Data) throws {
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AMQPError(.invalidConfiguration, "definitions: top level is not an object", isRetriable: false)
        }
        func list(_ key: String) -> [[String: Any]] { document[key] as? [[String: Any]] ?? [] }
        func arguments(_ object: [String: Any], _ path: String) throws -> FieldTable {
            try FieldTable(jsonObject: object["arguments"] ?? [String: Any](), path: "\(path).arguments")
        }
        var exchanges: [Exchange] = []
        for (index, object) in list("exchanges").enumerated() {
            let path = "exchanges[\(index)]"
            guard let name = object["name"] as? String, let type = object["type"] as? String,
                let kind = Exchange.Kind(rawValue: type)
            else {
                throw AMQPError(
                    .invalidConfiguration, "definitions: \(path) needs name and a known type", isRetriable: false)
            }
            exchanges.append(
                Exchange(
                    name, kind: kind, durable: object["durable"] as? Bool ?? true,
                    autoDelete: object["auto_delete"] as? Bool ?? false,
                    internal: object["internal"] as? Bool ?? false, arguments: try arguments(object, path)))
        }
        var queues: [Queue] = []
        for (index, object) in list("queues").enumerated() {
            let path = "queues[\(index)]"
            guard let name = object["name"] as? String else {
                throw AMQPError(.invalidConfiguration, "definitions: \(path).name missing", isRetriable: false)
            }
            var all = try arguments(object, path)
            let kind = Queue.Kind(rawValue: all["x-queue-type"]?.stringValue ?? "classic") ?? .classic
            all["x-queue-type"] = nil
            queues.append(
                Queue(
                    name, kind: kind, durable: object["durable"] as? Bool ?? true,
                    autoDelete: object["auto_delete"] as? Bool ?? false, arguments: all))
        }
        var bindings: [Binding] = []
        for (index, object) in list("bindings").enumerated() {
            let path = "bindings[\(index)]"
            guard let source = object["source"] as? String, let destination = object["destination"] as? String,
                let kind = object["destination_type"] as? String, let key = object["routing_key"] as? String
            else { throw AMQPError(.invalidConfiguration, "definitions: \(path) is incomplete", isRetriable: false) }
            bindings.append(
                Binding(
                    from: source, to: kind == "exchange" ? .exchange(destination) : .queue(destination),
                    routingKey: key, arguments: try arguments(object, path)))
        }
        self.init(exchanges: exchanges, queues: queues, bindings: bindings)
    }
}

extension FieldTable {
    var jsonObject: [String: Any] {
        var object: [String: Any] = [:]
        for (key, value) in entries { object[key] = value.jsonObject }
        return object
    }

    /// Keys are sorted: JSON objects have no order, and comparisons must not depend on one.
    init(jsonObject: Any, path: String) throws {
        guard let object = jsonObject as? [String: Any] else {
            throw AMQPError(.invalidConfiguration, "definitions: \(path) is not an object", isRetriable: false)
        }
        var entries: [(key: String, value: FieldValue)] = []
        for key in object.keys.sorted() {
            entries.append((key, try FieldValue(jsonObject: object[key]!, path: "\(path).\(key)")))
        }
        self.init(entries)
    }

    /// The same entries with keys sorted, recursively, for order-insensitive comparison.
    public var sortedByKey: FieldTable {
        FieldTable(
            entries.sorted { $0.key < $1.key }.map { entry in
                if case .table(let nested) = entry.value { return (entry.key, .table(nested.sortedByKey)) }
                return entry
            })
    }
}

extension FieldValue {
    var jsonObject: Any {
        switch self {
        case .string(let text): text
        case .bool(let flag): flag
        case .int(let number): number
        case .table(let table): table.jsonObject
        }
    }

    init(jsonObject: Any, path: String) throws {
        switch jsonObject {
        case let text as String: self = .string(text)
        // JSON booleans arrive as NSNumber too; their objCType is "c" (char), integers' is "i", "l" or "q".
        case let number as NSNumber where String(cString: number.objCType) == "c": self = .bool(number.boolValue)
        case let number as NSNumber: self = .int(number.int64Value)
        case let nested as [String: Any]: self = .table(try FieldTable(jsonObject: nested, path: path))
        default:
            throw AMQPError(.invalidConfiguration, "definitions: \(path) has an unsupported value", isRetriable: false)
        }
    }
}
