import Foundation
import Logging
import PostgresNIO
import SameDayCore
import SameDayStore

/// `sameday notify`'s state in PostgreSQL: `NotifyStore`'s tables and rules (docs/notify.md, "State"), keyed by the
/// notifier's queue, so that a notifier and its standby on another machine share it. Every write is fenced by the
/// notifier's lease (the `shard_lease` row named after its queue): a notifier that lost the lease (frozen, cut off,
/// taken over) records, clears and marks nothing more, and the one that took over goes on from what was committed.
public final class PostgresNotifyStore: NotifyStoring {
    public let url: PostgresStoreURL
    /// The key of every row: the notifier's queue (`sameday.notify`, with the deployment's prefix).
    public let notifier: String
    /// The lease epoch writes must match (nil: unfenced, for an operator's `notify failed list|retry`).
    public let fencingEpoch: Int64?
    private let connection: BlockingConnection

    public var location: String { "\(url) notifier \(notifier)" }

    public init(
        url: PostgresStoreURL, passwordFile: String?, notifier: String, fencingEpoch: Int64?,
        logger: Logger = Logger(label: "sameday.notify.store")
    ) throws {
        self.url = url
        self.notifier = notifier
        self.fencingEpoch = fencingEpoch
        connection = try BlockingConnection(
            url: url, password: try readPassword(file: passwordFile), name: "notify store", logger: logger)
        try PostgresSchema.migrate(connection)
    }

    deinit { connection.close() }

    /// Ends the connection at once (the lease is lost: its writes would be refused anyway).
    public func abandon(_ reason: String) { connection.abandon(reason) }

    @discardableResult
    private func fenced<T>(_ body: (BlockingConnection.Statements) throws -> T) throws -> T {
        try connection.fencedTransaction(lease: notifier, epoch: fencingEpoch, body)
    }

    public func recordOwed(_ alerts: [(alertID: String, json: String, recipients: [String])], at: Instant) throws
        -> [OwedAlert]
    {
        let notifier = notifier
        return try fenced { execute in
            var added: [OwedAlert] = []
            for alert in alerts where !alert.recipients.isEmpty {
                let rows = try execute(
                    """
                    INSERT INTO notify_owed (notifier, recipient, alert_id, received_at, json)
                        SELECT \(notifier), r, \(alert.alertID), \(at), \(alert.json)
                        FROM unnest(\(alert.recipients)::text[]) WITH ORDINALITY AS t(r, n)
                        WHERE NOT EXISTS (
                            SELECT 1 FROM notify_log l
                            WHERE l.notifier = \(notifier) AND l.alert_id = \(alert.alertID) AND l.recipient = r)
                        ORDER BY n
                    ON CONFLICT DO NOTHING
                    RETURNING seq, recipient
                    """)
                for row in rows {
                    let (seq, recipient) = try row.decode((Int64, String).self)
                    added.append(
                        OwedAlert(
                            seq: seq, recipient: recipient, alertID: alert.alertID, receivedAt: at, json: alert.json))
                }
            }
            return added.sorted { $0.seq < $1.seq }
        }
    }

    public func owed() throws -> [OwedAlert] {
        try connection.run(
            """
            SELECT seq, recipient, alert_id, received_at, json FROM notify_owed WHERE notifier = \(notifier)
            ORDER BY recipient, seq
            """
        ).map { row in
            let (seq, recipient, alertID, at, json) = try row.decode((Int64, String, String, Int64, String).self)
            return OwedAlert(seq: seq, recipient: recipient, alertID: alertID, receivedAt: at, json: json)
        }
    }

    public func recipientStates() throws -> [(recipient: String, lastSentAt: Instant?, openEscalations: String)] {
        try connection.run(
            """
            SELECT recipient, last_sent_at, open_escalations FROM notify_recipient_state WHERE notifier = \(notifier)
            """
        ).map { row in
            let (recipient, last, open) = try row.decode((String, Int64?, String).self)
            return (recipient, last, open)
        }
    }

