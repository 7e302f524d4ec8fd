import Foundation
import RabbitMQ
import SameDayBroker
import SameDayFormats
import SameDayNotify
import SameDayPostgres
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Testing

@testable import SameDayCore

#if canImport(Glibc)
    import Glibc
#endif

/// The notifier's two stores: SQLite (`NotifyStore`) and PostgreSQL (`PostgresNotifyStore`), held to the same promises.
enum NotifyBackend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    func open(_ purpose: String) throws -> (
        store: any NotifyStoring, notifications: (String, String) throws -> [String], cleanUp: () -> Void
    ) {
        switch self {
        case .sqlite:
            let folder = temporaryFolder(purpose)
            let store = try NotifyStore(path: folder + "/notify.sqlite")
            return (
                store, { try store.notifications(alertID: $0, recipient: $1) },
                { try? FileManager.default.removeItem(atPath: folder) }
            )
        case .postgres:
            let store = try PostgresNotifyStore(
                url: PostgresStoreURL(TestPostgres.url), passwordFile: TestPostgres.passwordFile,
                notifier: LocalBroker.uniqueName(purpose) + ".sameday.notify", fencingEpoch: nil)
            return (store, { try store.notifications(alertID: $0, recipient: $1) }, {})
        }
    }
}

func notifyMessage(_ id: String, to recipient: String, channel: String, alerts: [String], at: Int64) -> NotifyMessage {
    NotifyMessage(
        messageID: id, recipient: recipient, channel: channel, destination: recipient, body: "body of \(id)",
        alertIDs: alerts, createdAt: at, nextAttemptAt: at)
}

@Suite("The notifier's stores, SQLite and PostgreSQL, keep the same promises (needs PostgreSQL)", .needs(.postgreSQL))
struct NotifySharedStoreTests {
    @Test(
        "owed once, logged by channel or folded, later arrivals kept, overflow kept, a digest taken twice stored once",
        arguments: NotifyBackend.allCases)
    func owedAndDigests(backend: NotifyBackend) throws {
        let (store, notifications, cleanUp) = try backend.open("notify-store")
        defer { cleanUp() }
        let first = try store.recordOwed([("a1", "{}", ["lan", "minh"])], at: 100)
        #expect(first.map(\.recipient) == ["lan", "minh"])
        #expect(try store.recordOwed([("a1", "{}", ["lan", "minh"])], at: 101).isEmpty, "a redelivery owes nothing")
        let a2 = try store.recordOwed([("a2", "{}", ["lan"])], at: 102)
        let late = try store.recordOwed([("a4", "{}", ["lan"])], at: 104)
        for _ in 0..<2 {
            try store.commitDigest(
                recipient: "lan", throughSeq: a2[0].seq, at: 130,
                messages: [
                    notifyMessage("m1", to: "lan", channel: "email", alerts: ["a1"], at: 130),
                    notifyMessage("m1", to: "lan", channel: "webhook:tg", alerts: ["a1"], at: 130),
                ], lastSentAt: 130, openEscalations: "")
        }
        #expect(try notifications("a1", "lan") == ["email", "webhook:tg"])
        #expect(try notifications("a2", "lan") == ["folded"])
        #expect(
            try store.owed().map { "\($0.recipient):\($0.alertID)" } == ["lan:a4", "minh:a1"], "later arrivals stay")
        #expect(late[0].seq > a2[0].seq)
        #expect(try store.recordOwed([("a1", "{}", ["lan", "minh"])], at: 200).isEmpty)
        #expect(try store.recipientStates().map(\.recipient) == ["lan"])
        #expect(try store.dueMessages(at: 200, channel: nil, limit: 10).count == 2, "the digest taken twice: once")
    }

    @Test(
        "messages: due by channel, retried, failed, retried by an operator, pruned; summaries and overdue",
        arguments: NotifyBackend.allCases)
    func messages(backend: NotifyBackend) throws {
        let (store, notifications, cleanUp) = try backend.open("notify-messages")
        defer { cleanUp() }
        let owed = try store.recordOwed([("a1", "{}", ["lan"])], at: 100)
        try store.commitDigest(
            recipient: "lan", throughSeq: owed[0].seq, at: 130,
            messages: [notifyMessage("m1", to: "lan", channel: "webhook:zalo", alerts: ["a1"], at: 130)],
            lastSentAt: 130, openEscalations: "")
        #expect(try store.dueMessages(at: 129, channel: nil, limit: 10).isEmpty)
        #expect(try store.dueMessages(at: 130, channel: "email", limit: 10).isEmpty)
        let due = try #require(try store.dueMessages(at: 130, channel: "webhook:zalo", limit: 10).first)
        #expect(due.alertIDs == ["a1"] && due.destination == "lan" && due.status == .pending)
        try store.markRetry(seq: due.seq, attempts: 1, nextAttemptAt: 160, error: "HTTP 503")
        #expect(try store.nextAttemptAt(channel: "webhook:zalo") == 160)
        #expect(try store.messageCounts() == (1, 0))
        try store.markFailed(seq: due.seq, attempts: 8, error: "HTTP 503 after 8 attempts")
        #expect(try store.messageCounts() == (0, 1))
        #expect(try store.failedMessages(limit: 10).map(\.lastError) == ["HTTP 503 after 8 attempts"])
        #expect(try store.retryFailed(seqs: [due.seq], at: 500) == 1)
        let again = try #require(try store.dueMessages(at: 500, channel: nil, limit: 10).first)
        #expect(again.attempts == 0)
        try store.markDelivered(seq: again.seq, attempts: 1)
        #expect(try store.messageCounts() == (0, 0))

        let summary = notifyMessage("<summary.1@sameday>", to: "lan", channel: "email", alerts: [], at: 600)
        #expect(try store.storeMessages([summary]) == 1)
        #expect(try store.storeMessages([summary]) == 0)
        try store.trackOverdue(opened: [("760", "D1", "{d1}"), ("760", "D2", "{d2}")], closed: [], at: 600)
        try store.trackOverdue(opened: [], closed: [("760", "D1")], at: 601)
        #expect(try store.openOverdue(units: ["760"]) == ["{d2}"])
        try store.saveClock(700)
        try store.saveClock(650)
        #expect(try store.clock() == 700, "the clock never goes back")
        #expect(try store.prune(before: 10_000, limit: 100) >= 3)
        #expect(try notifications("a1", "lan").isEmpty)
        #expect(try store.openOverdue(units: ["760"]).isEmpty)
    }

    @Test("a notifier whose lease was taken over writes nothing more")
    func fenced() throws {
        let notifier = LocalBroker.uniqueName("notify-fence") + ".sameday.notify"
        let first = try TestPostgres.lease(shard: notifier, holder: "first", ttl: .seconds(2))
        let epoch = try #require(try first.tryAcquire())
        let store = try PostgresNotifyStore(
            url: PostgresStoreURL(TestPostgres.url), passwordFile: TestPostgres.passwordFile, notifier: notifier,
            fencingEpoch: epoch)
        #expect(try store.recordOwed([("a1", "{}", ["lan"])], at: 100).count == 1)
        first.release()
        let second = try TestPostgres.lease(shard: notifier, holder: "second")
        defer { second.release() }
        #expect(try second.tryAcquire() == epoch + 1)
        #expect(throws: LeaseLost.self) { try store.recordOwed([("a2", "{}", ["lan"])], at: 101) }
        #expect(throws: LeaseLost.self) { try store.markDelivered(seq: 1, attempts: 1) }
    }
}

