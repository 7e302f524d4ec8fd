import Foundation
import RabbitMQ
import SameDayBroker

/// Reads back what reached the broker, without taking it from anyone: the events stream (`sameday.events.log`,
/// every event routed by `sameday.events`, kept 7 days) read from a point in time, as `sameday publish --tail`
/// does so that a newcomer sees their events on the broker with the `sameday` command alone. Needs a broker user
/// with read rights on the stream (the operator's, or `guest` on a local broker): an adapter's user may only write.
public enum EventsTail {
    public struct Event: Sendable, Equatable {
        public var routingKey: String
        public var body: String
    }

    /// Whether `since` is an offset the stream understands: `first`, or an age such as `15m`, `1h`, `2D`.
    public static func isValidSince(_ since: String) -> Bool {
        if since == "first" { return true }
        guard let unit = since.last, "smhDMY".contains(unit), since.count >= 2 else { return false }
        return since.dropLast().allSatisfy(\.isASCII) && Int(since.dropLast()).map { $0 > 0 } == true
    }

    /// The last `count` events of the stream since `since` (of `units` only, when given), oldest first. Stops once
    /// the stream has been quiet for `idle`.
    public static func read(
        connection: ConnectionConfiguration, names: SameDayProducerNames, since: String, units: Set<String>?,
        count: Int, idle: Duration = .seconds(2)
    ) throws -> [Event] {
        let consumer = try Consumer(
            ConsumerConfiguration(
                connection: connection, queue: names.eventsStream, prefetch: 500,
                arguments: ["x-stream-offset": .string(since)]))
        defer { consumer.close() }
        // Routing keys are `<block>.<unit>.<type>`, the unit as its routing word.
        let keys = units.map { Set($0.map(SameDayRoutingKey.keyWord)) }
        var kept: [Event] = []
        kept.reserveCapacity(count)
        while let delivery = try consumer.next(timeout: idle) {
            try consumer.ack(delivery.tag)
            let parts = delivery.routingKey.split(separator: ".")
            if let keys, parts.count != 3 || !keys.contains(String(parts[1])) { continue }
            kept.append(Event(routingKey: delivery.routingKey, body: String(decoding: delivery.body, as: UTF8.self)))
            if kept.count > count { kept.removeFirst(kept.count - count) }
        }
        return kept
    }
}
