/// The broker names an event producer needs: the file adapter, the HTTP receiver, `sameday publish` (and its
/// `--tail`) and a dead-letter replay. A producer publishes to one exchange and never sees a shard queue, so these
/// names need no shard count; `SameDayTopology` holds one of these and takes the same names from it, so each name is
/// spelled in one place (docs/architecture.md §2).
///
/// Routing keys do not depend on the prefix: `SameDayRoutingKey.event` makes them, and `EventMessage.make` puts the
/// names, the key and the header together into the message a producer sends.
public struct SameDayProducerNames: Sendable, Equatable {
    /// Put before every name, for a private copy of the topology on a shared broker (tests use one per test).
    public var namePrefix: String

    public init(namePrefix: String = "") {
        self.namePrefix = namePrefix
    }

    /// The topic exchange every event is published to, with routing key `<block>.<unit>.<type>`.
    public var eventsExchange: String { namePrefix + "sameday.events" }
    /// The stream that keeps every routed event (read back by `sameday publish --tail`).
    public var eventsStream: String { namePrefix + "sameday.events.log" }
    /// The header that carries an event's dossier code. The consistent-hash exchange hashes it, so every event of a
    /// dossier lands on the same shard, whichever shard that is.
    public static let shardHeader = "dossier"
}