    public func commitDigest(
        recipient: String, throughSeq: Int64, at: Instant, messages: [NotifyMessage], lastSentAt: Instant?,
        openEscalations: String
    ) throws {
        let notifier = notifier
        try fenced { execute in
            var carried: [String: [(channel: String, seq: Int64)]] = [:]
            for message in messages {
                precondition(message.recipient == recipient, "a digest's messages are all for its recipient")
                // Taken again after a crash between this commit and the next: the stored message stands.
                let seq = try Self.insertPending(message, notifier: notifier, execute)
                for id in message.alertIDs { carried[id, default: []].append((message.channel, seq)) }
            }
            let owedIDs = try execute(
                """
                SELECT alert_id FROM notify_owed WHERE notifier = \(notifier) AND recipient = \(recipient)
                    AND seq <= \(throughSeq)
                """
            ).map { try $0.decode(String.self) }
            for id in owedIDs {
                try execute(
                    """
                    DELETE FROM notify_owed WHERE notifier = \(notifier) AND recipient = \(recipient) AND alert_id = \(id)
                    """)
                // By each channel whose message carries it, else `folded` (resolved or superseded before its
                // message went out).
                let channels: [(channel: String, seq: Int64?)] =
                    carried[id]?.map { ($0.channel, $0.seq) } ?? [("folded", nil)]
                for c in channels {
                    try execute(
                        """
                        INSERT INTO notify_log (notifier, alert_id, recipient, channel, message_seq, at)
                        VALUES (\(notifier), \(id), \(recipient), \(c.channel), \(c.seq), \(at))
                        ON CONFLICT DO NOTHING
                        """)
                }
            }
            try execute(
                """
                INSERT INTO notify_recipient_state (notifier, recipient, last_sent_at, open_escalations)
                VALUES (\(notifier), \(recipient), \(lastSentAt), \(openEscalations))
                ON CONFLICT (notifier, recipient) DO UPDATE SET last_sent_at = excluded.last_sent_at,
                    open_escalations = excluded.open_escalations
                """)
        }
    }

    /// Stores `message` pending unless its Message-ID is there for its channel; the seq of the row either way.
    private static func insertPending(
        _ message: NotifyMessage, notifier: String, _ execute: BlockingConnection.Statements
    ) throws -> Int64 {
        if let seq = try execute(
            """
            INSERT INTO notify_message (notifier, message_id, recipient, channel, destination, body, alert_ids,
                created_at, attempts, next_attempt_at, status)
            VALUES (\(notifier), \(message.messageID), \(message.recipient), \(message.channel),
                \(message.destination), \(message.body), \(message.alertIDs.joined(separator: ",")),
                \(message.createdAt), 0, \(message.nextAttemptAt), 'pending')
            ON CONFLICT DO NOTHING RETURNING seq
            """
        ).first?.decode(Int64.self) {
            return seq
        }
        return try execute(
            """
            SELECT seq FROM notify_message WHERE notifier = \(notifier) AND message_id = \(message.messageID)
                AND channel = \(message.channel)
            """
        ).first?.decode(Int64.self) ?? 0
    }

    public func dueMessages(at: Instant, channel: String?, limit: Int) throws -> [NotifyMessage] {
        try messages(
            connection.run(
                """
                SELECT \(unescaped: Self.messageColumns) FROM notify_message
                WHERE notifier = \(notifier) AND status = 'pending' AND next_attempt_at <= \(at)
                    AND (\(channel)::text IS NULL OR channel = \(channel))
                ORDER BY next_attempt_at, seq LIMIT \(Int64(limit))
                """))
    }

    public func nextAttemptAt(channel: String?) throws -> Instant? {
        try connection.run(
            """
            SELECT min(next_attempt_at) FROM notify_message
            WHERE notifier = \(notifier) AND status = 'pending' AND (\(channel)::text IS NULL OR channel = \(channel))
            """
        ).first?.decode(Int64?.self)
    }

    public func messageCounts() throws -> (pending: Int, failed: Int) {
        let row = try connection.run(
            """
            SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed')
            FROM notify_message WHERE notifier = \(notifier)
            """
        ).first
        guard let row else { return (0, 0) }
        let (pending, failed) = try row.decode((Int64, Int64).self)
        return (Int(pending), Int(failed))
    }

    public func trackOverdue(
        opened: [(unit: String, dossier: String, json: String)], closed: [(unit: String, dossier: String)],
        at: Instant
    ) throws {
        guard !opened.isEmpty || !closed.isEmpty else { return }
        let notifier = notifier
        try fenced { execute in
            for o in opened {
                try execute(
                    """
                    INSERT INTO notify_open_overdue (notifier, unit, dossier, at, json)
                    VALUES (\(notifier), \(o.unit), \(o.dossier), \(at), \(o.json))
                    ON CONFLICT (notifier, unit, dossier) DO UPDATE SET at = excluded.at, json = excluded.json
                    """)
            }
            for c in closed {
                try execute(
                    """
                    DELETE FROM notify_open_overdue
                    WHERE notifier = \(notifier) AND unit = \(c.unit) AND dossier = \(c.dossier)
                    """)
            }
        }
    }

    public func openOverdue(units: Set<String>) throws -> [String] {
        try connection.run(
            """
            SELECT json FROM notify_open_overdue WHERE notifier = \(notifier) AND unit = ANY(\(units.sorted())::text[])
            ORDER BY at, unit, dossier
            """
        ).map { try $0.decode(String.self) }
    }

