import Foundation
import GRDB
import SameDayCore

/// An alert a person is owed and has not yet had in a message.
public struct OwedAlert: Sendable, Equatable {
    /// Arrival order in the store: a digest clears what its recipient was owed up to a seq it held.
    public var seq: Int64
    public var recipient: String
    public var alertID: String
    /// When the notifier took it (its group windows count from here).
    public var receivedAt: Instant
    /// The alert as its JSON line.
    public var json: String

    public init(seq: Int64, recipient: String, alertID: String, receivedAt: Instant, json: String) {
        self.seq = seq
        self.recipient = recipient
        self.alertID = alertID
        self.receivedAt = receivedAt
        self.json = json
    }
}

/// A message on its way to one person by one channel.
public struct NotifyMessage: Sendable, Equatable {
    public enum Status: String, Sendable {
        case pending, delivered, failed
    }

    public var seq: Int64
    /// The same for every channel of one digest (and stable across a resend).
    public var messageID: String
    public var recipient: String
    /// `email`, or `webhook:<name>` (a chat webhook of the notifier's settings).
    public var channel: String
    /// Where the channel sends it: the e-mail address, or the chat id.
    public var destination: String
    /// What the channel sends: the rendered e-mail, or the chat body.
    public var body: String
    public var alertIDs: [String]
    public var createdAt: Instant
    public var attempts: Int
    public var nextAttemptAt: Instant
    public var status: Status
    public var lastError: String?

    public init(
        seq: Int64 = 0, messageID: String, recipient: String, channel: String, destination: String = "", body: String,
        alertIDs: [String],
        createdAt: Instant, attempts: Int = 0, nextAttemptAt: Instant, status: Status = .pending,
        lastError: String? = nil
    ) {
        self.seq = seq
        self.messageID = messageID
        self.recipient = recipient
        self.channel = channel
        self.destination = destination
        self.body = body
        self.alertIDs = alertIDs
        self.createdAt = createdAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.status = status
        self.lastError = lastError
    }
}

/// What `sameday notify` keeps, wherever it keeps it: `NotifyStore` (SQLite, one notifier) or the PostgreSQL store
/// (`PostgresNotifyStore`, shared by a notifier and its standby, every write fenced by the lease).
public protocol NotifyStoring: AnyObject, Sendable {
    /// Records that each alert is owed to its recipients, unless she is already owed it or has it logged; returns
    /// what is newly owed, in arrival order.
    func recordOwed(_ alerts: [(alertID: String, json: String, recipients: [String])], at: Instant) throws
        -> [OwedAlert]
    /// Everything owed, by recipient then arrival.
    func owed() throws -> [OwedAlert]
    func recipientStates() throws -> [(recipient: String, lastSentAt: Instant?, openEscalations: String)]
    /// A digest in one transaction (see `NotifyStore.commitDigest`).
    func commitDigest(
        recipient: String, throughSeq: Int64, at: Instant, messages: [NotifyMessage], lastSentAt: Instant?,
        openEscalations: String) throws
    func dueMessages(at: Instant, channel: String?, limit: Int) throws -> [NotifyMessage]
    func nextAttemptAt(channel: String?) throws -> Instant?
    func messageCounts() throws -> (pending: Int, failed: Int)
    func trackOverdue(
        opened: [(unit: String, dossier: String, json: String)], closed: [(unit: String, dossier: String)],
        at: Instant) throws
    func openOverdue(units: Set<String>) throws -> [String]
    @discardableResult func storeMessages(_ messages: [NotifyMessage]) throws -> Int
    func clock() throws -> Instant?
    func saveClock(_ at: Instant) throws
    func markDelivered(seq: Int64, attempts: Int) throws
    func markRetry(seq: Int64, attempts: Int, nextAttemptAt: Instant, error: String) throws
    func markFailed(seq: Int64, attempts: Int, error: String) throws
    func failedMessages(limit: Int) throws -> [NotifyMessage]
    @discardableResult func retryFailed(seqs: [Int64]?, at: Instant) throws -> Int
    @discardableResult func prune(before: Instant, limit: Int) throws -> Int
    /// Where it is, for logs.
    var location: String { get }
}

