import ArgumentParser
import Foundation
import Hummingbird
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayReceiver

/// `sameday receive`: the HTTP receiver for unit systems that call out (deploy/adapters/openapi.yaml).
struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive events over HTTP (POST /v1/events) and publish them with confirms, spooling when needed.",
        discussion: """
            --config names the receiver's JSON file (deploy/adapters/receiver.json): the configuration folder, \
            the unit-systems registry (tokens stored as SHA-256), the spool folder and bound, and the body limit; \
            relative paths are relative to that file. The broker URL comes from SAMEDAY_AMQP_URL or the file's \
            "brokerURLFile". `sameday receive --hash-token -` reads a token on standard input and prints its hash.
            """)

    @Option(help: "Address to listen on, HOST:PORT (keep it on loopback or behind a TLS proxy).") var listen =
        "127.0.0.1:8080"
    @Option(help: "Receiver configuration file (JSON).") var config: String?
    @Option(help: "Print the SHA-256 of a bearer token (\"-\": read it from standard input) and exit.") var hashToken:
        String?

    func run() async throws {
        if let hashToken {
            let token = hashToken == "-" ? (readLine() ?? "") : hashToken
            print(SHA256.hex(Array(token.utf8)))
            return
        }
        guard let config else { throw ValidationError("--config is required") }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--listen must be HOST:PORT") }
        let settings = try ReceiverFile.load(config)
        let forwarder = EventForwarder(settings: settings.forwarder)
        forwarder.start()
        let app = Application(
            router: Receiver.router(settings: settings.receiver, forwarder: forwarder),
            configuration: .init(address: .hostname(String(parts[0]), port: port), serverName: "sameday-receiver"))
        do {
            try await app.runService()
        } catch {
            forwarder.stop()
            throw error
        }
        forwarder.stop()
    }
}

/// Reads deploy/adapters/receiver.json.
enum ReceiverFile {
    static func load(_ path: String) throws -> (receiver: ReceiverSettings, forwarder: ForwarderSettings) {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw CommandFailure("\(path): cannot read a JSON object") }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        guard let configDir = object["config"] as? String else { throw CommandFailure("\(path): $.config: missing") }
        guard let registryPath = object["unitSystems"] as? String else {
            throw CommandFailure("\(path): $.unitSystems: missing")
        }
        let spoolObject = object["spool"] as? [String: Any] ?? [:]
        guard let spoolDir = spoolObject["directory"] as? String else {
            throw CommandFailure("\(path): $.spool.directory: missing")
        }
        let capacity = (spoolObject["capacityBytes"] as? NSNumber)?.int64Value ?? Spool.defaultCapacity
        let configuration = try CoreFiles.loadConfiguration(resolve(configDir))
        let registry = try UnitSystemRegistry.load(path: resolve(registryPath))
        var url = ProcessInfo.processInfo.environment["SAMEDAY_AMQP_URL"] ?? "amqp://127.0.0.1:5672/%2F"
        if let file = object["brokerURLFile"] as? String {
            guard let text = try? String(contentsOfFile: resolve(file), encoding: .utf8) else {
                throw CommandFailure("\(path): $.brokerURLFile: cannot read \(file)")
            }
            url = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var connection = try ConnectionConfiguration(urls: [url], connectionName: "sameday receive")
        connection.reconnect = Backoff.Policy(
            initialDelay: .milliseconds(200), maximumDelay: .seconds(2), maximumAttempts: 3)
        let receiver = ReceiverSettings(
            registry: registry, maxBodyBytes: (object["maxBodyBytes"] as? NSNumber)?.intValue ?? 1 << 20,
            maxEventsPerRequest: (object["maxEventsPerRequest"] as? NSNumber)?.intValue ?? 1000)
        let forwarder = ForwarderSettings(
            publisher: PublisherConfiguration(connection: connection, blockedTimeout: .seconds(10)),
            spool: try Spool(directory: resolve(spoolDir), capacityBytes: capacity), configuration: configuration,
            topology: SameDayTopology(shards: 4))
        return (receiver, forwarder)
    }
}
