import ArgumentParser
import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker

/// `sameday topology declare|definitions`: the broker objects SameDay needs, declared over AMQP or printed as a
/// RabbitMQ definitions file (deploy/rabbitmq/definitions.json is this command's output; a test keeps them equal).
struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Declare SameDay's exchanges and queues on a broker, or print them as RabbitMQ definitions.",
        subcommands: [Declare.self, Definitions.self, Users.self])

    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare the topology (idempotent: running it twice changes nothing).")

        @Option(
            help: "Broker URL(s), comma-separated for a cluster; default from SAMEDAY_AMQP_URL or the local broker.")
        var url: String?
        @Option(help: "Number of work shards (quorum queues sameday.work.0 … N-1).") var shards = 4

        func run() async throws {
            let urls = url ?? ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? "amqp://127.0.0.1:5672/%2F"
            let connection = try ConnectionConfiguration(urls: [urls], connectionName: "sameday topology")
            let topology = SameDayTopology(shards: shards)
            try ShardCount.validate(shards)
            try await BlockingThread.run {
                let broker = try Connection.open(connection)
                defer { broker.close() }
                try topology.topology.declare(on: broker)
            }
            let model = topology.topology
            print(
                "declared \(model.exchanges.count) exchanges, \(model.queues.count) queues, \(model.bindings.count) bindings on \(connection.brokers[0])"
            )
        }
    }

    struct Definitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the topology as a RabbitMQ definitions file (rabbitmqctl import_definitions).")

        @Option(help: "Number of work shards.") var shards = 4
        @Option(help: "Virtual host.") var vhost = "/"
        @Option(help: "Also the broker users of this unit-systems registry (one file for the broker to load at boot).")
        var unitSystems: String?

        func run() throws {
            try ShardCount.validate(shards)
            let topology = SameDayTopology(shards: shards)
            var data = topology.topology.definitionsJSON(virtualHost: vhost)
            if let unitSystems {
                try runReportingFailures {
                    let registry = try UnitSystemRegistry.load(path: unitSystems)
                    data = SameDayBrokerUsers(
                        unitSystems: registry.brokerUsers, supervisors: registry.supervisors, topology: topology
                    ).definitionsJSON(mergedWith: data, virtualHost: vhost)
                }
            }
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}

extension TopologyCommand {
    /// Broker users for least privilege, from the unit-systems registry (deploy/rabbitmq/users.json is this
    /// command's output for deploy/adapters/unit-systems.json; a test keeps them equal).
    struct Users: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print one broker user per unit system (write only its own units' routing keys) and read-only supervisor users, as RabbitMQ definitions."
        )

        @Option(help: "Unit-systems registry (JSON).") var unitSystems: String
        @Option(help: "Virtual host.") var vhost = "/"

        func run() throws {
            try runReportingFailures {
                let registry = try UnitSystemRegistry.load(path: unitSystems)
                let users = SameDayBrokerUsers(
                    unitSystems: registry.brokerUsers, supervisors: registry.supervisors,
                    topology: SameDayTopology(shards: 4))
                FileHandle.standardOutput.write(users.definitionsJSON(virtualHost: vhost) + Data("\n".utf8))
            }
        }
    }
}

enum ShardCount {
    static func validate(_ shards: Int) throws {
        guard (1...256).contains(shards) else { throw ValidationError("--shards must be between 1 and 256") }
    }
}
