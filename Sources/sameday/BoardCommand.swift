import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTLS
import Logging
import NIOSSL
import SameDayBoard
import SameDayCore
import SameDayFormats
import SameDayWorker
import ServiceLifecycle

/// `sameday board`: the supervisors' live page of the dossiers at risk (docs/board.md;
/// deploy/systemd/sameday-board.service), and the password hashes its login checks.
struct BoardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "board",
        abstract: "Serve the supervisors' live board: the same-day dossiers at risk in their units, as it happens.",
        subcommands: [BoardRunCommand.self, BoardPasswordCommand.self],
        defaultSubcommand: BoardRunCommand.self)
}

struct BoardRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the board: consume its queue, serve the page and its live stream (the default).",
        discussion: """
            It declares its queue (sameday.board) bound to sameday.alerts, rebuilds its view from its state file and \
            the workers' alert files, then serves board.json's listen address. Each person logs in with the \
            password hash of board.json's passwordsFile and sees the units whose alerts alerting.json sends her. \
            SIGTERM or SIGINT stop it gracefully. With --clock events the alerts' own time is the clock \
            (demonstrations).
            """)

    @Option(help: "Worker configuration file (JSON): brokers, namePrefix, domainConfig, clock.") var config: String?
    @Option(help: "Board settings (JSON; see deploy/board.json and docs/board.md).")
    var board = "/etc/sameday/board.json"
    @Option(help: "Override the clock: wall (default) or events (the alerts' firedAt; for demonstrations).")
    var clock: ClockMode?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        let worker = try serviceSettings(command: "board", config: config, logLevel: logLevel) { settings in
            if let clock { settings.clock = clock }
        }
        let logger = Logger(label: "sameday.board")
        func fail(_ error: Any) -> ExitCode {
            FileHandle.standardError.write(Data("sameday board: \(error)\n".utf8))
            return ExitCode.failure
        }
        let settings: BoardSettings
        let domain: Configuration
        let passwords: PasswordFile
        let stateLock: StateLock
        let listen: HostPort
        do {
            settings = try BoardSettings.load(path: board)
            domain = try ConfigurationFolder.load(worker.domainConfig)
            passwords = try PasswordFile.load(
                path: settings.passwordsFile, people: Set(domain.unitsByPerson().keys))
            if passwords.hashes.isEmpty {
                logger.warning(
                    "board: the password file names nobody; no one can log in",
                    metadata: ["file": "\(settings.passwordsFile)"])
            }
            stateLock = try StateLock(boardFolder: settings.stateDirectory)
            guard let address = HostPort(settings.listen) else { throw CommandFailure("listen: expected HOST:PORT") }
            listen = address
        } catch {
            throw fail(error)
        }
        defer { stateLock.release() }
        let metrics = WorkerMetrics()
        let service = BoardService(
            configuration: worker, settings: settings, domain: domain, metrics: metrics, logger: logger)
        do {
            try service.restore()
        } catch {
            throw fail(error)
        }
        service.refreshFigures()
        let server = BoardServer(
            hub: service.hub, settings: settings, passwords: passwords,
            timeline: settings.timelineStores.isEmpty
                ? nil : StoreTimeline(stores: settings.timelineStores, domain: domain),
            events: BoardEvents(onLogin: { outcome in metrics.increment(.boardLoginsTotal, outcome.rawValue) }))
        let app: any Service
        do {
            let address = BindAddress.hostname(listen.host, port: listen.port)
            if let tls = settings.tls {
                let certificates = try NIOSSLCertificate.fromPEMFile(tls.certificateFile)
                let key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key))
                app = Application(
                    router: server.router(), server: try .tls(.http1(), tlsConfiguration: configuration),
                    configuration: .init(address: address, serverName: "sameday-board"), logger: logger)
            } else {
                app = Application(
                    router: server.router(), configuration: .init(address: address, serverName: "sameday-board"),
                    logger: logger)
            }
        } catch {
            throw fail("tls: \(error)")
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !settings.metricsListen.isEmpty {
            do {
                let health = try HealthServer(
                    listen: settings.metricsListen, metrics: metrics, logger: Logger(label: "sameday.board.metrics"))
                services.append(.stoppingTheGroup(health, name: "metrics"))
            } catch {
                throw fail(error)
            }
        }
        services.append(.stoppingTheGroup(BoardRunner(service: service), name: "intake"))
        services.append(.stoppingTheGroup(app, name: "http"))
        // Last in the list, so first to stop: the live streams end before the HTTP server waits for its requests.
        services.append(.stoppingTheGroup(BoardStreamsCloser(hub: service.hub), name: "streams"))
        logger.info(
            "board serving",
            metadata: [
                "listen": "\(settings.tls == nil ? "http" : "https")://\(settings.listen)",
                "people": "\(passwords.hashes.count)",
            ])
        let group = ServiceGroup(configuration: .stoppedBySignals(services, logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("board failed", metadata: ["error": "\(error)"])
            throw fail(error)
        }
    }
}

/// `sameday board password PERSON`: the password file's line for a person, the password read from standard input.
struct BoardPasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password",
        abstract: "Print the password file's line (person:bcrypt-hash) for a person; the password is read from stdin.",
        discussion: """
            Example: sameday board password lanhdao.phong@quan1.hcmc.example < pw.txt >> /etc/sameday/board.passwords
            The password is the first line of standard input (at least 10 characters).
            """)

    @Argument(help: "The person as alerting.json names her (her e-mail address).") var person: String
    @Option(help: "bcrypt's cost (each step doubles the work of a login).") var cost: UInt8 = 12

    func run() throws {
        guard !person.isEmpty, !person.contains(":"), !person.contains(where: \.isNewline) else {
            throw CommandFailure("person: must not be empty or hold \":\" or a line break")
        }
        guard (4...16).contains(cost) else { throw CommandFailure("--cost: from 4 to 16") }
        guard let line = readLine(strippingNewline: true), line.count >= 10, line.utf8.count <= 72 else {
            throw CommandFailure("stdin: a password of 10 to 72 bytes on the first line (bcrypt reads 72 at most)")
        }
        print("\(person):\(Bcrypt.hash(line, cost: cost))")
    }
}
