import Foundation

/// Least privilege on the broker (ARCHITECTURE.md, "Least privilege"): one broker user per unit system, allowed to
/// write only to the events exchange and, through topic permissions, only routing keys of its own units; and one
/// read-only user per supervisor, allowed only to consume its own alert queues.
///
/// Users are created without a password (`password_hash` empty: no password login) so that no secret is ever in
/// the repository; an operator sets each one with `rabbitmqctl change_password`.
public struct SameDayBrokerUsers: Sendable {
    public struct UnitSystem: Sendable, Equatable {
        public var name: String
        public var units: [String]
        public init(name: String, units: [String]) {
            self.name = name
            self.units = units
        }
    }

    public var unitSystems: [UnitSystem]
    /// Supervisor names; each reads the queues `<prefix>sameday.alerts.<name>` and `<prefix>sameday.alerts.<name>.*`.
    public var supervisors: [String]
    public var topology: SameDayTopology

    public init(unitSystems: [UnitSystem], supervisors: [String], topology: SameDayTopology) {
        self.unitSystems = unitSystems
        self.supervisors = supervisors
        self.topology = topology
    }

    /// One user's rights, as `rabbitmqctl set_permissions` / `set_topic_permissions` take them.
    public struct Permissions: Sendable, Equatable {
        public var user: String
        public var configure: String
        public var write: String
        public var read: String
        /// (exchange, write pattern, read pattern), or nil.
        public var topic: (exchange: String, write: String, read: String)?

        public static func == (a: Permissions, b: Permissions) -> Bool {
            a.user == b.user && a.configure == b.configure && a.write == b.write && a.read == b.read
                && a.topic?.exchange == b.topic?.exchange && a.topic?.write == b.topic?.write
                && a.topic?.read == b.topic?.read
        }
    }

    /// The broker user of a unit system.
    public static func userName(unitSystem: String) -> String { "adapter.\(unitSystem)" }
    public static func userName(supervisor: String) -> String { "supervisor.\(supervisor)" }

    public func permissions(_ system: UnitSystem) -> Permissions {
        // Routing keys are <block>.<unit word>.<type>; the unit word is the code with dots as underscores.
        let words = system.units.map { Self.regexEscape(SameDayRoutingKey.keyWord($0)) }.sorted()
        return Permissions(
            user: Self.userName(unitSystem: system.name), configure: "^$",
            write: "^\(Self.regexEscape(topology.eventsExchange))$", read: "^$",
            topic: (topology.eventsExchange, "^[a-z]+\\.(\(words.joined(separator: "|")))\\.[a-z_]+$", "^$"))
    }

    public func permissions(supervisor: String) -> Permissions {
        let queue = Self.regexEscape(topology.alertsExchange + "." + supervisor)
        return Permissions(
            user: Self.userName(supervisor: supervisor), configure: "^$", write: "^$",
            read: "^\(queue)(\\..+)?$", topic: nil)
    }

    public var allPermissions: [Permissions] {
        unitSystems.map(permissions) + supervisors.map { permissions(supervisor: $0) }
    }

    /// A RabbitMQ definitions file with the users, their permissions and topic permissions
    /// (`rabbitmqctl import_definitions`, or the boot-time definitions folder).
    public func definitionsJSON(virtualHost: String = "/") -> Data {
        let all = allPermissions
        let document: [String: Any] = [
            "users": all.map { p in
                [
                    "name": p.user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": [],
                ]
                    as [String: Any]
            },
            "permissions": all.map { p in
                ["user": p.user, "vhost": virtualHost, "configure": p.configure, "write": p.write, "read": p.read]
            },
            "topic_permissions": all.compactMap { p in
                p.topic.map { topic in
                    [
                        "user": p.user, "vhost": virtualHost, "exchange": topic.exchange, "write": topic.write,
                        "read": topic.read,
                    ]
                }
            },
        ]
        return try! JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// One definitions file with the topology and these users (what a broker loads at boot): the topology's
    /// sections plus `users`, `permissions` and `topic_permissions`.
    public func definitionsJSON(mergedWith topologyDefinitions: Data, virtualHost: String = "/") -> Data {
        var document = (try? JSONSerialization.jsonObject(with: topologyDefinitions)) as? [String: Any] ?? [:]
        let users =
            (try? JSONSerialization.jsonObject(with: definitionsJSON(virtualHost: virtualHost))) as? [String: Any]
            ?? [:]
        for (key, value) in users { document[key] = value }
        return try! JSONSerialization.data(
            withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    static func regexEscape(_ text: String) -> String {
        var out = ""
        for c in text {
            if "\\^$.|?*+()[]{}".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
