import Foundation
import RabbitMQ
import SameDayBroker
import SameDayFormats
import SameDayNotify
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Synchronization
import Testing

@testable import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday notify` against the real broker, a real SMTP server (msmtp → aiosmtpd) and a chat API stand-in
/// (scripts/chat-sink.py), all on loopback.
final class NotifyHarness {
    let broker: WorkerHarness
    let smtp: SMTPSink
    let chat: ChatSink
    let folder: String
    var settings: NotifySettings
    /// The person with a Telegram chat besides her e-mail.
    static let chatPerson = "lanhdao.donvi@quan1.hcmc.example"
    static let chatID = "4242"

    init(_ purpose: String) throws {
        broker = try WorkerHarness("notify-" + purpose)
        smtp = try SMTPSink()
        chat = try ChatSink()
        folder = broker.folder
        let token = folder + "/telegram.token"
        try "123456:test-token-for-the-sink\n".write(toFile: token, atomically: true, encoding: .utf8)
        chmod(token, 0o600)
        settings = NotifySettings(from: "SameDay <sameday@hcmc.example>")
        settings.stateDirectory = folder + "/notify"
        settings.metricsListen = ""
        settings.mail = .init(program: "/usr/bin/msmtp", arguments: ["-C", try smtp.msmtpConfiguration()])
        settings.webhooks["tg"] = .init(.telegram(tokenFile: token, base: chat.url), timeout: .seconds(2))
        settings.people[Self.chatPerson] = .init(chats: [.init(webhook: "tg", chatID: Self.chatID)])
        // Short windows, every level at any hour: the tests do not wait for office hours.
        settings.digest = DigestPolicy(
            standard: DigestWindows(groupWait: 1, groupInterval: 2, repeatInterval: 3600),
            anyHour: Set(AlertLevel.allCases))
        settings.retry = RetryPolicy(maxAttempts: 6, baseDelay: 1, maxDelay: 2, maxRetryAfter: 2)
        settings.batchDelayMilliseconds = 50
    }

    func cleanUp() {
        smtp.stop()
        chat.stop()
        if let connection = try? Connection.open(LocalBroker.configuration(name: "notify cleanup")) {
            _ = try? Topology.deleteQueue(queue, on: connection)
            connection.close()
        }
        broker.cleanUp()
    }

    var queue: String { NotifyQueue.name(topology: broker.topology) }

    /// notify.json for a `sameday notify` process with these settings.
    func writeSettingsFile(extra: [String] = []) throws -> String {
        let text = """
            {"from": "\(settings.from)", "stateDirectory": "\(settings.stateDirectory)", "metricsListen": "",
             "mail": {"program": "/usr/bin/msmtp", "arguments": ["-C", "\(try smtp.msmtpConfiguration())"]},
             "webhooks": {"tg": {"kind": "telegram", "tokenFile": "\(folder)/telegram.token", "base": "\(chat.url)",
                                 "timeoutSeconds": 2}},
             "people": {"\(Self.chatPerson)": {"chat": [{"webhook": "tg", "chatId": "\(Self.chatID)"}]}},
             "windows": {"groupWaitSeconds": 1, "groupIntervalSeconds": 2},
             "anyHour": ["warning", "critical", "overdue", "escalated", "cleared", "resolved_late", "source_silent"],
             "retry": {"maxAttempts": 6, "baseDelaySeconds": 1, "maxDelaySeconds": 2, "maxRetryAfterSeconds": 2},
             "batchDelayMilliseconds": 50\(extra.map { ", " + $0 }.joined())}
            """
        let path = folder + "/notify.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Declares the notifier's queue, as the service does at start (so alerts published before it runs wait).
    func declareQueue() throws {
        let connection = try Connection.open(LocalBroker.configuration(name: "notify declare"))
        defer { connection.close() }
        try NotifyQueue.declarations(topology: broker.topology, queue: queue).declare(on: connection)
    }

    func publish(_ alerts: [Alert], raw: [String] = []) throws {
        let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "notify publisher")))
        defer { publisher.close() }
        for alert in alerts {
            try publisher.publish(
                OutboundMessage(
                    exchange: broker.topology.alertsExchange,
                    routingKey: SameDayRoutingKey.alert(
                        level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                    body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
        }
        for body in raw {
            try publisher.publish(
                OutboundMessage(
                    exchange: broker.topology.alertsExchange, routingKey: "warning.commune.26740",
                    body: Array(body.utf8), messageID: "not-an-alert-\(body.count)"))
        }
        try publisher.waitForConfirms(timeout: .seconds(10))
    }

    /// Every (recipient, channel, alert id) found in the sinks, with the Message-ID that carried it.
    func deliveries() throws -> [(recipient: String, channel: String, alertID: String, messageID: String)] {
        var out: [(String, String, String, String)] = []
        for raw in smtp.messages {
            let mail = try StoredMail(raw)
            let to = (mail.header("X-Sink-Rcpt-To") ?? "").trimmingCharacters(in: .whitespaces)
            for id in mail.alertIDs { out.append((to, "email", id, mail.header("Message-ID") ?? "")) }
        }
        for request in chat.requests {
            let ids = (request.headers["X-SameDay-Alerts"] ?? "").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let body = try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
            let chatID = body?["chat_id"] as? String ?? "?"
            for id in ids { out.append((chatID, "chat", id, request.headers["X-SameDay-Message-Id"] ?? "")) }
        }
        return out
    }

    /// What the configuration asks for: each alert × each of its recipients, by e-mail, and by chat for the chat
    /// person.
    func expected(_ alerts: [Alert], domain: Configuration) -> Set<String> {
        let planner = NotifyPlanner(settings: settings, domain: domain)
        var out = Set<String>()
        for alert in alerts {
            for person in planner.recipients(of: alert) ?? [] {
                out.insert("\(person) email \(alert.alertId)")
                if person == Self.chatPerson { out.insert("\(Self.chatID) chat \(alert.alertId)") }
            }
        }
        return out
    }

    /// Waits until the sinks hold `count` deliveries (or the deadline), then a little longer for any extra.
    func waitForDeliveries(_ count: Int, within: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + within
        while try deliveries().count < count {
            if ContinuousClock.now > deadline {
                throw WaitTimedOut(
                    what: "\(count) deliveries in the sinks (have \(try deliveries().count))", after: within)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await Task.sleep(for: .seconds(2))
    }

    /// Runs the notifier in this process until `body` returns.
    func runInProcess<T>(
        domain: Configuration, clock: (any WorkerClock)? = nil, _ body: () async throws -> T
    ) async throws -> T {
        var worker = broker.settings
        worker.clock = .wall
        let service = NotifyService(configuration: worker, settings: settings, domain: domain, clock: clock)
        let stop = StopFlag()
        async let run: Void = BlockingThread.run(name: "test notify") { try service.run(until: stop) }
        do {
            let result = try await body()
            stop.request()
            try await run
            return result
        } catch {
            stop.request()
            try? await run
            throw error
        }
    }
}

/// Alerts of District 1 (760) and its ward Bến Nghé (26740), and of Tân Định (26734) and District 12 (761).
func notifyAlerts(_ count: Int, firstDossier: Int = 1, at firedAt: String = "2022-05-18T15:30:00+07:00") -> [Alert] {
    let units: [(String, Block)] = [("760", .district), ("26740", .commune), ("26734", .commune), ("761", .district)]
    let levels: [AlertLevel] = [.warning, .critical, .overdue, .escalated]
    return (0..<count).map { i in
        let (unit, block) = units[i % units.count]
        let level = levels[(i / units.count) % levels.count]
        let dossier = "\(unit)-220518-\(String(format: "%04d", firstDossier + i))"
        let t = RFC3339.parse(firedAt)!
        return Alert(
            alertId: Alert.id(subject: dossier, episode: 1, level: level), level: level, dossier: dossier, unit: unit,
            block: block, procedure: "2.000815.000.00.00.H29", episode: 1, due: t + 5400, firedAt: t, thresholdAt: t,
            minutesLeft: level == .escalated || level == .overdue ? -10 : 30, recipients: [], lateFired: false)
    }
}

@Suite(
    "sameday notify against the real broker, an SMTP server and a chat API on loopback",
    .serialized, .needs(.rabbitMQ), .needs(.msmtp, .aiosmtpd))
struct NotifyServiceTests {
    let base = try! ConfigurationFolder.load(hcmcConfiguration)
    /// With parentRoles: a district's head also gets her wards' alerts of the levels that go to unit_head.
    var domain: Configuration {
        var policy = base.alerting
        policy.parentRoles = [.unitHead]
        return Configuration(
            units: base.units, catalog: base.catalog, calendars: base.calendarDefinitions, alerting: policy,
            interlevel: base.interlevel)
    }

    func key(_ d: (recipient: String, channel: String, alertID: String, messageID: String)) -> String {
        "\(d.recipient) \(d.channel) \(d.alertID)"
    }

    @Test(
        "each person receives exactly the alerts of her units, grouped, by e-mail and chat; bad alerts are dead-lettered"
    )
    func exactlyHerAlerts() async throws {
        let h = try NotifyHarness("exact")
        defer { h.cleanUp() }
        let alerts = notifyAlerts(40)
        let expected = h.expected(alerts, domain: domain)
        #expect(
            expected.contains("\(NotifyHarness.chatPerson) email \(alerts[1].alertId)") == false,
            "a ward's warning does not go to the district's head")
        #expect(
            expected.contains { $0.hasPrefix(NotifyHarness.chatPerson) && $0.hasSuffix(alerts[9].alertId) },
            "the ward's overdue dossier goes to the district's head (parentRoles)")
        try h.declareQueue()
        try h.publish(alerts, raw: ["{not json", #"{"alertId":"x","level":"warning","unit":"99999"}"#])
        try await h.runInProcess(domain: domain) {
            try await h.waitForDeliveries(expected.count)
        }
        let found = try h.deliveries()
        #expect(Set(found.map(key)) == expected)
        #expect(found.count == expected.count, "no delivery twice")
        // Grouped: everything arrived within one window, so one e-mail per person.
        let people = Set(expected.compactMap { $0.contains(" email ") ? $0.split(separator: " ")[0] : nil })
        #expect(h.smtp.messages.count == people.count)
        #expect(h.chat.requests.count == 1)
        let dead = try h.broker.drain(h.broker.topology.deadLetterQueue)
        #expect(dead.count == 2, "the two deliveries that are not alerts of a known unit")
    }

    @Test("a message held outside working hours goes out when the next session starts")
    func heldUntilMonday() async throws {
        let h = try NotifyHarness("held")
        defer { h.cleanUp() }
        h.settings.digest.anyHour = [.escalated]
        let clock = StepClock(RFC3339.parse("2022-05-20T18:00:00+07:00")!)
        let alerts = notifyAlerts(1, at: "2022-05-20T17:59:00+07:00")  // a warning of District 1, Friday evening
        try h.declareQueue()
        try h.publish(alerts)
        try await h.runInProcess(domain: domain, clock: clock) {
            try await Task.sleep(for: .seconds(4))
            #expect(h.smtp.messages.isEmpty, "held over the weekend")
            clock.set("2022-05-22T12:00:00+07:00")
            try await Task.sleep(for: .seconds(2))
            #expect(h.smtp.messages.isEmpty, "Sunday is no working day")
            clock.set("2022-05-23T07:30:00+07:00")
            try await h.waitForDeliveries(h.expected(alerts, domain: domain).count, within: .seconds(30))
        }
        let mail = try StoredMail(try #require(h.smtp.messages.first))
        #expect(mail.parts["text/plain"]?.contains("Thông báo được giữ lại ngoài giờ làm việc từ 20/05/2022") == true)
    }

    @Test("a chat API that hangs, then answers 500 and 429: the message is delivered once, after retries")
    func chatTimesOut() async throws {
        let h = try NotifyHarness("chat")
        defer { h.cleanUp() }
        try h.chat.script(["hang", "500", "429"])
        let alerts = notifyAlerts(1).map { alert -> Alert in
            var a = alert
            a.level = .overdue  // District 1's overdue dossier: its head gets it by chat too
            a.alertId = Alert.id(subject: a.dossier, episode: 1, level: .overdue)
            return a
        }
        let expected = h.expected(alerts, domain: domain)
        #expect(expected.contains("\(NotifyHarness.chatID) chat \(alerts[0].alertId)"))
        try h.declareQueue()
        try h.publish(alerts)
        try await h.runInProcess(domain: domain) {
            try await h.waitForDeliveries(expected.count, within: .seconds(60))
        }
        let found = try h.deliveries()
        #expect(Set(found.map(key)) == expected)
        #expect(found.count == expected.count)
        #expect(h.chat.requests.count == 1, "the answered request is the only one kept")
        let store = try NotifyStore(path: h.settings.databasePath)
        #expect(try store.failedMessages().isEmpty)
    }

    @Test("a refused address goes to the failed outbox; `notify failed list` shows it and `failed retry` sends it")
    func failedOutbox() async throws {
        let h = try NotifyHarness("failed")
        defer { h.cleanUp() }
        let alerts = notifyAlerts(1)  // a warning of District 1: its specialists
        let refused = "chuyenvien.tthc@quan1.hcmc.example"
        try h.smtp.refuse(["550 \(refused)"])
        let expected = h.expected(alerts, domain: domain)
        try h.declareQueue()
        try h.publish(alerts)
        let settingsFile = try h.writeSettingsFile()
        try await h.runInProcess(domain: domain) {
            try await h.waitForDeliveries(expected.count - 1)
            let list = try runSameday(["notify", "failed", "list", "--notify", settingsFile])
            #expect(list.status == 0)
            #expect(list.output.contains(refused) && list.output.contains("email"), "\(list.output)")
            #expect(list.output.contains("550"), "the MTA's words are the reason: \(list.output)")
            try h.smtp.refuse([])
            let retry = try runSameday(["notify", "failed", "retry", "--notify", settingsFile])
            #expect(retry.output.contains("1 message put back in line"), "\(retry.output)")
            try await h.waitForDeliveries(expected.count)
        }
        #expect(Set(try h.deliveries().map(key)) == expected)
        let list = try runSameday(["notify", "failed", "list", "--notify", settingsFile])
        #expect(list.output.contains("no failed messages"))
    }

    @Test("the daily summary goes out at its time, with the day's figures from the rollup files and what is overdue")
    func dailySummary() async throws {
        let h = try NotifyHarness("summary")
        defer { h.cleanUp() }
        // Three dossiers received by Bến Nghé that day, into rollup files by `sameday replay`.
        let lines = (1...3).map { n in
            #"{"schema":"sameday.dossier-event/1","eventId":"26740-220518-100\#(n)-received","#
                + #""dossier":"26740-220518-100\#(n)","unit":"26740","procedure":"2.000815.000.00.00.H29","#
                + #""type":"received","occurredAt":"2022-05-18T09:0\#(n):00+07:00","channel":"direct","source":"test"}"#
        }
        let eventsFile = h.folder + "/events.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: eventsFile, atomically: true, encoding: .utf8)
        let replay = try runSameday([
            "replay", "--config", hcmcConfiguration, "--events", eventsFile, "--out", h.folder + "/replay",
        ])
        #expect(replay.status == 0, "\(replay.output)")
        h.settings.dailySummary = .init(secondsOfDay: 16 * 3600 + 30 * 60, rollups: [h.folder + "/replay/rollups"])
        var overdue = notifyAlerts(2)[1]  // Bến Nghé's
        overdue.level = .overdue
        overdue.alertId = Alert.id(subject: overdue.dossier, episode: 1, level: .overdue)
        let clock = StepClock(RFC3339.parse("2022-05-18T16:00:00+07:00")!)
        try h.declareQueue()
        try h.publish([overdue])
        let specialist = "chuyenvien.tthc@phuong-bennghe.quan1.hcmc.example"
        func summaries() throws -> [StoredMail] {
            try h.smtp.messages.map(StoredMail.init).filter {
                $0.subject?.contains("tổng hợp ngày 18/05/2022") == true
                    && $0.header("X-Sink-Rcpt-To")?.contains(specialist) == true
            }
        }
        try await h.runInProcess(domain: domain, clock: clock) {
            try await Task.sleep(for: .seconds(2))
            clock.set("2022-05-18T16:31:00+07:00")
            let deadline = ContinuousClock.now + .seconds(40)
            while try summaries().isEmpty && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        let summary = try #require(try summaries().first, "the ward specialist's summary")
        let text = try #require(summary.parts["text/plain"])
        #expect(text.contains("Phường Bến Nghé: tiếp nhận 3 hồ sơ giải quyết trong ngày"), "\(text)")
        #expect(text.contains("Hồ sơ \(overdue.dossier)"), "the overdue dossier is named: \(text)")
        #expect(try summaries().count == 1, "one summary a day")
    }

    @Test("as the `notify` broker user, with its least privileges, the notifier declares, binds and consumes its queue")
    func leastPrivilege() async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let vhost = "test.notify.\(tag)"
        let user = "notify-\(tag)"
        let password = "pw-\(UUID().uuidString)"
        let topology = SameDayTopology(shards: 1)
        let users = SameDayBrokerUsers(
            unitSystems: [], supervisors: [], topology: topology, worker: nil, receiver: nil, notify: user)
        let h = try NotifyHarness("privilege")
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
        let service = NotifyService(configuration: worker, settings: h.settings, domain: domain)
        let stop = StopFlag()
        async let run: Void = BlockingThread.run(name: "test notify") { try service.run(until: stop) }
        let alerts = notifyAlerts(4)
        let expected = h.expected(alerts, domain: domain)
        var operatorLogin = LocalBroker.configuration(name: "notify privilege operator")
        operatorLogin.brokers[0].virtualHost = vhost
        do {
            // Published once the notifier has declared and bound its queue.
            let deadline = ContinuousClock.now + .seconds(30)
            while service.metrics.value(.ready) != 1 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(service.metrics.value(.ready) == 1, "the notifier consumes its queue as its own user")
            let publisher = try Publisher(.init(connection: operatorLogin))
            for alert in alerts {
                try publisher.publish(
                    OutboundMessage(
                        exchange: topology.alertsExchange,
                        routingKey: SameDayRoutingKey.alert(
                            level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                        body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
            }
            try publisher.waitForConfirms(timeout: .seconds(10))
            publisher.close()
            try await h.waitForDeliveries(expected.count, within: .seconds(30))
        } catch {
            stop.request()
            try? await run
            throw error
        }
        stop.request()
        try await run
        #expect(Set(try h.deliveries().map(key)) == expected)
    }

    @Test("SIGKILLed mid-run and restarted, `sameday notify` leaves every person with every alert once")
    func killed() async throws {
        let h = try NotifyHarness("killed")
        defer { h.cleanUp() }
        let settingsFile = try h.writeSettingsFile()
        let alerts = notifyAlerts(400)
        let expected = h.expected(alerts, domain: base)
        try h.declareQueue()
        func start() throws -> Process {
            let process = Process()
            process.executableURL = try samedayExecutable()
            process.arguments = ["notify", "--notify", settingsFile, "--log-level", "warning"]
            var environment = ProcessInfo.processInfo.environment.merging(h.broker.environment) { $1 }
            environment["SAMEDAY_CLOCK"] = "wall"
            process.environment = environment
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            return process
        }
        var notify = try start()
        // Alerts keep coming while the notifier is killed: some wait in its queue, some are owed in its store.
        try h.publish(Array(alerts[..<200]))
        try await Task.sleep(for: .milliseconds(2500))
        kill(notify.processIdentifier, SIGKILL)
        notify.waitUntilExit()
        try h.publish(Array(alerts[200...]))
        notify = try start()
        defer {
            kill(notify.processIdentifier, SIGTERM)
            notify.waitUntilExit()
        }
        try await h.waitForDeliveries(expected.count, within: .seconds(90))
        let found = try h.deliveries()
        #expect(Set(found.map(key)) == expected, "every alert reached every one of its people")
        // A message handed over and killed before it was marked is sent again with its own Message-ID: the same
        // message, which mail clients show once. Anything else twice is a duplicate.
        var messageIDs: [String: Set<String>] = [:]
        for d in found { messageIDs[key(d), default: []].insert(d.messageID) }
        #expect(messageIDs.values.allSatisfy { $0.count == 1 }, "no alert in two different messages to one person")
    }
}
