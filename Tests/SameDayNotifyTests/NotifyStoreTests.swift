import Foundation
import SameDayStore
import Testing

@Suite("Notify store: every person gets every alert once, across restarts")
struct NotifyStoreTests {
    func store() throws -> (NotifyStore, String) {
        let folder = NSTemporaryDirectory() + "sameday-notify-store-\(UUID().uuidString)"
        return (try NotifyStore(path: folder + "/notify.sqlite"), folder)
    }

    func message(_ id: String, to recipient: String, channel: String, alerts: [String], at: Int64) -> NotifyMessage {
        NotifyMessage(
            messageID: id, recipient: recipient, channel: channel, body: "body of \(id)", alertIDs: alerts,
            createdAt: at, nextAttemptAt: at)
    }

    @Test("an alert is owed once per person; once in a digest it is never owed to her again")
    func owedOnce() throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan", "minh"], at: 100)
        #expect(first.map(\.recipient) == ["lan", "minh"])
        // The same alert again (a redelivery): nothing new.
        #expect(try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan", "minh"], at: 101).isEmpty)
        let a2 = try store.recordOwed(alertID: "a2", json: "{}", recipients: ["lan"], at: 102)

        // Lan's digest carries a1 by e-mail and chat; a2 was folded (resolved before the message).
        try store.commitDigest(
            recipient: "lan", throughSeq: a2[0].seq, at: 130,
            messages: [
                message("m1", to: "lan", channel: "email", alerts: ["a1"], at: 130),
                message("m1", to: "lan", channel: "telegram", alerts: ["a1"], at: 130),
            ], lastSentAt: 130, openEscalations: "")
        #expect(try store.notifications(alertID: "a1", recipient: "lan") == ["email", "telegram"])
        #expect(try store.notifications(alertID: "a2", recipient: "lan") == ["folded"])
        #expect(try store.owed().map { "\($0.recipient):\($0.alertID)" } == ["minh:a1"])
        // Arriving again after the digest: not owed again to Lan, still owed to Minh once.
        #expect(try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan", "minh"], at: 200).isEmpty)
        #expect(try store.recipientStates().map(\.recipient) == ["lan"])
    }

    @Test("what arrives after the queue was read stays owed when the digest is committed")
    func laterArrivalsStay() throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let held = try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan"], at: 100)
        try store.recordOwed(alertID: "a2", json: "{}", recipients: ["lan"], at: 100)
        try store.commitDigest(
            recipient: "lan", throughSeq: held[0].seq, at: 100,
            messages: [message("m1", to: "lan", channel: "email", alerts: ["a1"], at: 100)], lastSentAt: 100,
            openEscalations: "")
        #expect(try store.owed().map(\.alertID) == ["a2"])
    }

    @Test("messages: due, retried, failed into the outbox an operator retries; state survives reopening")
    func messageLifecycle() throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let owed = try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan"], at: 100)
        try store.commitDigest(
            recipient: "lan", throughSeq: owed[0].seq, at: 130,
            messages: [message("m1", to: "lan", channel: "zalo", alerts: ["a1"], at: 130)], lastSentAt: 130,
            openEscalations: "")
        #expect(try store.dueMessages(at: 129).isEmpty)
        let due = try #require(try store.dueMessages(at: 130).first)
        #expect(due.alertIDs == ["a1"] && due.channel == "zalo" && due.status == .pending)
        try store.markRetry(seq: due.seq, attempts: 1, nextAttemptAt: 160, error: "HTTP 503")
        #expect(try store.dueMessages(at: 150).isEmpty)
        #expect(try store.nextAttemptAt() == 160)
        try store.markFailed(seq: due.seq, attempts: 8, error: "HTTP 503 after 8 attempts")
        #expect(try store.dueMessages(at: 10_000).isEmpty)

        // A restart finds the failed message in the outbox.
        let reopened = try NotifyStore(path: store.path)
        let failed = try reopened.failedMessages()
        #expect(failed.map(\.lastError) == ["HTTP 503 after 8 attempts"])
        #expect(try reopened.retryFailed(at: 500) == 1)
        let again = try #require(try reopened.dueMessages(at: 500).first)
        #expect(again.attempts == 0)
        try reopened.markDelivered(seq: again.seq, attempts: 1)
        #expect(try reopened.dueMessages(at: 10_000).isEmpty && reopened.failedMessages().isEmpty)
        // Delivered messages and old log rows are pruned; failed and pending ones are kept.
        #expect(try reopened.prune(before: 10_000) == 2)
        #expect(try reopened.notifications(alertID: "a1", recipient: "lan").isEmpty)
    }

    @Test("a digest taken again after a crash keeps the message already stored")
    func digestTakenTwice() throws {
        let (store, folder) = try store()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let owed = try store.recordOwed(alertID: "a1", json: "{}", recipients: ["lan"], at: 100)
        for _ in 0..<2 {
            try store.commitDigest(
                recipient: "lan", throughSeq: owed[0].seq, at: 130,
                messages: [message("m1", to: "lan", channel: "email", alerts: ["a1"], at: 130)], lastSentAt: 130,
                openEscalations: "")
        }
        #expect(try store.dueMessages(at: 200).count == 1)
    }
}
