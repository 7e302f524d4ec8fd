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

/// Reads deploy/adapters/receiver.json. Every key is documented in docs/adapters.md; an unknown key is an error
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
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CommandFailure("\(path): $: must be a JSON object")
            }
            object = parsed
        } catch let error as CommandFailure {
            throw error
        } catch {
            throw CommandFailure("\(path): $: not valid JSON")
        }
        func fail(_ key: String, _ message: String) -> CommandFailure {
            CommandFailure("\(path): $.\(key): \(message)")
        }
        for key in object.keys.sorted() where !keys.contains(key) {
            throw fail(key, "unknown setting (known: \(keys.sorted().joined(separator: ", ")))")
        }
        func number(_ value: Any?, _ key: String, default fallback: Int64, minimum: Int64 = 1) throws -> Int64 {
            guard let value else { return fallback }
            guard let n = value as? NSNumber, !(n is Bool), n.doubleValue == Double(n.int64Value),
                n.int64Value >= minimum
            else { throw fail(key, "must be a whole number ≥ \(minimum)") }
            return n.int64Value
        }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        guard let configDir = object["config"] as? String else {
            throw fail("config", "missing: the configuration folder")
        }
        guard let registryPath = object["unitSystems"] as? String else {
            throw fail("unitSystems", "missing: the unit-systems registry file")
        }
        guard let spoolObject = object["spool"] as? [String: Any] else {
            throw fail("spool", "missing: {\"directory\": …, \"capacityBytes\": …}")
        }
        for key in spoolObject.keys.sorted() where !["directory", "capacityBytes"].contains(key) {
            throw fail("spool.\(key)", "unknown setting (known: capacityBytes, directory)")
        }
        guard let spoolDir = spoolObject["directory"] as? String else { throw fail("spool.directory", "missing") }
        let capacity = try number(spoolObject["capacityBytes"], "spool.capacityBytes", default: Spool.defaultCapacity)
        var bounds = EventTimeBounds.standard
        if let value = object["eventBounds"] {
            guard let window = value as? [String: Any] else { throw fail("eventBounds", "must be an object") }
            for key in window.keys.sorted() where !["earliest", "maxAheadHours", "rescheduleWithinDays"].contains(key) {
                throw fail(
                    "eventBounds.\(key)", "unknown setting (known: earliest, maxAheadHours, rescheduleWithinDays)")
            }
            if let text = window["earliest"] {
                guard let text = text as? String, let day = LocalDate(text) else {
                    throw fail("eventBounds.earliest", "must be a YYYY-MM-DD date")
                }
                bounds.earliest = day.startInstant
            }
            bounds.maxAheadSeconds =
                try number(window["maxAheadHours"], "eventBounds.maxAheadHours", default: 24, minimum: 0) * 3600
            bounds.rescheduleWithinSeconds =
                try number(window["rescheduleWithinDays"], "eventBounds.rescheduleWithinDays", default: 366, minimum: 0)
                * 86_400
        }
        let configuration = try CoreFiles.loadConfiguration(resolve(configDir))
        // The shipped demo tokens are public (docs, tests): only a demonstration may accept them.
        let registry = try UnitSystemRegistry.load(
            path: resolve(registryPath), allowDemoTokens: environment["SAMEDAY_DEMO"] == "1")
        var url = BrokerOptions.localBroker
        var configuredBy: String?
        if let file = object["brokerURLFile"] {
            guard let file = file as? String else { throw fail("brokerURLFile", "must be a file name") }
            do {
                url = try BrokerOptions.readURLFile(resolve(file))
            } catch {
                throw fail("brokerURLFile", "\(error)")
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
        let topology = SameDayTopology(shards: 4)
        let receiver = ReceiverSettings(
            registry: registry,
            maxBodyBytes: Int(try number(object["maxBodyBytes"], "maxBodyBytes", default: 1 << 20)),
            maxEventsPerRequest: Int(try number(object["maxEventsPerRequest"], "maxEventsPerRequest", default: 1000)),
            eventBounds: bounds, configuration: configuration, topology: topology,
            broker: BrokerTarget(connection: connection, configuredBy: configuredBy))
        if dryRun { return (receiver, nil) }
        let forwarder = ForwarderSettings(
            publisher: PublisherConfiguration(connection: connection, blockedTimeout: .seconds(10)),
            spool: try Spool(directory: resolve(spoolDir), capacityBytes: capacity), configuration: configuration,
            topology: topology)
        return (receiver, forwarder)
    }
}
