import ArgumentParser
import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayFiles
import SameDayFormats

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
            help: "Broker URL(s) without a password (a cluster: comma-separated); default SAMEDAY_AMQP_URL or local.")
        var url: String?
        @Option(help: "File whose first line is the broker user:password (mode 0600).") var credentialsFile: String?
        @Option(help: "Number of work shards (quorum queues sameday.work.0 … N-1).") var shards = 4

        func validate() throws {
            try BrokerOptions.refusePassword(in: url, option: "--url", instead: BrokerOptions.useCredentialsFile)
        }

        func run() async throws {
            let connection = try BrokerOptions.connection(
                url: url, credentialsFile: credentialsFile, name: "sameday topology")
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
            abstract: "Print the topology as a RabbitMQ definitions file (rabbitmqctl import_definitions).",
            discussion: """
                With --unit-systems, the file also holds the least-privilege broker users (an adapter per unit \
                system, the receiver, the worker, the notifier, the board, a supervisor per name). With --secrets DIR, each user gets a \
                RabbitMQ password hash made from DIR/<user>.password (mode 0600 or 0400): that is the file to deploy \
                (write it with --output, mode 0600). Without --secrets the users have no password (the form kept in \
                git); importing that into a broker where they have passwords would remove them.
                """)

        @Option(help: "Number of work shards.") var shards = 4
        @Option(help: "Virtual host.") var vhost = "/"
        @Option(help: "Also the broker users of this unit-systems registry (one file for the broker to load at boot).")
        var unitSystems: String?
        @Option(help: BrokerUsersFiles.configHelp) var config: String?
        @Option(help: "Secrets folder: <user>.password per broker user (mode 0600/0400); never in git.")
        var secrets: String?
        @Option(help: "Write to this file (mode 0600, atomically) instead of standard output.") var output: String?

        func validate() throws {
            if secrets != nil && unitSystems == nil { throw ValidationError("--secrets needs --unit-systems") }
            if config != nil && unitSystems == nil { throw ValidationError("--config needs --unit-systems") }
        }

        func run() throws {
            try ShardCount.validate(shards)
            let topology = SameDayTopology(shards: shards)
            var data = topology.topology.definitionsJSON(virtualHost: vhost)
            try runReportingFailures {
                if let unitSystems {
                    let users = try BrokerUsersFiles.users(registry: unitSystems, config: config, topology: topology)
                    let hashes = try BrokerUsersFiles.hashes(users: users, secrets: secrets)
                    data = users.definitionsJSON(mergedWith: data, virtualHost: vhost, passwordHashes: hashes)
                }
                try BrokerUsersFiles.emit(data, output: output)
            }
        }
    }
}

extension TopologyCommand {
    /// Broker users for least privilege, from the unit-systems registry (deploy/rabbitmq/users.json is this
    /// command's output for deploy/adapters/unit-systems.json; a test keeps them equal).
    struct Users: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the least-privilege broker users (adapter per unit system, receiver, worker, notify, board, supervisors) as RabbitMQ definitions.",
            discussion: """
                With --secrets DIR each user gets a RabbitMQ password hash from DIR/<user>.password (mode 0600 or \
                0400); without it, users have no password (the form kept in git).
                """)

        @Option(help: "Unit-systems registry (JSON).") var unitSystems: String
        @Option(help: BrokerUsersFiles.configHelp) var config: String?
        @Option(help: "Virtual host.") var vhost = "/"
        @Option(help: "Secrets folder: <user>.password per broker user (mode 0600/0400); never in git.")
        var secrets: String?
        @Option(help: "Write to this file (mode 0600, atomically) instead of standard output.") var output: String?

        func run() throws {
            try runReportingFailures {
                let users = try BrokerUsersFiles.users(
                    registry: unitSystems, config: config, topology: SameDayTopology(shards: 4))
                let hashes = try BrokerUsersFiles.hashes(users: users, secrets: secrets)
                try BrokerUsersFiles.emit(
                    users.definitionsJSON(virtualHost: vhost, passwordHashes: hashes), output: output)
            }
        }
    }
}

/// What `topology definitions` and `topology users` share: the users of a registry, their hashes, the output.
enum BrokerUsersFiles {
    static let configHelp: ArgumentHelp =
        "Configuration folder: supervisors' units must be in its units.csv, and includeSubunits takes its unit tree."

    static func users(registry path: String, config: String?, topology: SameDayTopology) throws -> SameDayBrokerUsers {
        // Users come from names and units only; the token hashes are the receiver's, which refuses demo ones.
        let units = try config.map { try ConfigurationFolder.load($0).units }
        let registry = try UnitSystemRegistry.load(path: path, allowDemoTokens: true, units: units)
        let users = SameDayBrokerUsers(
            unitSystems: registry.brokerUsers, supervisors: try registry.brokerSupervisors(), topology: topology)
        try users.validate()
        return users
    }

    static func hashes(users: SameDayBrokerUsers, secrets: String?) throws -> [String: String] {
        guard let secrets else {
            printError(
                "sameday: note: broker users without passwords (no --secrets): fine for the repository, not for a broker where they have passwords"
            )
            return [:]
        }
        return try users.passwordHashes(passwords: BrokerSecrets.load(folder: secrets, users: users.userNames))
    }

    /// Standard output, or `path` written with mode 0600 through a temporary file, fsynced and renamed.
    static func emit(_ data: Data, output path: String?) throws {
        let bytes = data + Data("\n".utf8)
        guard let path else {
            FileHandle.standardOutput.write(bytes)
            return
        }
        do {
            try DurableFile.writeAtomically([UInt8](bytes), to: path, mode: DurableFile.privateMode)
        } catch {
            throw CommandFailure(error.description)
        }
    }
}

enum ShardCount {
    static func validate(_ shards: Int) throws {
        guard (1...256).contains(shards) else { throw ValidationError("--shards must be between 1 and 256") }
    }
}
