import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats

/// `sameday dead-letters list|replay`: what the workers set aside, and putting it back after a fix.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters", abstract: "Show or re-publish the events that workers could not process.",
        subcommands: [List.self, Replay.self])

    struct Options: ParsableArguments {
        @Option(help: "Broker URL without a password; default SAMEDAY_AMQP_URL or the local broker.") var url: String?
        @Option(help: "File whose first line is the broker user:password (mode 0600).") var credentialsFile: String?
        @Option(help: "Prefix of the broker names (tests).") var namePrefix = ""
        @Option(help: "At most this many messages.") var limit = 1000

        func validate() throws {
            try BrokerOptions.refusePassword(in: url, option: "--url", instead: BrokerOptions.useCredentialsFile)
        }

        func connection() throws -> ConnectionConfiguration {
            try BrokerOptions.connection(url: url, credentialsFile: credentialsFile, name: "sameday dead-letters")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the dead letters (id, refusal code, routing key, reason, start of the body); they stay queued.")
        @OptionGroup var options: Options

        func run() async throws {
            let connection = try options.connection()
            let queue = SameDayTopology(shards: 1, namePrefix: options.namePrefix).deadLetterQueue
            let limit = options.limit
            let lines = try await BlockingThread.run(name: "dead-letters") { () -> [String] in
                // Deliveries are never acked: closing the consumer returns them to the queue.
                let consumer = try Consumer(
                    ConsumerConfiguration(connection: connection, queue: queue, prefetch: UInt16(min(limit, 65_535))))
                defer { consumer.close() }
                var lines: [String] = []
                while lines.count < limit, let delivery = try consumer.next(timeout: .seconds(1)) {
                    let letter = DeadLetterOrigin(delivery.headers)
                    let body = Printable.escaped(String(decoding: delivery.body.prefix(160), as: UTF8.self), limit: 160)
                    lines.append(
                        [
                            Printable.escaped(delivery.messageID ?? "-", limit: 128), letter.code,
                            Printable.escaped(delivery.routingKey, limit: 200), letter.reason, body,
                        ].joined(separator: "\t"))
                }
                return lines
            }
            print("message_id\trefusal\trouting_key\treason\tbody")
            lines.forEach { print($0) }
            FileHandle.standardError.write(Data("\(lines.count) dead letters in \(queue)\n".utf8))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Re-publish the dead letters a fix can cure (a unit added to the registry or given a larger limit, "
                + "the broker's delivery limit); every other one stays, with the reason it is kept.")
        @OptionGroup var options: Options
        @Option(help: "Configuration folder (to route by the unit's block).") var config = "deploy/config/hcmc-2022"

        func run() async throws {
            let connection = try options.connection()
            let domain = try ConfigurationFolder.load(config)
            let topology = SameDayTopology(shards: 1, namePrefix: options.namePrefix)
            let limit = options.limit
            let (replayed, kept) = try await BlockingThread.run(name: "dead-letters") { () -> (Int, [String]) in
                let consumer = try Consumer(
                    ConsumerConfiguration(connection: connection, queue: topology.deadLetterQueue, prefetch: 100))
                let publisher = try Publisher(PublisherConfiguration(connection: connection))
                defer {
                    publisher.close()
                    consumer.close()
                }
                var replayed = 0
                var kept: [String] = []
                var seen = 0
                while seen < limit, let delivery = try consumer.next(timeout: .seconds(1)) {
                    seen += 1
                    let id = Printable.escaped(delivery.messageID ?? "-", limit: 128)
                    switch DeadLetterOrigin(delivery.headers).replay(
                        body: delivery.body, routingKey: delivery.routingKey, messageID: delivery.messageID,
                        dossierHeader: delivery.headers[SameDayTopology.shardHeader]?.stringValue, domain: domain,
                        names: topology.producerNames)
                    {
                    case .keep(let why):
                        kept.append("\(id): \(why)")
                        continue  // left unacked: back to the queue when we close
                    case .publish(let message):
                        try publisher.publish(message)
                        try publisher.waitForConfirms()
                        try consumer.ack(delivery.tag)
                        replayed += 1
                    }
                }
                return (replayed, kept)
            }
            print("re-published \(replayed) events; \(kept.count) kept in the dead-letter queue")
            kept.prefix(50).forEach { print("  \($0)") }
        }
    }
}
