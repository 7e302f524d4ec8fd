import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats

/// `sameday alerts watch`: a supervisor's live view of the alerts, one readable line each.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Follow SLA alerts as they are raised.", subcommands: [Watch.self])

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bind a watch queue to sameday.alerts and print each alert as it comes (Ctrl-C to stop).",
            discussion: """
                Works with a supervisor's broker user (supervisor.<name>: read alerts only): the queue is \
                sameday.alerts.<name>.watch.<host>.<pid>, in the supervisor's own namespace, and expires a minute \
                after the watcher is gone. Give the URL with its credentials in a file (--url-file, mode 0600): \
                --url refuses a URL with a password.
                """)

        @Option(help: "Broker URL without a password; default SAMEDAY_AMQP_URL or the local broker.")
        var url: String?
        @Option(help: "File holding the broker URL (amqp[s]://supervisor.NAME:PASSWORD@host:port/vhost), mode 0600.")
        var urlFile: String?
        @Option(help: "Only this unit (code).") var unit: String?
        @Option(help: "Only this block: district, commune, department, vertical.") var block: String?
        @Option(help: "Only this level: warning, critical, overdue, escalated, cleared, resolved_late, source_silent.")
        var level: String?
        @Option(help: "Configuration folder, for unit names.") var config = "deploy/config/hcmc-2022"
        @Option(help: "Prefix of the broker names (tests).") var namePrefix = ""
        @Option(help: "Stop after this many alerts (default: run until interrupted).") var count: Int?

        func validate() throws {
            if let block, Block(rawValue: block) == nil { throw ValidationError("--block \(block): unknown block") }
            if let level, !AlertLevel.allCases.map(\.name).contains(level) {
                throw ValidationError("--level \(level): unknown level")
            }
            if url != nil && urlFile != nil { throw ValidationError("give --url or --url-file, not both") }
            try BrokerOptions.refusePassword(
                in: url, option: "--url", instead: "put the whole URL in a file and give --url-file FILE (chmod 600)")
        }

        func run() async throws {
            var urls = url ?? ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? BrokerOptions.localBroker
            if let urlFile {
                do {
                    urls = try BrokerOptions.readURLFile(urlFile)
                } catch {
                    printError("sameday: --url-file: \(error)")
                    throw ExitCode.failure
                }
            }
            let connection = try ConnectionConfiguration(urls: [urls], connectionName: "sameday alerts watch")
            let names =
                (try? ConfigurationFolder.load(config)).map { configuration in
                    Dictionary(configuration.units.map { ($0.code, $0.name) }, uniquingKeysWith: { a, _ in a })
                } ?? [:]
            let topology = SameDayTopology(shards: 1, namePrefix: namePrefix)
            let key = [level ?? "*", block ?? "*", unit.map(SameDayRoutingKey.keyWord) ?? "*"].joined(separator: ".")
            let host = ProcessInfo.processInfo.hostName.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
            let queue = AlertWatch.queue(
                topology: topology, owner: AlertWatch.owner(ofUser: connection.brokers[0].user),
                instance: "\(String(host)).\(getpid())")
            let colour = isatty(STDOUT_FILENO) == 1
            let limit = count
            try await BlockingThread.run(name: "alerts watch") {
                let admin = try Connection.open(connection)
                // The queue outlives a consumer reconnect and expires a minute after the watcher is gone.
                try AlertWatch.declarations(topology: topology, queue: queue, routingKey: key).declare(on: admin)
                admin.close()
                let consumer = try Consumer(ConsumerConfiguration(connection: connection, queue: queue, prefetch: 100))
                defer { consumer.close() }
                FileHandle.standardError.write(Data("watching alerts \(key) on \(queue) (Ctrl-C to stop)\n".utf8))
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
    }
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
