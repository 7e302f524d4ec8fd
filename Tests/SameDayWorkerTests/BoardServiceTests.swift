import Foundation
import RabbitMQ
import SameDayBoard
import SameDayBroker
import SameDayFormats
import SameDayTestKit
import SameDayWorker
import Testing

@testable import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `sameday board` as a process: against the real broker, with its state folder and its password file, on a port
/// of its own on loopback.
final class BoardHarness {
    let broker: WorkerHarness
    let folder: String
    let port: Int
    let settingsFile: String
    var process: Process?
    /// Sessions by person, for the running board (a restart asks everyone to log in again).
    private var cookies: [String: String] = [:]
    static let password = "mật khẩu của quận 1"

    /// District 1's office head, and the departments' (Sở Y tế is a department).
    static let district1 = "lanhdao.phong@quan1.hcmc.example"
    static let departments = "lanhdao.phong@khoi-soban.hcmc.example"
    /// Sees every district (escalations go to her): the widest view, for the restart test.
    static let districts = "kiemsoat.tthc.khoi-quanhuyen@sonoivu.hcmc.example"

    init(_ purpose: String, alertFolders: [String] = []) throws {
        broker = try WorkerHarness("board-" + purpose)
        folder = broker.folder
        port = unusedLoopbackPort()
        var lines: [String] = []
        for person in [Self.district1, Self.departments, Self.districts] {
            lines.append(try Self.passwordLine(person: person, password: Self.password))
        }
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: folder + "/board.passwords", atomically: true, encoding: .utf8)
        let folders = alertFolders.map { "\"\($0)\"" }.joined(separator: ", ")
        settingsFile = folder + "/board.json"
        try """
        {"listen": "127.0.0.1:\(port)", "passwordsFile": "\(folder)/board.passwords",
         "stateDirectory": "\(folder)/board", "metricsListen": "", "alertFolders": [\(folders)]}
        """.write(toFile: settingsFile, atomically: true, encoding: .utf8)
    }

    /// The password file's line, from `sameday board password` (the command an operator runs), at bcrypt's least
    /// cost so the tests stay quick.
    static func passwordLine(person: String, password: String) throws -> String {
        let process = Process()
        process.executableURL = try samedayExecutable()
        process.arguments = ["board", "password", person, "--cost", "4"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data((password + "\n").utf8))
        try input.fileHandleForWriting.close()
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw WaitTimedOut(what: "sameday board password", after: .zero) }
        return line.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var url: String { "http://127.0.0.1:\(port)" }
    var queue: String { BoardQueue.name(topology: broker.topology) }

    /// Starts the board and waits until it serves and consumes.
    func start() async throws {
        let process = Process()
        process.executableURL = try samedayExecutable()
        process.arguments = ["board", "--board", settingsFile, "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment.merging(broker.environment) { $1 }
        environment["SAMEDAY_CLOCK"] = "wall"
        process.environment = environment
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        self.process = process
        cookies = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if try await status("/login") == 200, consuming() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WaitTimedOut(what: "sameday board serving and consuming", after: .seconds(30))
    }

    private func consuming() -> Bool {
        guard let out = try? LocalBroker.rabbitmqctl(["list_queues", "name", "consumers"]) else { return false }
        return out.split(separator: "\n").contains { $0.hasPrefix(queue + "\t") && !$0.hasSuffix("\t0") }
    }

    func stop(signal: Int32 = SIGTERM) {
        guard let process else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        self.process = nil
    }

    func cleanUp() {
        stop()
        if let connection = try? Connection.open(LocalBroker.configuration(name: "board cleanup")) {
            _ = try? Topology.deleteQueue(queue, on: connection)
            connection.close()
        }
        broker.cleanUp()
    }

    func status(_ path: String, cookie: String? = nil) async throws -> Int {
        try await request(path, cookie: cookie).status
    }

    func request(_ path: String, cookie: String? = nil, method: String = "GET", body: String? = nil) async throws
        -> (status: Int, body: String, setCookie: String?)
    {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        if let cookie { request.setValue("sameday_board=\(cookie)", forHTTPHeaderField: "Cookie") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        }
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        do {
            let (data, response) = try await session.data(for: request)
            let http = response as! HTTPURLResponse
            return (
                http.statusCode, String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Set-Cookie")
            )
        } catch {
            return (0, "\(error)", nil)
        }
    }

    /// A session of `person`.
    func login(_ person: String) async throws -> String {
        let form =
            "person=\(person.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password="
            + Self.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let answer = try await request("/login", method: "POST", body: form)
        guard answer.status == 303, let cookie = answer.setCookie?.split(separator: ";").first else {
            throw WaitTimedOut(what: "a session for \(person) (status \(answer.status))", after: .zero)
        }
        return String(cookie.dropFirst("sameday_board=".count))
    }

    /// The dossiers on `person`'s board now.
    func dossiers(of person: String) async throws -> Set<String> {
        let cookie: String
        if let known = cookies[person] {
            cookie = known
        } else {
            cookie = try await login(person)
            cookies[person] = cookie
        }
        let body = try await request("/api/board", cookie: cookie).body
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let entries = json?["entries"] as? [[String: Any]] ?? []
        return Set(entries.compactMap { $0["dossier"] as? String })
    }

    func publish(_ alerts: [Alert]) throws {
        let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "board publisher")))
        defer { publisher.close() }
        for alert in alerts {
            try publisher.publish(
                OutboundMessage(
                    exchange: broker.topology.alertsExchange,
                    routingKey: SameDayRoutingKey.alert(
                        level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                    body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
        }
        try publisher.waitForConfirms(timeout: .seconds(10))
    }

    /// One message as scripts/board-browser-check.py publishes it.
    func message(_ alert: Alert) -> [String: String] {
        [
            "routingKey": SameDayRoutingKey.alert(
                level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
            "body": alert.jsonLine(), "dossier": alert.dossier,
        ]
    }
}

/// The login's 303 is what the tests look at: not followed.
private final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) { completionHandler(nil) }
}

