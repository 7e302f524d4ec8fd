import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

/// The HTTP receiver's settings (`deploy/adapters/receiver.json` is read by `sameday receive`).
public struct ReceiverSettings: Sendable {
    public var registry: UnitSystemRegistry
    /// Larger bodies get 413 without being read further (default 1 MiB).
    public var maxBodyBytes: Int
    /// Events in one request at most (default 1,000).
    public var maxEventsPerRequest: Int
    /// The window of plausible event times; events outside it get 400 naming the field.
    public var eventBounds: EventTimeBounds
    /// The clock the window's upper end is measured from (the wall clock).
    public var now: @Sendable () -> Instant
    /// The units registry and broker names, for the routing keys a dry run shows.
    public var configuration: Configuration?
    public var names: SameDayProducerNames
    /// Where events go, for `/healthz` and the start-up line (nil in tests).
    public var broker: BrokerTarget?
    /// One structured line per request (default: a JSON line on standard error).
    public var accessLog: @Sendable (AccessRecord) -> Void

    public init(
        registry: UnitSystemRegistry, maxBodyBytes: Int = 1 << 20, maxEventsPerRequest: Int = 1000,
        eventBounds: EventTimeBounds = .standard, now: @escaping @Sendable () -> Instant = wallClockNow,
        configuration: Configuration? = nil, names: SameDayProducerNames = SameDayProducerNames(),
        broker: BrokerTarget? = nil,
        accessLog: @escaping @Sendable (AccessRecord) -> Void = AccessRecord.writeToStandardError
    ) {
        self.registry = registry
        self.maxBodyBytes = maxBodyBytes
        self.maxEventsPerRequest = maxEventsPerRequest
        self.eventBounds = eventBounds
        self.now = now
        self.configuration = configuration
        self.names = names
        self.broker = broker
        self.accessLog = accessLog
    }
}

/// The broker a receiver publishes to, as an operator needs to see it: host, port, virtual host and user, never
/// the password; and whether it was configured or is the default local broker.
public struct BrokerTarget: Sendable, Equatable, CustomStringConvertible {
    public var hosts: [String]
    public var virtualHost: String
    public var user: String
    /// Where the URL came from: `brokerURLFile <path>`, `SAMEDAY_AMQP_URL`, or nil for the default.
    public var configuredBy: String?

    public init(connection: ConnectionConfiguration, configuredBy: String?) {
        hosts = connection.brokers.map { "\($0.useTLS ? "amqps" : "amqp")://\($0.host):\($0.port)" }
        virtualHost = connection.brokers.first?.virtualHost ?? "/"
        user = connection.brokers.first?.user ?? ""
        self.configuredBy = configuredBy
    }

    public var isDefault: Bool { configuredBy == nil }

    public var description: String {
        "\(hosts.joined(separator: ", ")) vhost \"\(virtualHost)\" as user \"\(user)\" "
            + (configuredBy.map { "(from \($0))" }
                ?? "(DEFAULT local broker: receiver.json has no brokerURLFile and SAMEDAY_AMQP_URL is not set)")
    }
}
