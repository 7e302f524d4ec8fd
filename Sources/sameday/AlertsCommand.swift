import ArgumentParser
import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayFormats

/// `sameday alerts watch`: a supervisor's live view of the alerts, one readable line each; `sameday alerts delete`
/// removes a durable watch queue.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Follow SLA alerts as they are raised.",
        subcommands: [Watch.self, Delete.self])

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bind a watch queue to sameday.alerts and print each alert as it comes (Ctrl-C to stop).",
            discussion: """
                Works with a supervisor's broker user (supervisor.<name>: read alerts only): the queue is \
                sameday.alerts.<name>.watch.<host>.<pid>, in the supervisor's own namespace, and expires a minute \
                after the watcher is gone. Give the URL with its credentials in a file (--url-file, mode 0600): \
                --url refuses a URL with a password.

                A supervisor scoped to some units (an object in the supervisors of unit-systems.json) may watch \
                only those: give each with --unit, or --unit-systems FILE to take hers from the registry (with \
                --config's unit tree for includeSubunits). The queue gets one binding per unit; the broker \
                refuses a binding to any other unit (403 ACCESS_REFUSED) and the command stops saying so. Without \
                --unit the queue is bound to every unit, which only a city-level supervisor may do.

                --durable NAME keeps the queue sameday.alerts.<name>.NAME (a quorum queue, at most 100,000 \
                alerts, oldest dropped first) when the watcher stops: what is raised meanwhile is shown by the \
                next watch with that NAME. Its bindings add up over the watches that name it; delete it with \
                `sameday alerts delete NAME` (or an operator's `rabbitmqctl delete_queue`).
                """)

        @Option(help: "Broker URL without a password; default SAMEDAY_AMQP_URL or the local broker.")
        var url: String?
        @Option(help: "File holding the broker URL (amqp[s]://supervisor.NAME:PASSWORD@host:port/vhost), mode 0600.")
        var urlFile: String?
        @Option(help: "Only this unit (code); repeat it for several, one binding each.") var unit: [String] = []
        @Option(
            help: "Unit-systems registry: watch the units it gives the login's supervisor (instead of --unit).")
        var unitSystems: String?
        @Option(help: "Only this block: district, commune, department, vertical.") var block: String?
        @Option(help: "Only this level: warning, critical, overdue, escalated, cleared, resolved_late, source_silent.")
        var level: String?
        @Option(help: "Keep the durable queue sameday.alerts.<you>.NAME, so nothing raised while you are away is lost.")
        var durable: String?
        @Option(help: "Configuration folder, for unit names and the unit tree.") var config = "deploy/config/hcmc-2022"
        @Option(help: "Prefix of the broker names (tests).") var namePrefix = ""
        @Option(help: "Stop after this many alerts (default: run until interrupted).") var count: Int?

        func validate() throws {
            if let block, Block(rawValue: block) == nil { throw ValidationError("--block \(block): unknown block") }
            if let level, !AlertLevel.allCases.map(\.name).contains(level) {
                throw ValidationError("--level \(level): unknown level")
            }
            for code in unit where !SameDayCore.Unit.isValidCode(code) {
                throw ValidationError("--unit \(code): a unit code has only ASCII letters, digits, ., _ and -")
            }
            if !unit.isEmpty && unitSystems != nil { throw ValidationError("give --unit or --unit-systems, not both") }
            if let durable, !SameDayBrokerUsers.isSimpleName(durable) {
                throw ValidationError("--durable \(durable): use only letters, digits, - and _")
            }
            if url != nil && urlFile != nil { throw ValidationError("give --url or --url-file, not both") }
            try BrokerOptions.refusePassword(
                in: url, option: "--url", instead: "put the whole URL in a file and give --url-file FILE (chmod 600)")
        }

        func run() async throws {
            let connection = try AlertsCommand.connection(url: url, urlFile: urlFile, name: "sameday alerts watch")
            let user = connection.brokers[0].user
            let owner = AlertWatch.owner(ofUser: user)
            let configuration = try? ConfigurationFolder.load(config)
            let names =
                configuration.map { configuration in
                    Dictionary(configuration.units.map { ($0.code, $0.name) }, uniquingKeysWith: { a, _ in a })
                } ?? [:]
            var units = unit
            if let unitSystems {
                do {
                    units = try Self.units(
                        of: owner, registry: unitSystems, configuration: configuration, config: config)
                } catch {
                    printError("sameday: \(error)")
                    throw ExitCode.failure
                }
            }
            let topology = SameDayTopology(shards: 1, namePrefix: namePrefix)
            let keys = AlertWatch.routingKeys(level: level, block: block, units: units)
            let queue: String
            if let durable {
                queue = AlertWatch.durableQueue(topology: topology, owner: owner, name: durable)
            } else {
                let host = ProcessInfo.processInfo.hostName.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
                queue = AlertWatch.queue(topology: topology, owner: owner, instance: "\(String(host)).\(getpid())")
            }
            let colour = isatty(STDOUT_FILENO) == 1
            let limit = count
            let isDurable = durable != nil
            do {
                try await BlockingThread.run(name: "alerts watch") {
                    let admin = try Connection.open(connection)
                    defer { admin.close() }
                    // The queue outlives a consumer reconnect; a transient one expires a minute after the watcher.
                    try Topology(queues: [AlertWatch.queueDeclaration(queue, durable: isDurable)]).declare(on: admin)
                    for key in keys {
                        let binding = AlertWatch.binding(topology: topology, queue: queue, routingKey: key)
                        do {
                            try Topology(bindings: [binding]).declare(on: admin)
                        } catch let error as AMQPError where error.replyCode == 403 {
                            throw BindingRefused(key: key, broker: error.message)
                        }
                    }
                }
            } catch let refused as BindingRefused {
                var text =
                    "sameday: the broker refused to bind \(queue) to \(topology.alertsExchange) with key \(refused.key) "
                    + "(403 ACCESS_REFUSED): \(user) may not read those alerts. A supervisor scoped to some units "
                    + "watches only hers: --unit CODE for each, or --unit-systems FILE to take them from the registry."
                if isDurable { text += " The durable queue \(queue) keeps any binding made before this one." }
                printError(text + "\n(broker: \(refused.broker))")
                throw ExitCode.failure
            }
            let shownKeys = keys.joined(separator: ", ")
            let kept = durable.map { "durable: kept when you stop, sameday alerts delete \($0) removes it; " } ?? ""
            try await BlockingThread.run(name: "alerts watch") {
                let consumer = try Consumer(ConsumerConfiguration(connection: connection, queue: queue, prefetch: 100))
                defer { consumer.close() }
                FileHandle.standardError.write(
                    Data("watching alerts \(shownKeys) on \(queue) (\(kept)Ctrl-C to stop)\n".utf8))
                var shown = 0
                while limit.map({ shown < $0 }) ?? true {
                    guard let delivery = try consumer.next(timeout: .seconds(1)) else { continue }
                    // Written straight to the descriptor: a watcher piped into another program sees each line at once.
                    FileHandle.standardOutput.write(
                        Data((AlertLine.render(delivery.body, unitNames: names, colour: colour) + "\n").utf8))
                    try consumer.ack(delivery.tag)
                    shown += 1
                }
            }
        }

        /// The units the registry gives supervisor `owner`: hers with their subunits, or none (every unit) for a
        /// city-level one.
        static func units(of owner: String, registry path: String, configuration: Configuration?, config: String)
            throws -> [String]
        {
            let registry = try UnitSystemRegistry.load(
                path: path, allowDemoTokens: true, units: configuration?.units)
            guard let supervisor = registry.supervisor(named: owner) else {
                throw CommandFailure(
                    "\(path) has no supervisor \"\(owner)\" (the broker user is supervisor.\(owner)): give --unit CODE")
            }
            if let missing = supervisor.missingUnitTree {
                throw CommandFailure("\(missing) (--config \(config) could not be loaded)")
            }
            return supervisor.units ?? []
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a durable watch queue (alerts watch --durable NAME) and the alerts waiting in it.",
            discussion: """
                The queue is sameday.alerts.<name>.NAME, <name> from the login supervisor.<name>: a supervisor \
                deletes only her own (an operator can also run rabbitmqctl delete_queue).
                """)

        @Argument(help: "The NAME given to alerts watch --durable.") var name: String
        @Option(help: "Broker URL without a password; default SAMEDAY_AMQP_URL or the local broker.")
        var url: String?
        @Option(help: "File holding the broker URL (amqp[s]://supervisor.NAME:PASSWORD@host:port/vhost), mode 0600.")
        var urlFile: String?
        @Option(help: "Prefix of the broker names (tests).") var namePrefix = ""

        func validate() throws {
            if !SameDayBrokerUsers.isSimpleName(name) {
                throw ValidationError("\(name): use only letters, digits, - and _")
            }
            if url != nil && urlFile != nil { throw ValidationError("give --url or --url-file, not both") }
            try BrokerOptions.refusePassword(
                in: url, option: "--url", instead: "put the whole URL in a file and give --url-file FILE (chmod 600)")
        }

        func run() async throws {
            let connection = try AlertsCommand.connection(url: url, urlFile: urlFile, name: "sameday alerts delete")
            let queue = AlertWatch.durableQueue(
                topology: SameDayTopology(shards: 1, namePrefix: namePrefix),
                owner: AlertWatch.owner(ofUser: connection.brokers[0].user), name: name)
            let held = try await BlockingThread.run(name: "alerts delete") { () throws -> UInt32? in
                let broker = try Connection.open(connection)
                defer { broker.close() }
                return try Topology.deleteQueue(queue, on: broker)
            }
            guard let held else {
                printError("sameday: no queue \(queue) to delete")
                throw ExitCode.failure
            }
            print("deleted \(queue) and the \(held) alerts waiting in it")
        }
    }

    /// The connection of `alerts watch` and `alerts delete`: --url-file, else --url, SAMEDAY_AMQP_URL or local.
    static func connection(url: String?, urlFile: String?, name: String) throws -> ConnectionConfiguration {
        var urls = url ?? ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? BrokerOptions.localBroker
        if let urlFile {
            do {
                urls = try BrokerOptions.readURLFile(urlFile)
            } catch {
                printError("sameday: --url-file: \(error)")
                throw ExitCode.failure
            }
        }
        return try ConnectionConfiguration(urls: [urls], connectionName: name)
    }
}