    @discardableResult
    public func storeMessages(_ messages: [NotifyMessage]) throws -> Int {
        let notifier = notifier
        return try fenced { execute in
            var added = 0
            for message in messages {
                let before = try execute(
                    """
                    SELECT 1 FROM notify_message WHERE notifier = \(notifier) AND message_id = \(message.messageID)
                        AND channel = \(message.channel)
                    """
                ).first
                if before == nil {
                    _ = try Self.insertPending(message, notifier: notifier, execute)
                    added += 1
                }
            }
            return added
        }
    }

    public func clock() throws -> Instant? {
        try connection.run("SELECT at FROM notify_clock WHERE notifier = \(notifier)").first?.decode(Int64.self)
    }

    public func saveClock(_ at: Instant) throws {
        let notifier = notifier
        try fenced { execute in
            try execute(
                """
                INSERT INTO notify_clock (notifier, at) VALUES (\(notifier), \(at))
                ON CONFLICT (notifier) DO UPDATE SET at = greatest(notify_clock.at, excluded.at)
                """)
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

    private func update(
        seq: Int64, status: NotifyMessage.Status, attempts: Int, nextAttemptAt: Instant?, error: String?
    ) throws {
        let notifier = notifier
        let error = error.map { String($0.prefix(2000)) }
        try fenced { execute in
            try execute(
                """
                UPDATE notify_message SET status = \(status.rawValue), attempts = \(Int64(attempts)),
                    next_attempt_at = coalesce(\(nextAttemptAt), next_attempt_at), last_error = \(error)
                WHERE notifier = \(notifier) AND seq = \(seq)
                """)
        }
    }

    public func failedMessages(limit: Int) throws -> [NotifyMessage] {
        try messages(
            connection.run(
                """
                SELECT \(unescaped: Self.messageColumns) FROM notify_message
                WHERE notifier = \(notifier) AND status = 'failed' ORDER BY seq LIMIT \(Int64(limit))
                """))
    }

    /// An operator's retry (unfenced: it only puts failed messages back in line; the notifier holding the lease
    /// sends them).
    @discardableResult
    public func retryFailed(seqs: [Int64]?, at: Instant) throws -> Int {
        let rows = try connection.run(
            """
            UPDATE notify_message SET status = 'pending', attempts = 0, next_attempt_at = \(at)
            WHERE notifier = \(notifier) AND status = 'failed' AND (\(seqs)::int8[] IS NULL OR seq = ANY(\(seqs)::int8[]))
            RETURNING seq
            """)
        return Array(rows).count
    }

    @discardableResult
    public func prune(before: Instant, limit: Int) throws -> Int {
        let notifier = notifier
        return try fenced { execute in
            var removed = 0
            for sql: PostgresQuery in [
                """
                DELETE FROM notify_log WHERE (notifier, alert_id, recipient, channel) IN (
                    SELECT notifier, alert_id, recipient, channel FROM notify_log
                    WHERE notifier = \(notifier) AND at < \(before) LIMIT \(Int64(limit)))
                RETURNING 1
                """,
                """
                DELETE FROM notify_message WHERE (notifier, seq) IN (
                    SELECT notifier, seq FROM notify_message
                    WHERE notifier = \(notifier) AND status = 'delivered' AND created_at < \(before)
                    LIMIT \(Int64(limit)))
                RETURNING 1
                """,
                """
                DELETE FROM notify_open_overdue WHERE notifier = \(notifier) AND at < \(before) RETURNING 1
                """,
            ] {
                removed += Array(try execute(sql)).count
            }
            return removed
        }
    }

    /// The channels by which (alert, recipient) is in the notification log (tests, audits).
    public func notifications(alertID: String, recipient: String) throws -> [String] {
        try connection.run(
            """
            SELECT channel FROM notify_log WHERE notifier = \(notifier) AND alert_id = \(alertID)
                AND recipient = \(recipient) ORDER BY channel
            """
        ).map { try $0.decode(String.self) }
    }

    private static let messageColumns =
        "seq, message_id, recipient, channel, destination, body, alert_ids, created_at, attempts, next_attempt_at, status, last_error"

    private func messages(_ rows: PostgresQueryResult) throws -> [NotifyMessage] {
        try rows.map { row in
            let m = try row.decode(
                (Int64, String, String, String, String, String, String, Int64, Int64, Int64, String, String?).self)
            return NotifyMessage(
                seq: m.0, messageID: m.1, recipient: m.2, channel: m.3, destination: m.4, body: m.5,
                alertIDs: m.6.isEmpty ? [] : m.6.split(separator: ",").map(String.init), createdAt: m.7,
                attempts: Int(m.8), nextAttemptAt: m.9, status: NotifyMessage.Status(rawValue: m.10) ?? .failed,
                lastError: m.11)
        }
    }
}
