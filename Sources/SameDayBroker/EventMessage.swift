import RabbitMQ
import SameDayCore

/// How a canonical dossier event travels: persistent JSON on `sameday.events`, routing key `<block>.<unit>.<type>`,
/// `message_id` = `eventId` (the idempotency key consumers dedupe on) and the `dossier` header that the
/// consistent-hash exchange hashes, so that every event of one dossier reaches the same shard.
public enum EventMessage {
    /// The message for `event`; `block` is the unit's block from the units registry, `unknown` for an unknown unit
    /// (such an event falls to the alternate exchange, where an operator sees it).
    public static func make(_ event: DossierEvent, block: Block?, names: SameDayProducerNames) -> OutboundMessage {
        OutboundMessage(
            exchange: names.eventsExchange,
            routingKey: SameDayRoutingKey.event(
                block: block?.rawValue ?? "unknown", unit: event.unit, type: event.type.name),
            body: Array(event.encoded().utf8),
            messageID: event.eventId,
            headers: [(SameDayProducerNames.shardHeader, event.dossier)])
    }

    /// The message for `event` with the block looked up in `configuration`.
    public static func make(_ event: DossierEvent, configuration: Configuration, names: SameDayProducerNames)
        -> OutboundMessage
    {
        let block = configuration.unitID(event.unit).map { configuration.unit($0).block }
        return make(event, block: block, names: names)
    }
}