/// A board alert on the wall clock: fired now, due in `dueMinutes`.
func liveAlert(
    _ level: AlertLevel, _ dossier: String, unit: String, block: Block, procedure: String = "1.001612",
    episode: Int = 1, dueMinutes: Int64 = 120, firedAfter: Int64 = 0
) -> Alert {
    let now = Instant(Date().timeIntervalSince1970) + firedAfter
    return Alert(
        alertId: Alert.id(subject: dossier, episode: episode, level: level), level: level, dossier: dossier,
        unit: unit, block: block, procedure: procedure, episode: episode, due: now + dueMinutes * 60, firedAt: now,
        thresholdAt: now, minutesLeft: Int(dueMinutes), recipients: [], lateFired: false, receivedAt: now - 3 * 3600)
}

@Suite("sameday board: the live page against the real broker", .serialized, .needs(.rabbitMQ))
struct BoardServiceTests {
    @Test(
        "in headless Chromium, District 1's supervisor sees her alert within 2 s, sees it leave on cleared, and is refused Sở Y tế's",
        .needs(.browser))
    func browser() async throws {
        let h = try BoardHarness("browser")
        defer { h.cleanUp() }
        try await h.start()
        let spec: [String: Any] = [
            "amqp": LocalBroker.url.description.replacingOccurrences(of: "guest@", with: "guest:guest@"),
            "exchange": h.broker.topology.alertsExchange,
            "open": h.message(liveAlert(.warning, "000.00.41.H29-221205-0001", unit: "760", block: .district)),
            "other": h.message(
                liveAlert(.critical, "000.00.18.H29-221205-0042", unit: "000.00.18.H29", block: .department)),
            "cleared": h.message(
                liveAlert(.cleared, "000.00.41.H29-221205-0001", unit: "760", block: .district, firedAfter: 1)),
            "extras": [
                h.message(
                    liveAlert(.overdue, "000.00.41.H29-221205-0007", unit: "760", block: .district, dueMinutes: -25)),
                h.message(
                    liveAlert(.critical, "000.00.41.H29-221205-0011", unit: "760", block: .district, dueMinutes: 40)),
            ],
        ]
        let specFile = h.folder + "/alerts.json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specFile))
        let shots = h.folder + "/shots"
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        check.arguments = [
            repositoryRoot.appendingPathComponent("scripts/board-browser-check.py").path, "--url", h.url,
            "--person", BoardHarness.district1, "--password", BoardHarness.password, "--alerts", specFile,
            "--max-seconds", "2", "--screenshots", shots,
        ]
        let output = Pipe()
        check.standardOutput = output
        try check.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "scripts/board-browser-check.py: \(text)")
        let result = try JSONSerialization.jsonObject(with: Data((text.split(separator: "\n").last ?? "{}").utf8))
        let fields = result as? [String: Any] ?? [:]
        #expect(fields["ok"] as? Bool == true)
        #expect((fields["appeared_s"] as? Double ?? 99) <= 2.0)
        #expect(fields["other_unit_status"] as? Int == 404)
        for name in ["board-desktop.png", "board-phone.png"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: shots + "/" + name)[.size] as? Int) ?? 0
            #expect(size > 10_000, "\(name) was taken")
        }
    }

    @Test(
        "SIGKILLed and restarted, the board shows exactly the open alerts: its state file, its queue and the alert files"
    )
    func restart() async throws {
        // An alert file of the workers, from before the board's queue existed.
        let files = temporaryFolder("board-alert-files")
        defer { try? FileManager.default.removeItem(atPath: files) }
        let before = [
            liveAlert(.overdue, "Q12-OLD-1", unit: "761", block: .district, dueMinutes: -60),
            liveAlert(.warning, "Q12-OLD-2", unit: "761", block: .district),
        ]
        let day = LocalDate(dayNumber: LocalTime.day(of: before[0].firedAt))
        try (before.map { $0.jsonLine() }.joined(separator: "\n") + "\n").write(
            toFile: AlertFiles.path(folder: files, day: "\(day)"), atomically: true, encoding: .utf8)

        let h = try BoardHarness("restart", alertFolders: [files])
        defer { h.cleanUp() }
        try await h.start()
        var alerts: [Alert] = []
        for i in 0..<300 {
            let unit = ["760", "761", "764", "769"][i % 4]
            alerts.append(liveAlert(.warning, "D-\(i)", unit: unit, block: .district))
            if i % 3 == 0 { alerts.append(liveAlert(.critical, "D-\(i)", unit: unit, block: .district, firedAfter: 1)) }
            if i % 5 == 0 { alerts.append(liveAlert(.cleared, "D-\(i)", unit: unit, block: .district, firedAfter: 2)) }
        }
        try h.publish(Array(alerts[..<200]))
        try await Task.sleep(for: .milliseconds(300))
        h.stop(signal: SIGKILL)
        // Published while the board is down: they wait in its queue.
        try h.publish(Array(alerts[200...]))
        try await h.start()
        var expected = BoardView()
        for alert in before + alerts { _ = expected.apply(alert) }
        let want = Set(expected.entries.keys)
        let deadline = ContinuousClock.now + .seconds(20)
        var shown = try await h.dossiers(of: BoardHarness.districts)
        while shown != want, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            shown = try await h.dossiers(of: BoardHarness.districts)
        }
        #expect(
            shown == want,
            "missing \(want.subtracting(shown).sorted().prefix(5)), extra \(shown.subtracting(want).sorted().prefix(5))"
        )
        #expect(shown.contains("Q12-OLD-1"), "the alert files were read at start")
        // District 1's office head sees District 1's dossiers only.
        let district1 = try await h.dossiers(of: BoardHarness.district1)
        #expect(district1 == Set(expected.entries.values.filter { $0.unit == "760" }.map(\.dossier)))
        // The same again after a graceful stop: the state file alone rebuilds it (nothing left in the queue).
        h.stop()
        try FileManager.default.removeItem(atPath: files)
        try await h.start()
        #expect(try await h.dossiers(of: BoardHarness.districts) == want)
    }

    @Test("the board broker user may declare, bind and read its queue: enough to serve, on a throwaway vhost")
    func leastPrivilege() async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let vhost = "test.board.\(tag)"
        let user = "board-\(tag)"
        let password = "pw-\(UUID().uuidString)"
        let topology = SameDayTopology(shards: 1)
        let users = SameDayBrokerUsers(
            unitSystems: [], supervisors: [], topology: topology, worker: nil, receiver: nil, notify: nil, board: user)
        let h = try BoardHarness("privilege")
        defer {
            h.cleanUp()
            _ = try? LocalBroker.rabbitmqctl(["delete_user", user])
            _ = try? LocalBroker.rabbitmqctl(["delete_vhost", vhost])
        }
        let file = h.folder + "/definitions.json"
        try users.definitionsJSON(
            mergedWith: topology.topology.definitionsJSON(virtualHost: vhost), virtualHost: vhost,
            passwordHashes: [user: RabbitPasswordHash.make(password: password)]
        ).write(to: URL(fileURLWithPath: file))
        try LocalBroker.rabbitmqctl(["import_definitions", file])
        try LocalBroker.rabbitmqctl(["set_permissions", "-p", vhost, LocalBroker.url.user, ".*", ".*", ".*"])
        var worker = h.broker.settings
        worker.namePrefix = ""
        worker.clock = .wall
        worker.brokers = ["amqp://\(user):\(password)@\(LocalBroker.url.host):\(LocalBroker.url.port)/\(vhost)"]
        var settings = BoardSettings()
        settings.stateDirectory = h.folder + "/privilege-state"
        settings.metricsListen = ""
        let domain = try ConfigurationFolder.load(hcmcConfiguration)
        let service = BoardService(configuration: worker, settings: settings, domain: domain)
        let stop = StopFlag()
        async let run: Void = BlockingThread.run(name: "test board") { try service.run(until: stop) }
        var operatorLogin = LocalBroker.configuration(name: "board privilege operator")
        operatorLogin.brokers[0].virtualHost = vhost
        do {
            let deadline = ContinuousClock.now + .seconds(30)
            while service.metrics.value(.ready) != 1 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(service.metrics.value(.ready) == 1, "the board consumes its queue as its own user")
            let alerts = (0..<5).map { liveAlert(.warning, "P-\($0)", unit: "760", block: .district) }
            let publisher = try Publisher(.init(connection: operatorLogin))
            for alert in alerts {
                try publisher.publish(
                    OutboundMessage(
                        exchange: topology.alertsExchange,
                        routingKey: SameDayRoutingKey.alert(
                            level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                        body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
            }
            // Not an alert: dead-lettered by its queue, which the board user's rights allow.
            try publisher.publish(
                OutboundMessage(
                    exchange: topology.alertsExchange, routingKey: "warning.district.760", body: Array("{}".utf8),
                    messageID: "not-an-alert"))
            try publisher.waitForConfirms(timeout: .seconds(10))
            publisher.close()
            let shown = ContinuousClock.now + .seconds(20)
            while service.hub.entryCount < alerts.count && ContinuousClock.now < shown {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(service.hub.entryCount == alerts.count)
        } catch {
            stop.request()
            try? await run
            throw error
        }
        stop.request()
        try await run
        #expect(service.metrics.value(.boardRefusalsTotal, "invalid_alert") == 1)
        // The broker's queue counts lag a little behind the dead-lettering.
        var dead = ""
        let counted = ContinuousClock.now + .seconds(15)
        repeat {
            dead = try LocalBroker.rabbitmqctl(["list_queues", "-p", vhost, "name", "messages"])
            if dead.split(separator: "\n").contains(where: { $0 == "\(topology.deadLetterQueue)\t1" }) { break }
            try await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < counted
        #expect(
            dead.split(separator: "\n").contains { $0 == "\(topology.deadLetterQueue)\t1" },
            "the delivery that is not an alert is in sameday.dead: \(dead)")
    }
}