/// A binding the broker refused (403): the key, and what the broker said.
struct BindingRefused: Error {
    var key: String
    var broker: String
}

/// One alert as a line for a person: level, when, unit, dossier, procedure, deadline, minutes left, recipients.
enum AlertLine {
    static func render(_ body: [UInt8], unitNames: [String: String], colour: Bool) -> String {
        guard let alert = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return "(unreadable alert: \(String(decoding: body.prefix(200), as: UTF8.self)))"
        }
        func text(_ key: String) -> String { alert[key].map { "\($0)" } ?? "" }
        let level = text("level")
        let unit = text("unit")
        let minutes = (alert["minutesLeft"] as? NSNumber)?.intValue
        let left: String =
            switch minutes {
            case .none: ""
            case .some(let m) where m < 0: "\(-m) min late"
            case .some(0): "due now"
            case .some(let m): "\(m) min left"
            }
        let recipients = (alert["recipients"] as? [String])?.joined(separator: ", ") ?? ""
        let code: String =
            switch level {
            case "warning": "33"
            case "critical": "31"
            case "overdue", "escalated", "resolved_late": "1;31"
            case "cleared": "32"
            default: "36"
            }
        let label = level.uppercased().padding(toLength: 13, withPad: " ", startingAt: 0)
        let shownLevel = colour ? "\u{1B}[\(code)m\(label)\u{1B}[0m" : label
        var parts = [shownLevel, text("firedAt"), "\(unitNames[unit] ?? unit) (\(unit))"]
        if !text("dossier").isEmpty { parts.append("hồ sơ \(text("dossier"))") }
        if !text("procedure").isEmpty { parts.append("TTHC \(text("procedure"))") }
        if !text("due").isEmpty { parts.append("hạn \(text("due"))") }
        if !left.isEmpty { parts.append(left) }
        if (alert["lateFired"] as? Bool) == true { parts.append("(late-fired)") }
        if !recipients.isEmpty { parts.append("→ \(recipients)") }
        return parts.joined(separator: "  ")
    }
}
