import Foundation
import SameDayCore

/// Least privilege on the broker (docs/architecture.md §4, "Least privilege"): one broker user per role, each allowed
/// only what its role does (docs/rabbitmq.md, "Broker users"):
///
/// | user | configure | write | read | topic write on `sameday.events` |
/// |---|---|---|---|---|
/// | `adapter.<system>` | nothing | `sameday.events` | nothing | its own units' keys |
/// | `receiver` | nothing | `sameday.events` | nothing | the units of every system it serves |
/// | `worker` | nothing | `sameday.alerts`, `sameday.dead` | `sameday.work.<n>`, `sameday.events.log` | — |
/// | `supervisor.<name>` | `sameday.alerts.<name>.*` | `sameday.alerts.<name>.*` | `sameday.alerts` and its own queues | — |
/// | `notify` | `sameday.notify` | `sameday.notify`, `sameday.dead` | `sameday.alerts`, `sameday.notify` | — |
/// | `board` | `sameday.board` | `sameday.board`, `sameday.dead` | `sameday.alerts`, `sameday.board` | — |
///
/// A supervisor's `sameday alerts watch` declares its own queue (`sameday.alerts.<name>.watch.<host>.<pid>`, or a
/// durable `sameday.alerts.<name>.<queue>`) and binds it to `sameday.alerts` (binding needs write on the queue and
/// read on the exchange): nothing to pre-declare per supervisor, and no right over anyone else's queues
/// (`AlertWatch`). A supervisor scoped to some units also has topic read permissions on `sameday.alerts` that let her
/// bind only those units' keys (`alertBindingPattern`): the broker refuses a binding that would bring her any other
/// unit's alert.
///
/// Passwords: `definitionsJSON(virtualHost:passwordHashes:)` writes RabbitMQ password hashes (`RabbitPasswordHash`)
/// made from the secrets folder (`BrokerSecrets`) at deploy time. Without hashes, users have an empty
/// `password_hash` (no password login): that is the form kept in the repository, which holds no secret.
public struct SameDayBrokerUsers: Sendable {
    public struct UnitSystem: Sendable, Equatable {
        public var name: String
        public var units: [String]
        public init(name: String, units: [String]) {
            self.name = name
            self.units = units
        }
    }

    /// A supervisor: her name (letters, digits, `-` and `_`) and the units whose alerts she may read. She watches
    /// alerts through her own queues `sameday.alerts.<name>.*`, and may read a queue `sameday.alerts.<name>` if an
    /// operator declares one. A bare name in code (`"so-noi-vu"`) is a city-level supervisor.
    public struct Supervisor: Sendable, Equatable, ExpressibleByStringLiteral {
        public var name: String
        /// Unit codes (her subunits already included); nil: every unit, a city-level supervisor.
        public var units: [String]?

        public init(name: String, units: [String]? = nil) {
            self.name = name
            self.units = units
        }

        public init(stringLiteral name: String) { self.init(name: name) }
    }

    public var unitSystems: [UnitSystem]
    public var supervisors: [Supervisor]
    public var topology: SameDayTopology
    /// The user every worker shard logs in as; nil for none.
    public var worker: String?
    /// The user of the HTTP receiver, which publishes for every unit of every unit system; nil for none.
    public var receiver: String?
    /// The user of `sameday notify`, which declares, binds and consumes its own queue; nil for none.
    public var notify: String?
    /// The user of `sameday board`, which declares, binds and consumes its own queue; nil for none.
    public var board: String?

