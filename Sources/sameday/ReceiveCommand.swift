import ArgumentParser
import Foundation
import Hummingbird
import Logging
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayReceiver
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday receive`: the HTTP receiver for unit systems that call out (deploy/adapters/openapi.yaml).
struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive events over HTTP (POST /v1/events) and publish them with confirms, spooling when needed.",
        discussion: """
            --config names the receiver's JSON file (deploy/adapters/receiver.json, every key in docs/adapters.md): \
            the configuration folder, the unit-systems registry (tokens stored as SHA-256), the spool folder and \
            bound, the body limits, the broker URL file and the plausible time window; relative paths are relative \
            to that file. The broker URL comes from the file's "brokerURLFile" (mode 0600), else SAMEDAY_AMQP_URL, \
            else the default local broker (said at start and in /healthz). Each request is logged as one JSON line \
            on standard error (method, path, unit system, status, events, duration; never bodies or tokens).
            A registry holding the hash of a shipped demo token (demo-token-…) is refused unless SAMEDAY_DEMO=1.
            --dry-run: the same checks, but a valid request is answered 200 with the events and routing keys it \
            would publish; nothing is published or spooled.
            --hash-token: reads a new token from standard input (never the command line, which shell history \
            keeps) and prints the SHA-256 to put in unit-systems.json as tokenSHA256:
              printf %s "$TOKEN" | sameday receive --hash-token
            Exit status 1 on any failure, usage errors included.
            """)

    @Option(help: "Address to listen on, HOST:PORT (keep it on loopback or behind a TLS proxy).") var listen =
        "127.0.0.1:8080"
    @Option(help: "Receiver configuration file (JSON).") var config: String?
    @Flag(help: "Answer requests with the events they would publish; publish nothing.") var dryRun = false
    @Flag(help: "Read a bearer token from standard input, print its SHA-256 and exit.") var hashToken = false

    func validate() throws {
        if hashToken { return }
        guard config != nil else {
            throw usageError(
                "receive", "--config FILE is required (the receiver's JSON file, e.g. deploy/adapters/receiver.json)")
        }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, Int(parts[1]) != nil else {
            throw usageError("receive", "--listen \"\(listen)\": expected HOST:PORT, e.g. 127.0.0.1:8080")
        }
    }

    func run() async throws {
        if hashToken {
            guard isatty(STDIN_FILENO) == 0 else {
                throw usageError(
                    "receive",
                    "--hash-token reads the token from standard input: printf %s \"$TOKEN\" | sameday receive --hash-token"
                )
            }
            var token = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            while token.hasSuffix("\n") || token.hasSuffix("\r") { token.removeLast() }
            guard !token.isEmpty else { throw usageError("receive", "--hash-token: standard input holds no token") }
            print(SHA256.hex(Array(token.utf8)))
            return
        }
        let parts = listen.split(separator: ":")
        let (host, port) = (String(parts[0]), Int(parts[1])!)
        let settings: (receiver: ReceiverSettings, forwarder: ForwarderSettings?)
        do {
            settings = try ReceiverFile.load(config!, dryRun: dryRun)
        } catch {
            printError("sameday receive: \(error)")
            throw ExitCode.failure
        }
        let forwarder = settings.forwarder.map { EventForwarder(settings: $0) }
        let broker = settings.receiver.broker.map(\.description) ?? "?"
        printError(
            dryRun
                ? "sameday receive: DRY RUN on \(listen): requests are answered with the events they would publish; nothing is published (broker would be \(broker))"
                : "sameday receive: listening on \(listen); publishing to \(broker); spool \(settings.forwarder!.spool.directory)"
        )
        let logger = Logger(label: "sameday.receiver")
        let app = Application(
            router: Receiver.router(settings: settings.receiver, forwarder: forwarder),
            configuration: .init(address: .hostname(host, port: port), serverName: "sameday-receiver"),
            logger: logger)
        // One graceful-shutdown path, as for `sameday worker`: on SIGTERM/SIGINT the group stops in reverse order,
        // the HTTP application first (no new requests; those in flight are answered), then the forwarder (queued
        // events confirmed or spooled). Either service ending, an error included, shuts the group down.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let forwarder {
            services.append(.stoppingTheGroup(forwarder, name: "forwarder"))
        }
        services.append(.stoppingTheGroup(app, name: "http"))
        let group = ServiceGroup(configuration: .stoppedBySignals(services, logger: logger))
        do {
            try await group.run()
        } catch {
            printError("sameday receive: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Reads deploy/adapters/receiver.json. Every key is documented in docs/configuration.md; an unknown key is an error
/// (a misspelt "brokerURLFile" must not silently mean "the default broker").
enum ReceiverFile {
    static let keys: Set<String> = [
        "description", "config", "unitSystems", "spool", "maxBodyBytes", "maxEventsPerRequest", "brokerURLFile",
        "eventBounds",
    ]

    static func load(
        _ path: String, dryRun: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (receiver: ReceiverSettings, forwarder: ForwarderSettings?) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("\(path): cannot read")
        }
        let object: JSONObject
        let spoolDir: String
        let capacity: Int64
        var bounds = EventTimeBounds.standard
        let brokerURLFile: String?
        let maxBodyBytes: Int64
        let maxEventsPerRequest: Int64
        let configDir: String
        let registryPath: String
        do throws(ConfigurationError) {
            object = try JSONReader(file: path).root([UInt8](data), allowed: keys.sorted())
            guard let config = try object.string("config") else {
                throw object.error("config", "missing: the configuration folder")
            }
            guard let unitSystems = try object.string("unitSystems") else {
                throw object.error("unitSystems", "missing: the unit-systems registry file")
            }
            (configDir, registryPath) = (config, unitSystems)
            guard let spool = try object.object("spool") else {
                throw object.error("spool", "missing: {\"directory\": …, \"capacityBytes\": …}")
            }
            try spool.only(["capacityBytes", "directory"])
            guard let directory = try spool.string("directory") else { throw spool.error("directory", "missing") }
            spoolDir = directory
            capacity = Int64(try spool.int("capacityBytes", in: 1...Int.max) ?? Int(Spool.defaultCapacity))
            if let window = try object.object("eventBounds") {
                try window.only(["earliest", "maxAheadHours", "rescheduleWithinDays"])
                if let text = try window.string("earliest") {
                    guard let day = LocalDate(text) else {
                        throw window.error("earliest", "expected a YYYY-MM-DD date, found \(window["earliest"]!.found)")
                    }
                    bounds.earliest = day.startInstant
                }
                bounds.maxAheadSeconds = Int64(try window.int("maxAheadHours", in: 0...Int.max / 3600) ?? 24) * 3600
                bounds.rescheduleWithinSeconds =
                    Int64(try window.int("rescheduleWithinDays", in: 0...Int.max / 86_400) ?? 366) * 86_400
            }
            brokerURLFile = try object.string("brokerURLFile")
            maxBodyBytes = Int64(try object.int("maxBodyBytes", in: 1...Int.max) ?? 1 << 20)
            maxEventsPerRequest = Int64(try object.int("maxEventsPerRequest", in: 1...Int.max) ?? 1000)
        } catch {
            throw CommandFailure(error.description)
        }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        let configuration = try CoreFiles.loadConfiguration(resolve(configDir))
        // The shipped demo tokens are public (docs, tests): only a demonstration may accept them.
        let registry = try UnitSystemRegistry.load(
            path: resolve(registryPath), allowDemoTokens: environment["SAMEDAY_DEMO"] == "1")
        var url = BrokerOptions.localBroker
        var configuredBy: String?
        if let file = brokerURLFile {
            do {
                url = try BrokerOptions.readURLFile(resolve(file))
            } catch {
                throw CommandFailure(object.error("brokerURLFile", "\(error)").description)
            }
            configuredBy = "brokerURLFile \(resolve(file))"
        } else if let text = environment["SAMEDAY_AMQP_URL"] {
            url = text
            configuredBy = "SAMEDAY_AMQP_URL"
        }
        var connection: ConnectionConfiguration
        do {
            connection = try ConnectionConfiguration(urls: [url], connectionName: "sameday receive")
        } catch {
            // The URL holds the password: name where it came from, not the URL.
            throw CommandFailure("\(configuredBy ?? "the default broker URL"): not a broker URL (\(error.kind))")
        }
        connection.reconnect = Backoff.Policy(
            initialDelay: .milliseconds(200), maximumDelay: .seconds(2), maximumAttempts: 3)
        let names = SameDayProducerNames()
        let receiver = ReceiverSettings(
            registry: registry,
            maxBodyBytes: Int(maxBodyBytes), maxEventsPerRequest: Int(maxEventsPerRequest),
            eventBounds: bounds, configuration: configuration, names: names,
            broker: BrokerTarget(connection: connection, configuredBy: configuredBy))
        if dryRun { return (receiver, nil) }
        let forwarder = ForwarderSettings(
            publisher: PublisherConfiguration(connection: connection, blockedTimeout: .seconds(10)),
            spool: try Spool(directory: resolve(spoolDir), capacityBytes: capacity), configuration: configuration,
            names: names)
        return (receiver, forwarder)
    }
}
