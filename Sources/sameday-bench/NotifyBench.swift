import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayNotify

#if canImport(Glibc)
    import Glibc
#endif

/// `sameday-bench notify`: the alert stream of the seed's month (`simulate --scenario realistic`, through `replay`)
/// published to `sameday.alerts` at a steady rate, through a `sameday notify` process to an SMTP server (msmtp →
/// scripts/smtp-sink.py) and a chat API stand-in (scripts/chat-sink.py) on loopback. Mid-run the notifier is
/// SIGKILLed and started again. One JSON line:
///
/// - `deliveries_expected`: (alert, person, channel) triples the configuration asks for, for alerts at risk
///   (`warning` … `escalated`); `deliveries`: those found in the sinks; `superseded`: those not named because a newer
///   alert of the same dossier was owed to the same person in the same window (the digest rules: one line per
///   dossier, at its newest level); `missing` = expected − found − superseded;
/// - `duplicates`: triples found in two messages with different Message-IDs; `resent_same_message`: a message
///   handed over and then sent again after the kill, with its own Message-ID (the same message to a mail client);
/// - `messages_per_1000_alerts`: messages sent (e-mails and chat posts) per 1,000 alerts published;
/// - `p50_delay_s`, `p99_delay_s`: from an alert's publication to its delivery (the sink's file time), less the
///   configured group wait (the run's windows are `--group-wait` both to gather and between messages, every level
///   at any hour); the kill is inside the run, so its restart is in the tail; `p99_delay_away_from_kill_s` leaves
///   out the alerts published within 10 s of the kill;
/// - `alerts_per_cpu_s`: alerts handled per CPU second of the notifier itself (its sendmail children apart), against
///   `ten_times_seed_peak_per_s`, ten times the month's busiest hour at the seed's full volume: `keeps_up`.
///
/// Exits 1 unless `duplicates` and `missing` are 0.
struct NotifyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "The month's alerts through sameday notify to local mail and chat sinks, killed once (one JSON line)."
    )

    @Option(help: "Share of the seed's month (realistic scenario).") var scale = 0.1
    @Option(help: "Alerts published per second.") var rate = 400.0
    @Option(help: "Publish only the first N alerts of the month (0: all).") var limit = 0
    @Option(help: "Seconds a group waits, and between two messages to one person.") var groupWait = 2
    @Option(help: "The sameday binary (default: beside this one).") var sameday: String?
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (the local broker's administrator).") var url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    @Flag(help: "Keep the work folder.") var keep = false

    func validate() throws {
        guard scale > 0, scale <= 1 else { throw ValidationError("--scale must be in (0, 1]") }
        guard rate > 0 else { throw ValidationError("--rate must be positive") }
        guard (1...60).contains(groupWait) else { throw ValidationError("--group-wait must be 1…60") }
    }

    func run() throws {
        let domain = try ConfigurationFolder.load(config)
        var events: [DossierEvent] = []
        _ = try SeedMonth(scenario: .realistic, scale: scale, seed: 1).generate(config: domain) { events.append($0) }
        var alerts = try Replay.run(events: events, config: domain, options: ReplayOptions()).alerts
        events = []
        alerts.sort { ($0.firedAt, $0.alertId) < ($1.firedAt, $1.alertId) }
        let peak = Self.busiestHour(alerts) / scale / 3600 * 10
        if limit > 0 { alerts = Array(alerts.prefix(limit)) }

        let folder = NSTemporaryDirectory() + "sameday-bench-notify-\(getpid())"
        let run = try NotifyRun(
            folder: folder, domain: domain, config: config, url: url, groupWait: groupWait,
            sameday: sameday
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sameday").path)
        var passed = false
        defer { run.cleanUp(removeFolder: passed && !keep) }
        var result = try run.measure(alerts, rate: rate)
        result["scale"] = scale
        result["ten_times_seed_peak_per_s"] = (peak * 10).rounded() / 10
        let capacity = result["alerts_per_cpu_s"] as? Double ?? 0
        result["keeps_up"] = capacity >= peak
        print(try jsonLine(result))
        passed = (result["duplicates"] as? Int) == 0 && (result["missing"] as? Int) == 0
        if !passed { throw ExitCode.failure }
    }

    /// The most alerts fired within one clock hour.
    static func busiestHour(_ alerts: [Alert]) -> Double {
        var perHour: [Int64: Int] = [:]
        for alert in alerts { perHour[alert.firedAt / 3600, default: 0] += 1 }
        return Double(perHour.values.max() ?? 0)
    }
}

/// One run: the sinks, the notifier process, the broker names it uses.
final class NotifyRun {
    let folder: String
    let domain: Configuration
    let config: String
    let url: String
    let groupWait: Int
    let sameday: String
    let prefix = "bench.notify.\(getpid())."
    let chatPerson = "lanhdao.phong@quan1.hcmc.example"
    var smtp: ChildProcess?
    var chat: ChildProcess?
    var notify: ChildProcess?
    var settings: NotifySettings

    init(folder: String, domain: Configuration, config: String, url: String, groupWait: Int, sameday: String) throws {
        self.folder = folder
        self.domain = domain
        self.config = config
        self.url = url
        self.groupWait = groupWait
        self.sameday = sameday
        try FileManager.default.createDirectory(atPath: folder + "/mail", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/chat", withIntermediateDirectories: true)
        settings = NotifySettings(from: "SameDay <sameday@hcmc.example>")
        settings.digest = DigestPolicy(
            standard: DigestWindows(groupWait: Int64(groupWait), groupInterval: Int64(groupWait), repeatInterval: 3600),
            anyHour: Set(AlertLevel.allCases))
        settings.webhooks["chat"] = .init(.generic(url: "http://127.0.0.1:1/"))
        settings.people[chatPerson] = .init(chats: [.init(webhook: "chat", chatID: "q1-office")])
    }

    var topology: SameDayTopology { SameDayTopology(shards: 1, namePrefix: prefix) }

    func cleanUp(removeFolder: Bool) {
        for process in [notify, smtp, chat].compactMap({ $0 }) {
            process.kill(SIGTERM)
            process.wait()
        }
        if let connection = try? Connection.open(try brokerConnection()) {
            _ = try? Topology.deleteQueue(NotifyQueue.name(topology: topology), on: connection)
            try? topology.topology.delete(on: connection)
            connection.close()
        }
        if removeFolder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func brokerConnection() throws -> ConnectionConfiguration {
        ConnectionConfiguration(brokers: [try BrokerURL(parsing: url)], connectionName: "sameday-bench notify")
    }

    /// Starts a sink script and returns the port it wrote.
    func startSink(_ script: String, in sub: String) throws -> (ChildProcess, Int) {
        let process = try ChildProcess(
            ["/usr/bin/python3", "scripts/" + script, "--dir", folder + "/" + sub, "--lifetime", "7200"],
            output: folder + "/\(sub).log")
        for _ in 0..<500 {
            if let text = try? String(contentsOfFile: folder + "/\(sub)/port", encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return (process, port)
            }
            usleep(20_000)
        }
        throw ValidationError("\(script) did not start (\(folder)/\(sub).log)")
    }

    func writeSettings(smtpPort: Int, chatPort: Int) throws -> String {
        let msmtp = folder + "/msmtp.conf"
        try """
        defaults
        syslog off
        account sink
        host 127.0.0.1
        port \(smtpPort)
        tls off
        auth off
        from sameday@hcmc.example
        account default : sink

        """.write(toFile: msmtp, atomically: true, encoding: .utf8)
        let path = folder + "/notify.json"
        let levels = AlertLevel.allCases.map { "\"\($0.name)\"" }.joined(separator: ", ")
        try """
        {"from": "SameDay <sameday@hcmc.example>", "stateDirectory": "\(folder)/state", "metricsListen": "",
         "mail": {"program": "/usr/bin/msmtp", "arguments": ["-C", "\(msmtp)"]},
         "webhooks": {"chat": {"kind": "generic", "url": "http://127.0.0.1:\(chatPort)/hook", "timeoutSeconds": 5}},
         "people": {"\(chatPerson)": {"chat": [{"webhook": "chat", "chatId": "q1-office"}]}},
         "windows": {"groupWaitSeconds": \(groupWait), "groupIntervalSeconds": \(groupWait)},
         "anyHour": [\(levels)],
         "retry": {"maxAttempts": 8, "baseDelaySeconds": 1, "maxDelaySeconds": 4}}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func startNotify(_ settingsFile: String, log: String) throws -> ChildProcess {
        try ChildProcess(
            [sameday, "notify", "--notify", settingsFile, "--log-level", "warning"],
            environment: [
                "SAMEDAY_AMQP_URL": url, "SAMEDAY_NAME_PREFIX": prefix, "SAMEDAY_DOMAIN_CONFIG": config,
                "SAMEDAY_CLOCK": "wall", "SAMEDAY_METRICS_LISTEN": "",
            ], output: folder + "/" + log)
    }

    func measure(_ alerts: [Alert], rate: Double) throws -> [String: Any] {
        let (smtpProcess, smtpPort) = try startSink("smtp-sink.py", in: "mail")
        smtp = smtpProcess
        let (chatProcess, chatPort) = try startSink("chat-sink.py", in: "chat")
        chat = chatProcess
        let settingsFile = try writeSettings(smtpPort: smtpPort, chatPort: chatPort)
        let connection = try brokerConnection()
        let admin = try Connection.open(connection)
        try topology.topology.declare(on: admin)
        try NotifyQueue.declarations(topology: topology, queue: NotifyQueue.name(topology: topology)).declare(on: admin)
        admin.close()

        // What the configuration asks for, and what supersedes what (the digest's one line per dossier).
        let planner = NotifyPlanner(settings: settings, domain: domain)
        var expected = Set<String>()
        var owedTo: [String: [Alert]] = [:]
        for alert in alerts {
            for person in planner.recipients(of: alert) ?? [] {
                owedTo[person, default: []].append(alert)
                guard AlertLevel.clockLevels.contains(alert.level) else { continue }
                expected.insert("\(person) email \(alert.alertId)")
                if person == chatPerson { expected.insert("q1-office chat \(alert.alertId)") }
            }
        }

        var notify = try startNotify(settingsFile, log: "notify-1.log")
        self.notify = notify
        let publisher = try Publisher(PublisherConfiguration(connection: connection))
        var publishedAt: [String: Double] = [:]
        let started = Date().timeIntervalSince1970
        var cpu = 0.0
        var peakRSS = 0.0
        var killedAt = 0.0
        for (i, alert) in alerts.enumerated() {
            let due = started + Double(i) / rate
            let wait = due - Date().timeIntervalSince1970
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
            try publisher.publish(
                OutboundMessage(
                    exchange: topology.alertsExchange,
                    routingKey: SameDayRoutingKey.alert(
                        level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
                    body: Array(alert.jsonLine().utf8), messageID: alert.alertId))
            publishedAt[alert.alertId] = publishedAt[alert.alertId] ?? Date().timeIntervalSince1970
            if i % 500 == 499 { try publisher.waitForConfirms(timeout: .seconds(30)) }
            if i == alerts.count / 2 {
                cpu += processCPU(notify.pid)
                peakRSS = max(peakRSS, processPeakRSS(notify.pid))
                notify.kill(SIGKILL)
                notify.wait()
                killedAt = Date().timeIntervalSince1970
                notify = try startNotify(settingsFile, log: "notify-2.log")
                self.notify = notify
            }
        }
        try publisher.waitForConfirms(timeout: .seconds(60))
        publisher.close()
        let published = Date().timeIntervalSince1970

        // Until everything expected is found (or superseded), or the sinks stay quiet for 30 s.
        var found = try deliveries()
        var lastCount = -1
        var quietSince = Date().timeIntervalSince1970
        while true {
            found = try deliveries()
            let covered = Set(found.map(\.key)).union(superseded(expected, found: found, owedTo: owedTo))
            if expected.isSubset(of: covered) { break }
            if found.count != lastCount {
                lastCount = found.count
                quietSince = Date().timeIntervalSince1970
            } else if Date().timeIntervalSince1970 - quietSince > 30 {
                break
            }
            usleep(500_000)
        }
        usleep(UInt32(groupWait) * 1_000_000 + 500_000)  // anything sent twice would come now
        found = try deliveries()
        cpu += processCPU(notify.pid)
        peakRSS = max(peakRSS, processPeakRSS(notify.pid))

        var messageIDs: [String: Set<String>] = [:]
        var copies: [String: Int] = [:]
        var firstDelivery: [String: Double] = [:]
        for d in found {
            messageIDs[d.key, default: []].insert(d.messageID)
            copies[d.key, default: 0] += 1
            firstDelivery[d.key] = min(firstDelivery[d.key] ?? .infinity, d.at)
        }
        let foundKeys = Set(found.map(\.key))
        let superseded = superseded(expected, found: found, owedTo: owedTo)
        let missing = expected.subtracting(foundKeys).subtracting(superseded)
        let duplicates = messageIDs.values.filter { $0.count > 1 }.count
        let resent = copies.filter { $0.value > 1 && messageIDs[$0.key]!.count == 1 }.count
        var delays: [Double] = []
        var steady: [Double] = []
        for (key, at) in firstDelivery where expected.contains(key) {
            let id = String(key.split(separator: " ").last!)
            guard let sent = publishedAt[id] else { continue }
            delays.append(at - sent - Double(groupWait))
            // Published more than 10 s before the kill or after it: what the restart does not touch.
            if sent < killedAt - 10 || sent > killedAt + 10 { steady.append(at - sent - Double(groupWait)) }
        }
        delays.sort()
        steady.sort()
        func percentile(_ p: Double, of values: [Double]? = nil) -> Double {
            let values = values ?? delays
            guard !values.isEmpty else { return 0 }
            let value = values[min(values.count - 1, Int(Double(values.count - 1) * p))]
            return (value * 1000).rounded() / 1000
        }
        let messages = Set(found.map(\.messageID)).count
        return [
            "alerts": alerts.count,
            "alerts_at_risk": alerts.filter { AlertLevel.clockLevels.contains($0.level) }.count,
            "deliveries_expected": expected.count,
            "deliveries": foundKeys.intersection(expected).count,
            "superseded": superseded.count,
            "missing": missing.count,
            "missing_examples": Array(missing.sorted().prefix(5)),
            "duplicates": duplicates,
            "resent_same_message": resent,
            "messages": messages,
            "messages_per_1000_alerts": (Double(messages) * 1_000_000 / Double(max(alerts.count, 1))).rounded() / 1000,
            "alerts_per_s": (Double(alerts.count) / (published - started) * 10).rounded() / 10,
            "alerts_per_cpu_s": (Double(alerts.count) / max(cpu, 0.001)).rounded(),
            "notify_cpu_s": (cpu * 100).rounded() / 100,
            "p50_delay_s": percentile(0.5),
            "p99_delay_s": percentile(0.99),
            "p99_delay_away_from_kill_s": percentile(0.99, of: steady),
            "p99_goal_s": 2,
            "group_wait_s": groupWait,
            "killed_after_s": ((killedAt - started) * 10).rounded() / 10,
            "peak_rss_mb": (peakRSS * 10).rounded() / 10,
        ]
    }

    /// Expected triples not named because a newer alert of the same dossier was owed to the same person.
    func superseded(
        _ expected: Set<String>, found: [Delivery], owedTo: [String: [Alert]]
    ) -> Set<String> {
        var byID: [String: Alert] = [:]
        for list in owedTo.values { for a in list { byID[a.alertId] = a } }
        let foundKeys = Set(found.map(\.key))
        var out = Set<String>()
        for key in expected where !foundKeys.contains(key) {
            let parts = key.split(separator: " ").map(String.init)
            let person = parts[1] == "chat" ? chatPerson : parts[0]
            guard let alert = byID[parts[2]] else { continue }
            let newer = owedTo[person, default: []].contains {
                $0.alertId != alert.alertId && $0.dossier == alert.dossier && $0.unit == alert.unit
                    && ($0.firedAt, $0.level.rawValue) >= (alert.firedAt, alert.level.rawValue)
            }
            if newer { out.insert(key) }
        }
        return out
    }

    struct Delivery {
        var key: String
        var messageID: String
        var at: Double
    }

    /// Every (person, channel, alert) the sinks hold, with the carrying message's id and the file's time.
    func deliveries() throws -> [Delivery] {
        var out: [Delivery] = []
        var n = 1
        while let raw = try? String(contentsOfFile: folder + "/mail/\(n).eml", encoding: .utf8) {
            let at = fileTime(folder + "/mail/\(n).eml")
            n += 1
            let head = raw.components(separatedBy: "\r\n\r\n").first ?? ""
            let headers = Self.unfoldedHeaders(head)
            let to = headers["x-sink-rcpt-to"] ?? ""
            let id = headers["message-id"] ?? ""
            for alert in (headers["x-sameday-alerts"] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }) {
                out.append(Delivery(key: "\(to) email \(alert)", messageID: id, at: at))
            }
        }
        n = 1
        while let raw = try? String(contentsOfFile: folder + "/chat/\(n).json", encoding: .utf8) {
            let at = fileTime(folder + "/chat/\(n).json")
            n += 1
            guard let object = try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any],
                let headers = object["headers"] as? [String: String]
            else { continue }
            let id = headers["X-SameDay-Message-Id"] ?? ""
            for alert in (headers["X-SameDay-Alerts"] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }) {
                out.append(Delivery(key: "q1-office chat \(alert)", messageID: id, at: at))
            }
        }
        return out
    }

    static func unfoldedHeaders(_ head: String) -> [String: String] {
        var headers: [String: String] = [:]
        var last: String?
        for line in head.components(separatedBy: "\r\n") {
            if line.hasPrefix(" ") || line.hasPrefix("\t"), let name = last {
                headers[name, default: ""] += line
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                headers[name] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                last = name
            }
        }
        return headers
    }

    func fileTime(_ path: String) -> Double {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    /// The process's peak resident memory (VmHWM), in MiB.
    func processPeakRSS(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}
