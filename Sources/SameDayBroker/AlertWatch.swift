import RabbitMQ

/// The queue behind `sameday alerts watch`: declared by the watcher itself, in its owner's namespace, so a
/// supervisor's user needs no right beyond its own queues (`SameDayBrokerUsers.permissions(supervisor:)`).
///
/// By default `sameday.alerts.<owner>.watch.<instance>`, a transient classic queue bound to `sameday.alerts` with the
/// watcher's filter. It is not exclusive and not auto-delete, so it survives a consumer reconnect (the consumer
/// subscribes again to the same name and nothing raised meanwhile is lost); it expires 60 s after its last
/// consumer is gone (`x-expires`) and holds at most 10,000 alerts (oldest dropped first) if the watcher stalls.
///
/// With a name (`--durable NAME`), `sameday.alerts.<owner>.<NAME>`: a quorum queue like SameDay's other queues that
/// must not lose what they hold, which never expires, so the alerts raised while no watcher runs wait for the next
/// one. It holds at most 100,000 alerts (oldest dropped first: a forgotten queue must not fill the broker's disk and
/// block every publisher); it is deleted only on purpose (`sameday alerts delete NAME`, or an operator's
/// `rabbitmqctl delete_queue`).
///
/// One binding per routing key: a supervisor scoped to some units binds one key per unit (`<level>.<block>.<unit>`),
/// which her topic permissions allow, where `*.*.*` would be refused.
public enum AlertWatch {
    /// How long a watch queue outlives its watcher.
    public static let expiresMilliseconds: Int64 = 60_000
    /// The most alerts a stalled watcher's queue keeps.
    public static let maxLength: Int64 = 10_000
    /// The most alerts a durable watch queue keeps while nobody watches.
    public static let durableMaxLength: Int64 = 100_000

    /// The supervisor name in a broker user `supervisor.<name>`, else the user name itself (an operator).
    public static func owner(ofUser user: String) -> String {
        user.hasPrefix("supervisor.") ? String(user.dropFirst("supervisor.".count)) : user
    }

    /// The queue name of one watcher of `owner` (`instance`: e.g. host and process id).
    public static func queue(topology: SameDayTopology, owner: String, instance: String) -> String {
        "\(topology.alertsExchange).\(owner).watch.\(instance)"
    }

    /// The durable queue `name` of `owner`: `sameday.alerts.<owner>.<name>`.
    public static func durableQueue(topology: SameDayTopology, owner: String, name: String) -> String {
        "\(topology.alertsExchange).\(owner).\(name)"
    }

    /// The binding keys of a filter: one per unit (`<level or *>.<block or *>.<unit word>`), or one for every unit
    /// when `units` is empty.
    public static func routingKeys(level: String?, block: String?, units: [String]) -> [String] {
        let words = units.isEmpty ? ["*"] : units.map(SameDayRoutingKey.keyWord)
        var seen = Set<String>()
        return words.map { [level ?? "*", block ?? "*", $0].joined(separator: ".") }.filter { seen.insert($0).inserted }
    }

    /// The queue, without its bindings: the transient one, or the durable quorum one.
    public static func queueDeclaration(_ queue: String, durable: Bool) -> Topology.Queue {
        durable
            ? .init(
                queue, kind: .quorum, durable: true, autoDelete: false,
                arguments: ["x-max-length": .int(durableMaxLength), "x-overflow": .string("drop-head")])
            : .init(
                queue, kind: .classic, durable: false, autoDelete: false,
                arguments: [
                    "x-expires": .int(expiresMilliseconds), "x-max-length": .int(maxLength),
                    "x-overflow": .string("drop-head"),
                ])
    }

    /// The binding of `queue` to the alerts exchange with `routingKey` (`<level>.<block>.<unit>`, `*` allowed).
    public static func binding(topology: SameDayTopology, queue: String, routingKey: String) -> Topology.Binding {
        .init(from: topology.alertsExchange, to: .queue(queue), routingKey: routingKey)
    }

    /// The queue and its bindings to the alerts exchange, one per key.
    public static func declarations(
        topology: SameDayTopology, queue: String, routingKeys: [String], durable: Bool = false
    ) -> Topology {
        Topology(
            queues: [queueDeclaration(queue, durable: durable)],
            bindings: routingKeys.map { binding(topology: topology, queue: queue, routingKey: $0) })
    }

    /// The transient queue and its one binding with `routingKey`.
    public static func declarations(topology: SameDayTopology, queue: String, routingKey: String) -> Topology {
        declarations(topology: topology, queue: queue, routingKeys: [routingKey])
    }
}

/// The queue of `sameday notify` (docs/notify.md): a durable quorum queue bound to every alert, declared by the
/// notifier when it starts (a deployment without a notifier keeps no such queue filling up). Alerts raised while
/// the notifier is down wait in it. A delivery the notifier rejects (not an alert, a unit it does not know), or one
/// delivered `deliveryLimit` times without an ack, goes to `sameday.dead`. Bounded like the supervisors' durable
/// queues, dropping the oldest past the bound rather than refusing the workers' alerts (which would stall every
/// other consumer of the exchange).
public enum NotifyQueue {
    public static let defaultName = "sameday.notify"
    public static let maxLength: Int64 = 1_000_000
    public static let deliveryLimit: Int64 = 5

    /// The queue's name: the workers' name prefix, then `sameday.notify` (the `notify` broker user's rights name it).
    public static func name(topology: SameDayTopology) -> String { topology.namePrefix + defaultName }

    public static func declarations(topology: SameDayTopology, queue: String) -> Topology {
        AlertServiceQueue.declarations(
            topology: topology, queue: queue, maxLength: maxLength, deliveryLimit: deliveryLimit)
    }
}

/// The queue of `sameday board` (docs/board.md): like `NotifyQueue`, a durable quorum queue bound to every alert and
/// declared by the board itself, so the alerts raised while the board restarts wait for it. A delivery it cannot read
/// goes to `sameday.dead`. One board consumes at a time (a second one started by mistake waits).
public enum BoardQueue {
    public static let defaultName = "sameday.board"
    public static let maxLength: Int64 = 1_000_000
    public static let deliveryLimit: Int64 = 5

    /// The queue's name: the workers' name prefix, then `sameday.board` (the `board` broker user's rights name it).
    public static func name(topology: SameDayTopology) -> String { topology.namePrefix + defaultName }

    public static func declarations(topology: SameDayTopology, queue: String) -> Topology {
        AlertServiceQueue.declarations(
            topology: topology, queue: queue, maxLength: maxLength, deliveryLimit: deliveryLimit)
    }
}

/// The queue shape of a service that reads every alert (`NotifyQueue`, `BoardQueue`): durable quorum, bound `#` to
/// `sameday.alerts`, bounded by dropping the oldest (never refusing the workers' alerts), dead-lettering to
/// `sameday.dead` what it rejects or fails `deliveryLimit` times, one consumer at a time (a second instance waits).
enum AlertServiceQueue {
    static func declarations(topology: SameDayTopology, queue: String, maxLength: Int64, deliveryLimit: Int64)
        -> Topology
    {
        Topology(
            queues: [
                .init(
                    queue, kind: .quorum, durable: true, autoDelete: false,
                    arguments: [
                        "x-max-length": .int(maxLength), "x-overflow": .string("drop-head"),
                        "x-delivery-limit": .int(deliveryLimit),
                        "x-dead-letter-exchange": .string(topology.deadLetterExchange),
                        "x-single-active-consumer": .bool(true),
                    ])
            ],
            bindings: [.init(from: topology.alertsExchange, to: .queue(queue), routingKey: "#")])
    }
}
