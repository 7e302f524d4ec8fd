import ArgumentParser
import AsyncHTTPClient
import Foundation
import HummingbirdBcrypt
import NIOCore
import RabbitMQ
import SameDayBoard
import SameDayBroker
import SameDayCore
import SameDayFormats
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday-bench board`: `--clients` live clients (200) of a `sameday board` process over loopback, each logged in
/// as one of the people `alerting.json` names (round robin), while the seed month's alerts (`simulate --scenario
/// realistic` through `replay`, in firing order) are published to `sameday.alerts` at `--rate`: by default ten
/// times the month's busiest hour at the seed's full volume. A page loader fetches the page, its assets and the
/// snapshot every 200 ms meanwhile. One JSON line:
///
/// - `clients`, `alerts` (published), `rate_per_s`, `ten_times_seed_peak_per_s`;
/// - `p50_delay_s`, `p99_delay_s`: from an alert's publication to its arrival at a client, over every (client,
///   alert) the client should see: the alerts that change the board (`BoardView`, replayed here in the same
///   order) in the client's units;
/// - `missed`: such (client, alert) pairs never received; `resyncs`: clients that fell behind and got a snapshot;
/// - `cpu_us_per_alert`: the board process's CPU time over the run per alert published;
/// - `page_p99_ms`: the page's load (HTML, CSS, script and the snapshot, in sequence) at the 99th percentile.
///
/// Exits 1 when anything is missed.
struct BoardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "board",
        abstract: "Live clients of sameday board while the month's alerts stream in (one JSON line).")

    @Option(help: "Live clients (event streams) at once.") var clients = 200
    @Option(help: "Alerts published per second (0: ten times the seed month's busiest hour).") var rate = 0.0
    @Option(help: "Seconds of publishing.") var seconds = 60.0
    @Option(help: "Share of the seed's month the alerts come from (realistic scenario).") var scale = 0.1
    @Option(help: "The sameday binary (default: beside this one).") var sameday: String?
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (the local broker's administrator).") var url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    @Flag(help: "Keep the work folder.") var keep = false

    func validate() throws {
        guard (1...5_000).contains(clients) else { throw ValidationError("--clients must be 1…5000") }
        guard rate >= 0, seconds > 0, scale > 0, scale <= 1 else {
            throw ValidationError("--rate ≥ 0, --seconds > 0, --scale in (0, 1]")
        }
    }

    func run() async throws {
        let domain = try ConfigurationFolder.load(config)
        var events: [DossierEvent] = []
        _ = try SeedMonth(scenario: .realistic, scale: scale, seed: 1).generate(config: domain) { events.append($0) }
        var alerts = try Replay.run(events: events, config: domain, options: ReplayOptions()).alerts
        events = []
        alerts = alerts.filter { !$0.dossier.isEmpty }.sorted { ($0.firedAt, $0.alertId) < ($1.firedAt, $1.alertId) }
        let tenTimesPeak = NotifyBench.busiestHour(alerts) / scale / 3600 * 10
        let perSecond = rate > 0 ? rate : tenTimesPeak
        alerts = Array(alerts.prefix(max(1, Int(perSecond * seconds))))

        let run = try BoardRun(
            domain: domain, config: config, url: url, clients: clients,
            sameday: sameday
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sameday").path)
        var passed = false
        defer { run.cleanUp(removeFolder: passed && !keep) }
        var result = try await run.measure(alerts, rate: perSecond)
        result["ten_times_seed_peak_per_s"] = (tenTimesPeak * 10).rounded() / 10
        result["rate_per_s"] = (perSecond * 10).rounded() / 10
        result["scale"] = scale
        print(try jsonLine(result))
        passed = (result["missed"] as? Int) == 0
        if !passed { throw ExitCode.failure }
    }
}

/// What one client received: each alert id with when it arrived.
final class BoardClientRecord: Sendable {
    let person: String
    let scope: Set<String>
    private let state = Mutex<(received: [String: ContinuousClock.Instant], snapshots: Int)>(([:], 0))

    init(person: String, scope: Set<String>) {
        self.person = person
        self.scope = scope
    }

    func received(_ alertID: String, at: ContinuousClock.Instant) {
        state.withLock { s in if s.received[alertID] == nil { s.received[alertID] = at } }
    }
    func snapshot() { state.withLock { $0.snapshots += 1 } }
    var snapshots: Int { state.withLock { $0.snapshots } }
    func arrival(of alertID: String) -> ContinuousClock.Instant? { state.withLock { $0.received[alertID] } }
    var count: Int { state.withLock { $0.received.count } }
}

/// When each alert was published.
final class PublicationTimes: Sendable {
    private let times = Mutex<[String: ContinuousClock.Instant]>([:])
    func note(_ alertID: String) { times.withLock { $0[alertID] = ContinuousClock.now } }
    var all: [String: ContinuousClock.Instant] { times.withLock { $0 } }
}

/// One run: the board process, its password file, its broker names, the clients.
final class BoardRun: @unchecked Sendable {
    let folder = NSTemporaryDirectory() + "sameday-bench-board-\(getpid())"
    let domain: Configuration
    let config: String
    let url: String
    let clients: Int
    let sameday: String
    let prefix = "bench.board.\(getpid())."
    let port: Int
    let password = "bench password 0123456789"
    var board: ChildProcess?

    init(domain: Configuration, config: String, url: String, clients: Int, sameday: String) throws {
        self.domain = domain
        self.config = config
        self.url = url
        self.clients = clients
        self.sameday = sameday
        port = Self.unusedPort()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    var topology: SameDayTopology { SameDayTopology(shards: 1, namePrefix: prefix) }
    var base: String { "http://127.0.0.1:\(port)" }

    func cleanUp(removeFolder: Bool) {
        board?.kill(SIGTERM)
        board?.wait()
        if let connection = try? Connection.open(brokerConnection()) {
            _ = try? Topology.deleteQueue(BoardQueue.name(topology: topology), on: connection)
            try? topology.topology.delete(on: connection)
            connection.close()
        }
        if removeFolder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func brokerConnection() throws -> ConnectionConfiguration {
        ConnectionConfiguration(brokers: [try BrokerURL(parsing: url)], connectionName: "sameday-bench board")
    }

    static func unusedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The people (round robin over the clients) and their units, as the board scopes them.
    func people() -> [(person: String, scope: Set<String>)] {
        domain.unitsByPerson().map { ($0.key, Set($0.value.map { domain.unit($0).code })) }.sorted {
            $0.person < $1.person
        }
    }

    func startBoard() throws {
        let hash = Bcrypt.hash(password, cost: 4)
        try people().map { "\($0.person):\(hash)" }.joined(separator: "\n").write(
            toFile: folder + "/board.passwords", atomically: true, encoding: .utf8)
        try """
        {"listen": "127.0.0.1:\(port)", "passwordsFile": "\(folder)/board.passwords", "stateDirectory": "\(folder)/board",
         "metricsListen": "", "maxClients": \(clients + 50), "login": {"attemptsPerAddressPerMinute": 10000}}
        """.write(toFile: folder + "/board.json", atomically: true, encoding: .utf8)
        let connection = try Connection.open(brokerConnection())
        try topology.topology.declare(on: connection)
        // The board's queue, as the board declares it: the alerts wait in it from now on.
        try BoardQueue.declarations(topology: topology, queue: BoardQueue.name(topology: topology)).declare(
            on: connection)
        connection.close()
        board = try ChildProcess(
            [sameday, "board", "--board", folder + "/board.json", "--log-level", "warning"],
            environment: [
                "SAMEDAY_AMQP_URL": url, "SAMEDAY_NAME_PREFIX": prefix, "SAMEDAY_DOMAIN_CONFIG": config,
                "SAMEDAY_CLOCK": "events", "SAMEDAY_METRICS_LISTEN": "",
            ], output: folder + "/board.log")
    }

    func measure(_ alerts: [Alert], rate: Double) async throws -> [String: Any] {
        try startBoard()
        let http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .disallow,
                connectionPool: .init(
                    idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: clients + 20)))
        do {
            let result = try await measure(alerts, rate: rate, http: http)
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    private func measure(_ alerts: [Alert], rate: Double, http: HTTPClient) async throws -> [String: Any] {
        try await waitForBoard(http)
        // The changes each client should see, in publication order (one publisher, one queue: the board's order).
        var view = BoardView()
        var changes: [(alertID: String, unit: String)] = []
        for alert in alerts where view.apply(alert) != nil { changes.append((alert.alertId, alert.unit)) }

        let everyone = people()
        var records: [BoardClientRecord] = []
        var cookies: [String] = []
        for i in 0..<clients {
            let (person, scope) = everyone[i % everyone.count]
            records.append(BoardClientRecord(person: person, scope: scope))
            cookies.append(try await login(http, person))
        }
        let published = PublicationTimes()
        var pageTimes: [Double] = []
        let cpuBefore = processCPU(board!.pid)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (record, cookie) in zip(records, cookies) {
                group.addTask { try await self.listen(http, cookie: cookie, record: record) }
            }
            // Every client has its first snapshot before anything is published.
            let ready = ContinuousClock.now + .seconds(60)
            while records.contains(where: { $0.snapshots == 0 }) {
                guard ContinuousClock.now < ready else { throw ValidationError("clients without their snapshot") }
                try await Task.sleep(for: .milliseconds(50))
            }
            let firstCookie = cookies[0]
            let loader = Task { try await self.loadPages(http, cookie: firstCookie) }
            try await Task.detached { try self.publish(alerts, rate: rate, published: published) }.value
            // Then until every client has what it should, or 20 s.
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let complete = records.allSatisfy { record in
                    changes.allSatisfy { !record.scope.contains($0.unit) || record.arrival(of: $0.alertID) != nil }
                }
                if complete { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            loader.cancel()
            pageTimes = (try? await loader.value) ?? []
            group.cancelAll()
        }
        let cpu = processCPU(board!.pid) - cpuBefore
        var delays: [Double] = []
        var missed = 0
        let publishedAt = published.all
        for record in records {
            for change in changes where record.scope.contains(change.unit) {
                guard let arrival = record.arrival(of: change.alertID), let sent = publishedAt[change.alertID] else {
                    missed += 1
                    continue
                }
                delays.append(max(0, (arrival - sent).seconds))
            }
        }
        delays.sort()
        pageTimes.sort()
        func percentile(_ p: Double, _ values: [Double]) -> Double {
            values.isEmpty ? 0 : values[min(values.count - 1, Int((Double(values.count) * p).rounded(.up)) - 1)]
        }
        return [
            "clients": clients, "alerts": alerts.count, "changes": changes.count,
            "deliveries_expected": delays.count + missed,
            "p50_delay_s": (percentile(0.5, delays) * 1000).rounded() / 1000,
            "p99_delay_s": (percentile(0.99, delays) * 1000).rounded() / 1000,
            "max_delay_s": ((delays.last ?? 0) * 1000).rounded() / 1000,
            "missed": missed, "resyncs": records.map { max(0, $0.snapshots - 1) }.reduce(0, +),
            "cpu_us_per_alert": (cpu / Double(alerts.count) * 1e6).rounded(),
            "board_cpu_s": (cpu * 100).rounded() / 100,
            "page_loads": pageTimes.count, "page_p99_ms": (percentile(0.99, pageTimes) * 10).rounded() / 10,
            "page_p50_ms": (percentile(0.5, pageTimes) * 10).rounded() / 10,
        ]
    }

    func waitForBoard(_ http: HTTPClient) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let response = try? await http.execute(HTTPClientRequest(url: base + "/login"), timeout: .seconds(2)),
                response.status == .ok
            {
                return
            }
            guard board?.isRunning == true else { throw ValidationError("sameday board stopped: \(folder)/board.log") }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("sameday board did not start: \(folder)/board.log")
    }

    func login(_ http: HTTPClient, _ person: String) async throws -> String {
        var request = HTTPClientRequest(url: base + "/login")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let form =
            "person=\(person.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password="
            + password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await http.execute(request, timeout: .seconds(30))
        guard response.status == .seeOther,
            let cookie = response.headers["set-cookie"].first?.split(separator: ";").first
        else { throw ValidationError("login of \(person): \(response.status)") }
        return String(cookie)
    }

    /// One client's event stream until cancelled: every alert id it carries, with its arrival.
    func listen(_ http: HTTPClient, cookie: String, record: BoardClientRecord) async throws {
        var request = HTTPClientRequest(url: base + "/api/events")
        request.headers.add(name: "Cookie", value: cookie)
        let response = try await http.execute(request, timeout: .seconds(3600))
        guard response.status == .ok else { throw ValidationError("event stream: \(response.status)") }
        var pending: [UInt8] = []
        do {
            for try await buffer in response.body {
                let now = ContinuousClock.now
                pending += buffer.readableBytesView
                // Events end with a blank line.
                while let end = Self.eventEnd(pending) {
                    let event = pending[..<end]
                    pending.removeFirst(end + 2)
                    if event.starts(with: Array("event: snapshot".utf8)) {
                        record.snapshot()
                    } else if let id = Self.alertID(in: event) {
                        record.received(id, at: now)
                    }
                }
            }
        } catch is CancellationError {}
    }

    static func eventEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 0x0A && bytes[i + 1] == 0x0A { return i }
        return nil
    }

    static let alertIDKey = Array(#""alertId":""#.utf8)
    static func alertID(in event: ArraySlice<UInt8>) -> String? {
        let bytes = Array(event)
        guard bytes.count > alertIDKey.count else { return nil }
        for i in 0...(bytes.count - alertIDKey.count) where bytes[i..<(i + alertIDKey.count)].elementsEqual(alertIDKey)
        {
            let start = i + alertIDKey.count
            guard let end = bytes[start...].firstIndex(of: 0x22) else { return nil }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        return nil
    }

    /// The page as a browser loads it (HTML, CSS, script, snapshot), every 200 ms; the load times in ms.
    func loadPages(_ http: HTTPClient, cookie: String) async throws -> [Double] {
        var times: [Double] = []
        while !Task.isCancelled {
            let started = ContinuousClock.now
            for path in ["/", "/board.css", "/board.js", "/api/board"] {
                var request = HTTPClientRequest(url: base + path)
                request.headers.add(name: "Cookie", value: cookie)
                guard let response = try? await http.execute(request, timeout: .seconds(10)) else { return times }
                _ = try? await response.body.collect(upTo: 64 << 20)
            }
            times.append((ContinuousClock.now - started).seconds * 1000)
            try? await Task.sleep(for: .milliseconds(200))
        }
        return times
    }

    /// Publishes at `rate` per second with confirms, noting each alert's publication.
    func publish(_ alerts: [Alert], rate: Double, published: PublicationTimes) throws {
        let publisher = try Publisher(.init(connection: try brokerConnection()))
        defer { publisher.close() }
        let started = ContinuousClock.now
        for (index, alert) in alerts.enumerated() {
            let due = started + .seconds(Double(index) / rate)
            let wait = due - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
            published.note(alert.alertId)
            try publisher.publish(
                OutboundMessage(
                    exchange: topology.alertsExchange,
                    routingKey: SameDayRoutingKey.alert(
                        level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                    body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
            if index % 100 == 99 { try publisher.waitForConfirms(timeout: .seconds(30)) }
        }
        try publisher.waitForConfirms(timeout: .seconds(30))
    }
}