    public init(
        unitSystems: [UnitSystem], supervisors: [Supervisor], topology: SameDayTopology, worker: String? = "worker",
        receiver: String? = "receiver", notify: String? = "notify", board: String? = "board"
    ) {
        self.unitSystems = unitSystems
        self.supervisors = supervisors
        self.topology = topology
        self.worker = worker
        self.receiver = receiver
        self.notify = notify
        self.board = board
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

    /// Names must stay one routing-key and queue-name word: letters, digits, `-` and `_`.
    public static func isSimpleName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
            }
    }

    /// Checks the names (a supervisor name with a dot could reach another supervisor's queues) and the supervisors'
    /// units (a code with `*` or `#` would be a wildcard in a binding key; an empty list would let her read nothing).
    public func validate() throws {
        for name in unitSystems.map(\.name) + supervisors.map(\.name) where !Self.isSimpleName(name) {
            throw BrokerUsersError("broker user name part \"\(name)\": use only letters, digits, - and _")
        }
        for supervisor in supervisors {
            guard let units = supervisor.units else { continue }
            if units.isEmpty { throw BrokerUsersError("supervisor \(supervisor.name): an empty list of units") }
            for unit in units where !SameDayCore.Unit.isValidCode(unit) {
                throw BrokerUsersError(
                    "supervisor \(supervisor.name): unit \"\(unit)\" may hold only ASCII letters, digits, ., _ and -")
            }
        }
        var seen = Set<String>()
        for user in allPermissions.map(\.user) where !seen.insert(user).inserted {
            throw BrokerUsersError("broker user \(user) appears twice")
        }
    }

    /// Routing keys are <block>.<unit word>.<type>; the unit word is the code with dots as underscores.
    private func eventKeys(units: [String]) -> (exchange: String, write: String, read: String) {
        let words = Set(units.map { Self.regexEscape(SameDayRoutingKey.keyWord($0)) }).sorted()
        return (topology.eventsExchange, "^[a-z]+\\.(\(words.joined(separator: "|")))\\.[a-z_]+$", "^$")
    }

    public func permissions(_ system: UnitSystem) -> Permissions {
        Permissions(
            user: Self.userName(unitSystem: system.name), configure: "^$",
            write: "^\(Self.regexEscape(topology.eventsExchange))$", read: "^$", topic: eventKeys(units: system.units))
    }

    /// The receiver publishes events for the units of every unit system it serves, and nothing else.
    public func permissions(receiver user: String) -> Permissions {
        Permissions(
            user: user, configure: "^$", write: "^\(Self.regexEscape(topology.eventsExchange))$", read: "^$",
            topic: eventKeys(units: unitSystems.flatMap(\.units)))
    }

    /// A worker consumes the shard queues, publishes alerts and dead-letters what it cannot apply; it declares
    /// nothing (the topology comes from the definitions file or `sameday topology declare` as an operator).
    /// `sameday sources` logs in as the same user: it reads the events stream and publishes `source_silent` alerts.
    public func permissions(worker user: String) -> Permissions {
        let work = Self.regexEscape(topology.namePrefix + "sameday.work.")
        let stream = Self.regexEscape(topology.eventsStream)
        let exchanges = [topology.alertsExchange, topology.deadLetterExchange].map(Self.regexEscape)
        return Permissions(
            user: user, configure: "^$", write: "^(\(exchanges.joined(separator: "|")))$",
            read: "^(\(work)[0-9]+|\(stream))$", topic: nil)
    }

    /// `sameday notify` declares its queue `sameday.notify` (configure; RabbitMQ also asks for write on the
    /// queue's dead-letter exchange `sameday.dead`), binds it to the alerts exchange (write on the queue, read on the
    /// exchange) and consumes it (read). Its refusals are dead-lettered by the queue itself.
    public func permissions(notify user: String) -> Permissions {
        let queue = Self.regexEscape(NotifyQueue.name(topology: topology))
        return Permissions(
            user: user, configure: "^\(queue)$", write: "^(\(queue)|\(Self.regexEscape(topology.deadLetterExchange)))$",
            read: "^(\(Self.regexEscape(topology.alertsExchange))|\(queue))$", topic: nil)
    }

    /// `sameday board` has the same rights as the notifier, on its own queue `sameday.board`.
    public func permissions(board user: String) -> Permissions {
        let queue = Self.regexEscape(BoardQueue.name(topology: topology))
        return Permissions(
            user: user, configure: "^\(queue)$", write: "^(\(queue)|\(Self.regexEscape(topology.deadLetterExchange)))$",
            read: "^(\(Self.regexEscape(topology.alertsExchange))|\(queue))$", topic: nil)
    }

    /// A supervisor reads alerts only: it may declare, bind (write) and consume queues in its own namespace
    /// `sameday.alerts.<name>.…`, and bind them to the alerts exchange (read on `sameday.alerts`); it can publish
    /// nowhere (no exchange matches its write pattern: exchange names never start with another's queue prefix).
    /// A supervisor with units gets topic permissions on the alerts exchange: she may bind only her units' keys
    /// (`alertBindingPattern`) and publish no key. A city-level one has none, so every key is hers.
    public func permissions(supervisor: Supervisor) -> Permissions {
        let exchange = Self.regexEscape(topology.alertsExchange)
        let own = "\(exchange)\\.\(Self.regexEscape(supervisor.name))"
        return Permissions(
            user: Self.userName(supervisor: supervisor.name), configure: "^\(own)\\..+$", write: "^\(own)\\..+$",
            read: "^\(exchange)(\\.\(Self.regexEscape(supervisor.name))(\\..+)?)?$",
            topic: supervisor.units.map { (topology.alertsExchange, "^$", Self.alertBindingPattern(units: $0)) })
    }

    /// The binding keys a supervisor scoped to `units` may bind on the alerts exchange (a topic read permission,
    /// which RabbitMQ checks against the binding key of every `queue.bind` and `exchange.bind` from that exchange):
    /// `<level or *>.<block or *>.<unit word>`, the unit one of hers, exactly. Alert keys are
    /// `<level>.<block>.<unit word>` (`SameDayRoutingKey.alert`), so such a binding brings only her units' alerts,
    /// while `#`, `*.*.*` or another unit's word are refused (403 ACCESS_REFUSED). Unit words are the codes with
    /// their dots as underscores, escaped all the same; the pattern is anchored at both ends.
    public static func alertBindingPattern(units: [String]) -> String {
        let words = Set(units.map { regexEscape(SameDayRoutingKey.keyWord($0)) }).sorted()
        return "^([a-z_]+|\\*)\\.([a-z]+|\\*)\\.(\(words.joined(separator: "|")))$"
    }

    public var allPermissions: [Permissions] {
        unitSystems.map(permissions) + (receiver.map { [permissions(receiver: $0)] } ?? [])
            + (worker.map { [permissions(worker: $0)] } ?? []) + (notify.map { [permissions(notify: $0)] } ?? [])
            + (board.map { [permissions(board: $0)] } ?? []) + supervisors.map { permissions(supervisor: $0) }
    }

    /// Every user name, in the order of the definitions file.
    public var userNames: [String] { allPermissions.map(\.user) }

    /// A RabbitMQ password hash for every user, from the users' passwords (`BrokerSecrets.load`).
    public func passwordHashes(passwords: [String: String]) throws -> [String: String] {
        var hashes: [String: String] = [:]
        for user in userNames {
            guard let password = passwords[user] else { throw BrokerUsersError("no password for broker user \(user)") }
            hashes[user] = RabbitPasswordHash.make(password: password)
        }
        return hashes
    }

    /// A RabbitMQ definitions file with the users, their permissions and topic permissions
    /// (`rabbitmqctl import_definitions`, or the boot-time definitions folder). A user missing from
    /// `passwordHashes` gets an empty hash: it cannot log in with a password, and importing it into a broker
    /// where it has one removes that password; deploy files are made with hashes (`sameday topology … --secrets`).
    public func definitionsJSON(virtualHost: String = "/", passwordHashes: [String: String] = [:]) -> Data {
        Self.render(usersDocument(virtualHost: virtualHost, passwordHashes: passwordHashes))
    }

    /// One definitions file with the topology and these users (what a broker loads at boot): the topology's
    /// sections plus `users`, `permissions` and `topic_permissions`.
    public func definitionsJSON(
        mergedWith topologyDefinitions: Data, virtualHost: String = "/", passwordHashes: [String: String] = [:]
    ) -> Data {
        var document = (try? JSONSerialization.jsonObject(with: topologyDefinitions)) as? [String: Any] ?? [:]
        for (key, value) in usersDocument(virtualHost: virtualHost, passwordHashes: passwordHashes) {
            document[key] = value
        }
        return Self.render(document)
    }

    private func usersDocument(virtualHost: String, passwordHashes: [String: String]) -> [String: Any] {
        let all = allPermissions
        return [
            "users": all.map { p in
                [
                    "name": p.user, "password_hash": passwordHashes[p.user] ?? "",
                    "hashing_algorithm": RabbitPasswordHash.algorithm, "tags": [],
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
    }

    private static func render(_ document: [String: Any]) -> Data {
        try! JSONSerialization.data(
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

public struct BrokerUsersError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