@Suite(
    "sameday notify with a standby on the shared store (needs broker and PostgreSQL)", .serialized,
    .needs(.rabbitMQ), .needs(.postgreSQL), .needs(.msmtp, .aiosmtpd))
struct NotifyStandbyTests {
    @Test("the active notifier SIGKILLed, its standby takes the lease and every person gets every alert once")
    func takeover() async throws {
        let h = try NotifyHarness("standby")
        defer { h.cleanUp() }
        let settingsFile = try h.writeSettingsFile(extra: [
            #""store": "\#(TestPostgres.url)""#, #""storePasswordFile": "\#(TestPostgres.passwordFile)""#,
            #""leaseSeconds": 3"#,
        ])
        let base = try ConfigurationFolder.load(hcmcConfiguration)
        let alerts = notifyAlerts(300)
        let expected = h.expected(alerts, domain: base)
        try h.declareQueue()
        func start(_ name: String) throws -> Process {
            let process = Process()
            process.executableURL = try samedayExecutable()
            process.arguments = ["notify", "--notify", settingsFile, "--log-level", "warning"]
            var environment = ProcessInfo.processInfo.environment.merging(h.broker.environment) { $1 }
            environment["SAMEDAY_CLOCK"] = "wall"
            process.environment = environment
            _ = FileManager.default.createFile(atPath: h.folder + "/notify-\(name).log", contents: nil)
            process.standardError = FileHandle(forWritingAtPath: h.folder + "/notify-\(name).log")
            try process.run()
            return process
        }
        func logs() -> String {
            ["a", "b"].map { (try? String(contentsOfFile: h.folder + "/notify-\($0).log", encoding: .utf8)) ?? "" }
                .joined(separator: "\n---\n")
        }
        let probe = try TestPostgres.lease(shard: h.queue, holder: "probe")
        defer { probe.release() }
        func holderPID() throws -> Int32? {
            guard let holder = try probe.currentHolder()?.holder, let pid = holder.split(separator: " ").last else {
                return nil
            }
            return Int32(pid)
        }
        var processes = [try start("a"), try start("b")]
        defer {
            for p in processes where p.isRunning {
                kill(p.processIdentifier, SIGTERM)
                p.waitUntilExit()
            }
        }
        var deadline = ContinuousClock.now + .seconds(30)
        while try holderPID() == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let active = try #require(try holderPID(), "one notifier took the lease: \(logs())")
        #expect(processes.map(\.processIdentifier).contains(active))
        try h.publish(Array(alerts[..<150]))
        try await Task.sleep(for: .milliseconds(2500))
        kill(active, SIGKILL)
        processes.first { $0.processIdentifier == active }?.waitUntilExit()
        try h.publish(Array(alerts[150...]))
        deadline = ContinuousClock.now + .seconds(30)
        while (try holderPID()).map({ $0 == active }) ?? true, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let standby = try #require(try holderPID(), "the standby took the lease: \(logs())")
        #expect(standby != active)
        try await h.waitForDeliveries(expected.count, within: .seconds(90))
        let found = try h.deliveries()
        #expect(Set(found.map { "\($0.recipient) \($0.channel) \($0.alertID)" }) == expected)
        var messageIDs: [String: Set<String>] = [:]
        for d in found { messageIDs["\(d.recipient) \(d.channel) \(d.alertID)", default: []].insert(d.messageID) }
        #expect(messageIDs.values.allSatisfy { $0.count == 1 }, "no alert in two different messages to one person")
        processes.removeAll { $0.processIdentifier == active }
    }
}
