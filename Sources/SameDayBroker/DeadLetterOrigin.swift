import RabbitMQ
import SameDayCore

/// Who dead-lettered a message and why, read from its headers: a worker (`x-sameday-refusal`, `x-sameday-reason`),
/// or the broker itself (`x-first-death-reason`: the shard queue's delivery limit, reached when workers failed on it
/// again and again).
public struct DeadLetterOrigin: Sendable {
    /// The refusal code, `delivery_limit` for the broker's limit, or the broker's own reason.
    public var code: String
    public var reason: String
    /// Set by a worker (as opposed to the broker).
    public var byWorker: Bool

    public init(_ headers: FieldTable) {
        if let reason = headers["x-sameday-reason"]?.stringValue {
            byWorker = true
            self.reason = Printable.escaped(reason, limit: 1000)
            // Dead letters stored before refusal codes existed carry a reason only.
            code = headers["x-sameday-refusal"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "uncoded"
        } else {
            byWorker = false
            let brokerReason = headers["x-first-death-reason"]?.stringValue ?? "unknown"
            code = brokerReason == "delivery_limit" ? "delivery_limit" : "broker_" + Printable.escaped(brokerReason)
            reason = "dead-lettered by the broker (\(Printable.escaped(brokerReason)))"
        }
    }

    public enum Decision {
        case publish(OutboundMessage)
        case keep(String)
    }

    /// What `dead-letters replay` does with the letter. Only what a fix can cure goes back: an unknown unit now in
    /// the registry, or a unit that was full (its message rebuilt from the event, as an adapter would publish it),
    /// and a message the broker set aside after the delivery limit (sent again exactly as it came, for the worker to
    /// judge again). Every other refusal is about the message itself: republishing it under a routing key rebuilt
    /// from its body would launder it past the topic permissions that refused it.
    public func replay(
        body: [UInt8], routingKey: String, messageID: String?, dossierHeader: String?, domain: Configuration,
        names: SameDayProducerNames
    ) -> Decision {
        if !byWorker {
            guard code == "delivery_limit" else { return .keep("\(reason): only the delivery limit is replayed") }
            return .publish(
                OutboundMessage(
                    exchange: names.eventsExchange, routingKey: routingKey, body: body, messageID: messageID ?? "",
                    headers: dossierHeader.map { [(SameDayProducerNames.shardHeader, $0)] } ?? []))
        }
        guard EventRefusal.replayableCodes.contains(code) else {
            return .keep(
                "refused as \(code), which a replay cannot cure (only "
                    + EventRefusal.replayableCodes.sorted().joined(separator: ", ") + " and the broker's delivery "
                    + "limit are replayed): \(reason)")
        }
        let event: DossierEvent
        do {
            event = try DossierEvent.decode(bytes: body)
        } catch {
            return .keep("\(error)")
        }
        guard domain.unitID(event.unit) != nil else {
            return .keep("unit \(Printable.quoted(event.unit)) is still not in units.csv")
        }
        return .publish(EventMessage.make(event, configuration: domain, names: names))
    }
}
