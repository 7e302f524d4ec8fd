import RabbitMQ

/// The queue behind `sameday alerts watch`: declared by the watcher itself, in its owner's namespace, so a
/// supervisor's user needs no right beyond its own queues (`SameDayBrokerUsers.permissions(supervisor:)`).
///
/// `sameday.alerts.<owner>.watch.<instance>`, a transient classic queue bound to `sameday.alerts` with the
/// watcher's filter. It is not exclusive and not auto-delete, so it survives a consumer reconnect (the consumer
/// subscribes again to the same name and nothing raised meanwhile is lost); it expires 60 s after its last
/// consumer is gone (`x-expires`) and holds at most 10,000 alerts (oldest dropped first) if the watcher stalls.
public enum AlertWatch {
    /// How long a watch queue outlives its watcher.
    public static let expiresMilliseconds: Int64 = 60_000
    /// The most alerts a stalled watcher's queue keeps.
    public static let maxLength: Int64 = 10_000

    /// The supervisor name in a broker user `supervisor.<name>`, else the user name itself (an operator).
    public static func owner(ofUser user: String) -> String {
        user.hasPrefix("supervisor.") ? String(user.dropFirst("supervisor.".count)) : user
    }

    /// The queue name of one watcher of `owner` (`instance`: e.g. host and process id).
    public static func queue(topology: SameDayTopology, owner: String, instance: String) -> String {
        "\(topology.alertsExchange).\(owner).watch.\(instance)"
    }

    /// The queue and its binding to the alerts exchange with `routingKey` (`<level>.<block>.<unit>`, `*` allowed).
    public static func declarations(topology: SameDayTopology, queue: String, routingKey: String) -> Topology {
        Topology(
            queues: [
                .init(
                    queue, kind: .classic, durable: false, autoDelete: false,
                    arguments: [
                        "x-expires": .int(expiresMilliseconds), "x-max-length": .int(maxLength),
                        "x-overflow": .string("drop-head"),
                    ])
            ],
            bindings: [.init(from: topology.alertsExchange, to: .queue(queue), routingKey: routingKey)])
    }
}