extension NotifyStoring {
    @discardableResult
    public func prune(before: Instant) throws -> Int { try prune(before: before, limit: 5000) }
    public func failedMessages() throws -> [NotifyMessage] { try failedMessages(limit: 1000) }
}

/// The notifier's durable state in SQLite (WAL, synchronous=FULL), so that every person gets every alert once across
/// restarts and SIGKILLs:
///
/// - `owed`: what each person is owed and has not yet had in a message. Written before the alert's delivery is acked.
/// - `notification`: the notification log, keyed by (alert id, recipient, channel): an alert that arrives again (a
///   redelivery, a worker's outbox sent twice) is not owed again to anyone who has it logged.
/// - `message`: the message outbox; pending until its channel delivered it, failed after its last attempt (the
///   failed-deliveries outbox, which an operator retries).
/// - `recipient_state`: when each person was last sent a message, and her open escalations (the grouping state that
///   is not in `owed`).
///
/// A digest is taken in one transaction: its messages stored, everything the person's queue held (up to an arrival
/// number) logged and cleared. Its size follows the alerts of the retention window and the messages not yet pruned.
public final class NotifyStore: NotifyStoring {
    private let database: DatabaseQueue
    public let path: String

    public var location: String { path }

    public init(path: String) throws {
        self.path = path
        database = try DurableSQLite.open(path: path, migrator: Self.migrator)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(
            "v1: owed alerts, notification log, message outbox, open overdue dossiers, clock, recipient state"
        ) { db in
            try db.execute(
                sql: """
                    CREATE TABLE owed (
                        seq INTEGER PRIMARY KEY,
                        recipient TEXT NOT NULL,
                        alert_id TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        json TEXT NOT NULL,
                        UNIQUE (recipient, alert_id)
                    );
                    CREATE TABLE notification (
                        alert_id TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        message_seq INTEGER,
                        at INTEGER NOT NULL,
                        PRIMARY KEY (alert_id, recipient, channel)
                    ) WITHOUT ROWID;
                    CREATE INDEX notification_at ON notification(at);
                    CREATE TABLE message (
                        seq INTEGER PRIMARY KEY,
                        message_id TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        channel TEXT NOT NULL,
                        destination TEXT NOT NULL,
                        body TEXT NOT NULL,
                        alert_ids TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        last_error TEXT,
                        UNIQUE (message_id, channel)
                    );
                    CREATE INDEX message_pending ON message(next_attempt_at) WHERE status = 'pending';
                    CREATE INDEX message_failed ON message(seq) WHERE status = 'failed';
                    CREATE TABLE open_overdue (
                        unit TEXT NOT NULL,
                        dossier TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        json TEXT NOT NULL,
                        PRIMARY KEY (unit, dossier)
                    ) WITHOUT ROWID;
                    CREATE TABLE clock (
                        id INTEGER PRIMARY KEY CHECK (id = 0),
                        at INTEGER NOT NULL
                    );
                    CREATE TABLE recipient_state (
                        recipient TEXT PRIMARY KEY,
                        last_sent_at INTEGER,
                        open_escalations TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// Records that each of `recipients` is owed the alert, unless she already is or has it logged. Returns what
    /// is newly owed.
    @discardableResult
    public func recordOwed(alertID: String, json: String, recipients: [String], at: Instant) throws -> [OwedAlert] {
        try recordOwed([(alertID, json, recipients)], at: at)
    }

    /// Several alerts in one transaction (one commit per batch of deliveries); returns what is newly owed.
    public func recordOwed(_ alerts: [(alertID: String, json: String, recipients: [String])], at: Instant) throws
        -> [OwedAlert]
    {
        try database.write { db in
            let logged = try db.cachedStatement(
                sql: "SELECT 1 FROM notification WHERE alert_id = ? AND recipient = ? LIMIT 1")
            let insert = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO owed (recipient, alert_id, received_at, json) VALUES (?, ?, ?, ?)")
            var added: [OwedAlert] = []
            for alert in alerts {
                for recipient in alert.recipients {
                    if try Row.fetchOne(logged, arguments: [alert.alertID, recipient]) != nil { continue }
                    try insert.execute(arguments: [recipient, alert.alertID, at, alert.json])
                    if db.changesCount > 0 {
                        added.append(
                            OwedAlert(
                                seq: db.lastInsertedRowID, recipient: recipient, alertID: alert.alertID,
                                receivedAt: at, json: alert.json))
                    }
                }
            }
            return added
        }
    }

    /// Everything owed, by recipient then arrival (a restart rebuilds each person's queue from it).
    public func owed() throws -> [OwedAlert] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, recipient, alert_id, received_at, json FROM owed ORDER BY recipient, seq"
            ).map { OwedAlert(seq: $0[0], recipient: $0[1], alertID: $0[2], receivedAt: $0[3], json: $0[4]) }
        }
    }

    /// Each person's last message time and open escalations (as the notifier wrote them).
    public func recipientStates() throws -> [(recipient: String, lastSentAt: Instant?, openEscalations: String)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT recipient, last_sent_at, open_escalations FROM recipient_state").map {
                ($0[0], $0[1], $0[2])
            }
        }
    }

    /// A digest taken for `recipient` at `at`, in one transaction: its messages stored pending (one per channel),
    /// every alert she was owed up to `throughSeq` (what her queue held) logged, by each message's channel when the
    /// message carries it, else as `folded` (resolved, or superseded by a newer level of its dossier, before its
    /// message went out), and cleared; her state replaced.
    public func commitDigest(
        recipient: String, throughSeq: Int64, at: Instant, messages: [NotifyMessage], lastSentAt: Instant?,
        openEscalations: String
    ) throws {
        try database.write { db in
            var carried: [String: [(channel: String, seq: Int64)]] = [:]
            for message in messages {
                precondition(message.recipient == recipient, "a digest's messages are all for its recipient")
                // Taken again after a crash between this commit and the next: the stored message stands.
                let seq =
                    try Self.insertPending(message, db)
                    ? db.lastInsertedRowID
                    : try Int64.fetchOne(
                        db, sql: "SELECT seq FROM message WHERE message_id = ? AND channel = ?",
                        arguments: [message.messageID, message.channel]) ?? 0
                for id in message.alertIDs { carried[id, default: []].append((message.channel, seq)) }
            }
            let owedIDs = try String.fetchAll(
                db, sql: "SELECT alert_id FROM owed WHERE recipient = ? AND seq <= ?",
                arguments: [recipient, throughSeq])
            let log = try db.cachedStatement(
                sql:
                    "INSERT OR IGNORE INTO notification (alert_id, recipient, channel, message_seq, at) VALUES (?, ?, ?, ?, ?)"
            )
            let clear = try db.cachedStatement(sql: "DELETE FROM owed WHERE recipient = ? AND alert_id = ?")
            for id in owedIDs {
                try clear.execute(arguments: [recipient, id])
                if let channels = carried[id] {
                    for c in channels { try log.execute(arguments: [id, recipient, c.channel, c.seq, at]) }
                } else {
                    try log.execute(arguments: [id, recipient, "folded", nil, at])
                }
            }
            try db.execute(
                sql: """
                    INSERT INTO recipient_state (recipient, last_sent_at, open_escalations) VALUES (?, ?, ?)
                    ON CONFLICT(recipient) DO UPDATE SET last_sent_at = excluded.last_sent_at,
                        open_escalations = excluded.open_escalations
                    """,
                arguments: [recipient, lastSentAt, openEscalations])
        }
    }

    /// Pending messages whose next attempt is due at `at`, oldest first (of one channel, or of all).
    public func dueMessages(at: Instant, channel: String? = nil, limit: Int = 100) throws -> [NotifyMessage] {
        if let channel {
            return try fetchMessages(
                where: "status = 'pending' AND next_attempt_at <= ? AND channel = ?", arguments: [at, channel],
                order: "next_attempt_at, seq", limit: limit)
        }
        return try fetchMessages(
            where: "status = 'pending' AND next_attempt_at <= ?", arguments: [at], order: "next_attempt_at, seq",
            limit: limit)
    }

    /// When the next pending message is due (nil: none pending), of one channel or of all.
    public func nextAttemptAt(channel: String? = nil) throws -> Instant? {
        try database.read { db in
            if let channel {
                return try Instant.fetchOne(
                    db, sql: "SELECT min(next_attempt_at) FROM message WHERE status = 'pending' AND channel = ?",
                    arguments: [channel])
            }
            return try Instant.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM message WHERE status = 'pending'")
        }
    }

    /// How many messages are pending and failed (the gauges an operator watches).
    public func messageCounts() throws -> (pending: Int, failed: Int) {
        try database.read { db in
            let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM message WHERE status = 'pending'") ?? 0
            let failed = try Int.fetchOne(db, sql: "SELECT count(*) FROM message WHERE status = 'failed'") ?? 0
            return (pending, failed)
        }
    }

    /// Dossiers overdue and not resolved, from every alert the notifier reads (whoever receives it): `overdue` and
    /// `escalated` open one, `cleared` and `resolved_late` close it. What the daily summary lists.
    public func trackOverdue(
        opened: [(unit: String, dossier: String, json: String)], closed: [(unit: String, dossier: String)], at: Instant
    )
        throws
    {
        guard !opened.isEmpty || !closed.isEmpty else { return }
        try database.write { db in
            let open = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO open_overdue (unit, dossier, at, json) VALUES (?, ?, ?, ?)")
            for o in opened { try open.execute(arguments: [o.unit, o.dossier, at, o.json]) }
            let close = try db.cachedStatement(sql: "DELETE FROM open_overdue WHERE unit = ? AND dossier = ?")
            for c in closed { try close.execute(arguments: [c.unit, c.dossier]) }
        }
    }

    /// The open overdue dossiers of `units`, as the JSON lines of their latest alerts, oldest first.
    public func openOverdue(units: Set<String>) throws -> [String] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT unit, json FROM open_overdue ORDER BY at, unit, dossier")
                .filter { units.contains($0[0]) }.map { $0[1] }
        }
    }

    /// Messages that are not part of a digest (a daily summary), stored pending unless their Message-ID is there
    /// already for that channel (taken again after a restart). Returns how many are new.
    @discardableResult
    public func storeMessages(_ messages: [NotifyMessage]) throws -> Int {
        try database.write { db in
            var added = 0
            for message in messages where try Self.insertPending(message, db) { added += 1 }
            return added
        }
    }

    /// Stores `message` pending, unless a message with its Message-ID is there for its channel; true when stored.
    private static func insertPending(_ message: NotifyMessage, _ db: Database) throws -> Bool {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO message (message_id, recipient, channel, destination, body, alert_ids,
                    created_at, attempts, next_attempt_at, status)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'pending')
                """,
            arguments: [
                message.messageID, message.recipient, message.channel, message.destination, message.body,
                message.alertIDs.joined(separator: ","), message.createdAt, message.nextAttemptAt,
            ])
        return db.changesCount > 0
    }

    /// The notifier's clock as last saved (the alerts clock resumes from it after a restart).
    public func clock() throws -> Instant? {
        try database.read { db in try Instant.fetchOne(db, sql: "SELECT at FROM clock WHERE id = 0") }
    }

    public func saveClock(_ at: Instant) throws {
        try database.write { db in
            try db.execute(
                sql: "INSERT INTO clock (id, at) VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET at = max(at, excluded.at)",
                arguments: [at])
        }
    }

    public func markDelivered(seq: Int64, attempts: Int) throws {
        try update(seq: seq, status: .delivered, attempts: attempts, nextAttemptAt: nil, error: nil)
    }

    public func markRetry(seq: Int64, attempts: Int, nextAttemptAt: Instant, error: String) throws {
        try update(seq: seq, status: .pending, attempts: attempts, nextAttemptAt: nextAttemptAt, error: error)
    }

    public func markFailed(seq: Int64, attempts: Int, error: String) throws {
        try update(seq: seq, status: .failed, attempts: attempts, nextAttemptAt: nil, error: error)
    }

    /// The failed-deliveries outbox, oldest first.
    public func failedMessages(limit: Int = 1000) throws -> [NotifyMessage] {
        try fetchMessages(where: "status = 'failed'", arguments: [], order: "seq", limit: limit)
    }

    /// Puts failed messages (all, or those of `seqs`) back to pending, due at `at`, with their attempts reset.
    /// Returns how many.
    @discardableResult
    public func retryFailed(seqs: [Int64]? = nil, at: Instant) throws -> Int {
        try database.write { db in
            if let seqs {
                let statement = try db.cachedStatement(
                    sql:
                        "UPDATE message SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE seq = ? AND status = 'failed'"
                )
                var count = 0
                for seq in seqs {
                    try statement.execute(arguments: [at, seq])
                    count += db.changesCount
                }
                return count
            }
            try db.execute(
                sql: "UPDATE message SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE status = 'failed'",
                arguments: [at])
            return db.changesCount
        }
    }

    /// Drops log rows and delivered messages older than `before` (failed ones stay until an operator retries them;
    /// owed alerts and pending messages always stay). Returns how many rows went.
    @discardableResult
    public func prune(before: Instant, limit: Int = 5000) throws -> Int {
        try database.write { db in
            try db.execute(
                sql: """
                    DELETE FROM notification WHERE (alert_id, recipient, channel) IN
                        (SELECT alert_id, recipient, channel FROM notification WHERE at < ? LIMIT ?)
                    """, arguments: [before, limit])
            var removed = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM message WHERE seq IN
                        (SELECT seq FROM message WHERE status = 'delivered' AND created_at < ? LIMIT ?)
                    """, arguments: [before, limit])
            removed += db.changesCount
            // An overdue dossier whose resolution never came (retired, abandoned) leaves the summary in time.
            try db.execute(sql: "DELETE FROM open_overdue WHERE at < ?", arguments: [before])
            removed += db.changesCount
            return removed
        }
    }

    /// Whether (alert, recipient) is in the notification log, and by which channels (tests, audits).
    public func notifications(alertID: String, recipient: String) throws -> [String] {
        try database.read { db in
            try String.fetchAll(
                db, sql: "SELECT channel FROM notification WHERE alert_id = ? AND recipient = ? ORDER BY channel",
                arguments: [alertID, recipient])
        }
    }

    private func update(
        seq: Int64, status: NotifyMessage.Status, attempts: Int, nextAttemptAt: Instant?, error: String?
    )
        throws
    {
        try database.write { db in
            try db.execute(
                sql: """
                    UPDATE message SET status = ?, attempts = ?, next_attempt_at = coalesce(?, next_attempt_at),
                        last_error = ? WHERE seq = ?
                    """,
                arguments: [status.rawValue, attempts, nextAttemptAt, error.map { String($0.prefix(2000)) }, seq])
        }
    }

    private func fetchMessages(where condition: String, arguments: StatementArguments, order: String, limit: Int)
        throws -> [NotifyMessage]
    {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, message_id, recipient, channel, destination, body, alert_ids, created_at,
                        attempts, next_attempt_at, status, last_error
                    FROM message WHERE \(condition) ORDER BY \(order) LIMIT \(limit)
                    """, arguments: arguments
            ).map { row in
                let ids: String = row[6]
                return NotifyMessage(
                    seq: row[0], messageID: row[1], recipient: row[2], channel: row[3], destination: row[4],
                    body: row[5], alertIDs: ids.isEmpty ? [] : ids.split(separator: ",").map(String.init),
                    createdAt: row[7], attempts: row[8], nextAttemptAt: row[9],
                    status: NotifyMessage.Status(rawValue: row[10]) ?? .failed, lastError: row[11])
            }
        }
    }
}
