import Foundation
import GRDB
import SameDayCore

/// An alert waiting in (or delivered from) the outbox.
public struct OutboxAlert: Sendable, Equatable {
    public var alertID: String
    public var level: String
    public var routingKey: String
    /// The local day (YYYY-MM-DD) of `firedAt`: the alerts file it belongs to.
    public var day: String
    /// The alert as one JSON line (no newline).
    public var json: String

    public init(alertID: String, level: String, routingKey: String, day: String, json: String) {
        self.alertID = alertID
        self.level = level
        self.routingKey = routingKey
        self.day = day
        self.json = json
    }
}

/// An event the worker could not process, kept until the broker confirmed it on the dead-letter exchange.
public struct DeadLetter: Sendable, Equatable {
    /// Row id in the store (0 until stored).
    public var seq: Int64
    public var messageID: String
    public var routingKey: String
    public var queue: String
    public var reason: String
    public var body: [UInt8]

    public init(seq: Int64 = 0, messageID: String, routingKey: String, queue: String, reason: String, body: [UInt8]) {
        self.seq = seq
        self.messageID = messageID
        self.routingKey = routingKey
        self.queue = queue
        self.reason = reason
        self.body = body
    }
}

/// What one group commit writes, all in one SQLite transaction.
public struct CommitBatch: Sendable {
    /// Newly applied events: id, dossier, the engine clock they were applied at, the canonical JSON.
    public var events: [(eventID: String, dossier: String, appliedAt: Instant, json: String)] = []
    /// Dossiers whose state changed: code, unit, open, armed timer.
    public var dossiers: [(code: String, unit: String, open: Bool, timer: Instant?)] = []
    public var alerts: [OutboxAlert] = []
    /// The engine clock after the batch.
    public var clock: Instant?
    /// Outbox rows delivered since the last commit (confirmed by the broker; appended to the files): marked in the
    /// same transaction, so delivery bookkeeping costs no fsync of its own.
    public var publishedAlertIDs: [String] = []
    public var filedAlertIDs: [String] = []
    /// Deliveries refused with a reason: stored in the batch that acks them, sent to `sameday.dead` afterwards.
    public var deadLetters: [DeadLetter] = []
    /// Dead letters the broker confirmed since the last commit: deleted.
    public var confirmedDeadLetters: [Int64] = []

    public init() {}
    public var isEmpty: Bool {
        events.isEmpty && dossiers.isEmpty && alerts.isEmpty && clock == nil && publishedAlertIDs.isEmpty
            && filedAlertIDs.isEmpty && deadLetters.isEmpty && confirmedDeadLetters.isEmpty
    }
}

/// Durable worker state in SQLite (WAL, synchronous=FULL): the event log (which is also the set of processed ids,
/// unique per dossier), dossiers with their next timer, the alert and dead-letter outboxes, and the worker's clock. The in-memory engine is rebuilt from
/// the event log at start, so a crash at any point changes nothing: a batch is either all in, or all redelivered.
public final class WorkerStore: Sendable {
    private let database: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        // Readers (a report, the demo's sqlite3, a test) and a second opener wait for the lock instead of failing.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // FULL: an acked event must survive a power cut, not only a process crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        database = try DatabaseQueue(path: path, configuration: configuration)
        try database.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
        }
        try Self.migrator.migrate(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event (
                        arrival INTEGER PRIMARY KEY,
                        event_id TEXT NOT NULL UNIQUE,
                        dossier TEXT NOT NULL,
                        applied_at INTEGER NOT NULL,
                        json TEXT NOT NULL
                    );
                    CREATE TABLE dossier (
                        code TEXT PRIMARY KEY,
                        unit TEXT NOT NULL,
                        open INTEGER NOT NULL,
                        timer_at INTEGER
                    ) WITHOUT ROWID;
                    CREATE INDEX dossier_timer ON dossier(timer_at) WHERE timer_at IS NOT NULL;
                    CREATE TABLE alert (
                        seq INTEGER PRIMARY KEY,
                        alert_id TEXT NOT NULL UNIQUE,
                        level TEXT NOT NULL,
                        routing_key TEXT NOT NULL,
                        day TEXT NOT NULL,
                        json TEXT NOT NULL,
                        published INTEGER NOT NULL DEFAULT 0,
                        filed INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX alert_unpublished ON alert(published) WHERE published = 0;
                    CREATE INDEX alert_unfiled ON alert(filed) WHERE filed = 0;
                    CREATE TABLE worker_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2: event ids unique per dossier, dead-letter outbox, quarantine") { db in
            // An event id is the idempotency key of one dossier's events (DOMAIN.md §3): two dossiers may use the
            // same id, and a log unique on the id alone lost the second one's event at the next restart.
            try db.execute(
                sql: """
                    CREATE TABLE event_v2 (
                        arrival INTEGER PRIMARY KEY,
                        event_id TEXT NOT NULL,
                        dossier TEXT NOT NULL,
                        applied_at INTEGER NOT NULL,
                        json TEXT NOT NULL,
                        UNIQUE (dossier, event_id)
                    );
                    INSERT INTO event_v2 (arrival, event_id, dossier, applied_at, json)
                        SELECT arrival, event_id, dossier, applied_at, json FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v2 RENAME TO event;
                    CREATE TABLE dead_letter (
                        seq INTEGER PRIMARY KEY,
                        message_id TEXT NOT NULL,
                        routing_key TEXT NOT NULL,
                        queue TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        body BLOB NOT NULL
                    );
                    CREATE TABLE event_quarantine (
                        arrival INTEGER PRIMARY KEY,
                        event_id TEXT NOT NULL,
                        dossier TEXT NOT NULL,
                        applied_at INTEGER NOT NULL,
                        json TEXT NOT NULL,
                        reason TEXT NOT NULL
                    );
                    """)
        }
        return migrator
    }

    /// Writes a batch in one transaction. Events already stored are skipped (the dedupe of last resort);
    /// an alert id already in the outbox is kept as it was (the same alert raised twice has the same id).
    public func commit(_ batch: CommitBatch) throws {
        guard !batch.isEmpty else { return }
        try database.write { db in
            let insertEvent = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO event (event_id, dossier, applied_at, json) VALUES (?, ?, ?, ?)")
            for event in batch.events {
                try insertEvent.execute(arguments: [event.eventID, event.dossier, event.appliedAt, event.json])
            }
            let upsertDossier = try db.cachedStatement(
                sql: """
                    INSERT INTO dossier (code, unit, open, timer_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(code) DO UPDATE SET unit = excluded.unit, open = excluded.open, timer_at = excluded.timer_at
                    """)
            for dossier in batch.dossiers {
                try upsertDossier.execute(arguments: [dossier.code, dossier.unit, dossier.open, dossier.timer])
            }
            let insertAlert = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO alert (alert_id, level, routing_key, day, json) VALUES (?, ?, ?, ?, ?)")
            for alert in batch.alerts {
                try insertAlert.execute(arguments: [
                    alert.alertID, alert.level, alert.routingKey, alert.day, alert.json,
                ])
            }
            if !batch.publishedAlertIDs.isEmpty {
                let mark = try db.cachedStatement(sql: "UPDATE alert SET published = 1 WHERE alert_id = ?")
                for id in batch.publishedAlertIDs { try mark.execute(arguments: [id]) }
            }
            if !batch.filedAlertIDs.isEmpty {
                let mark = try db.cachedStatement(sql: "UPDATE alert SET filed = 1 WHERE alert_id = ?")
                for id in batch.filedAlertIDs { try mark.execute(arguments: [id]) }
            }
            if !batch.deadLetters.isEmpty {
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO dead_letter (message_id, routing_key, queue, reason, body) VALUES (?, ?, ?, ?, ?)")
                for letter in batch.deadLetters {
                    try insert.execute(arguments: [
                        letter.messageID, letter.routingKey, letter.queue, letter.reason, Data(letter.body),
                    ])
                }
            }
            if !batch.confirmedDeadLetters.isEmpty {
                let delete = try db.cachedStatement(sql: "DELETE FROM dead_letter WHERE seq = ?")
                for seq in batch.confirmedDeadLetters { try delete.execute(arguments: [seq]) }
            }
            if let clock = batch.clock {
                try db.execute(
                    sql:
                        "INSERT INTO worker_state (key, value) VALUES ('clock', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [clock])
            }
        }
    }

    /// Every stored event in arrival order, with its row id and the clock it was applied at: how the engine is
    /// rebuilt.
    public func forEachEvent(_ body: (_ arrival: Int64, _ json: String, _ appliedAt: Instant) throws -> Void) throws {
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT arrival, json, applied_at FROM event ORDER BY arrival")
            while let row = try rows.next() {
                try body(row[0], row[1], row[2])
            }
        }
    }

    /// Moves stored events that cannot be read back out of the log, with the reason, so that a restart goes on
    /// instead of failing for ever (they stay in `event_quarantine` for an operator).
    public func quarantine(_ rows: [(arrival: Int64, reason: String)]) throws {
        guard !rows.isEmpty else { return }
        try database.write { db in
            for row in rows {
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO event_quarantine (arrival, event_id, dossier, applied_at, json, reason)
                            SELECT arrival, event_id, dossier, applied_at, json, ? FROM event WHERE arrival = ?
                        """, arguments: [row.reason, row.arrival])
                try db.execute(sql: "DELETE FROM event WHERE arrival = ?", arguments: [row.arrival])
            }
        }
    }

    public func quarantinedEventCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event_quarantine") ?? 0 }
    }

    /// Dead letters not yet confirmed by the broker, oldest first.
    public func pendingDeadLetters(limit: Int = 1000) throws -> [DeadLetter] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, message_id, routing_key, queue, reason, body FROM dead_letter ORDER BY seq LIMIT ?",
                arguments: [limit]
            ).map {
                DeadLetter(
                    seq: $0[0], messageID: $0[1], routingKey: $0[2], queue: $0[3], reason: $0[4],
                    body: [UInt8]($0[5] as Data))
            }
        }
    }

    /// Writes raw SQL (tests that simulate a damaged or old state folder).
    public func execute(sql: String) throws { try database.write { db in try db.execute(sql: sql) } }

    public func clock() throws -> Instant? {
        try database.read { db in try Instant.fetchOne(db, sql: "SELECT value FROM worker_state WHERE key = 'clock'") }
    }

    public func eventCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0 }
    }

    public func openDossierCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dossier WHERE open = 1") ?? 0 }
    }

    /// Outbox rows not yet confirmed by the broker, oldest first.
    public func unpublishedAlerts(limit: Int = 1000, offset: Int = 0) throws -> [OutboxAlert] {
        try fetchAlerts(where: "published = 0", limit: limit, offset: offset)
    }

    /// Outbox rows not yet appended to the alerts files, oldest first.
    public func unfiledAlerts(limit: Int = 10_000) throws -> [OutboxAlert] {
        try fetchAlerts(where: "filed = 0", limit: limit)
    }

    public func markPublished(_ ids: [String]) throws { try mark(ids, column: "published") }
    public func markFiled(_ ids: [String]) throws { try mark(ids, column: "filed") }

    /// All alert ids in the outbox (tests and the crash-safety check).
    public func allAlerts() throws -> [OutboxAlert] { try fetchAlerts(where: "1", limit: Int.max) }

    private func fetchAlerts(where condition: String, limit: Int, offset: Int = 0) throws -> [OutboxAlert] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT alert_id, level, routing_key, day, json FROM alert WHERE \(condition) ORDER BY seq LIMIT ? OFFSET ?",
                arguments: [limit, offset]
            ).map { OutboxAlert(alertID: $0[0], level: $0[1], routingKey: $0[2], day: $0[3], json: $0[4]) }
        }
    }

    private func mark(_ ids: [String], column: String) throws {
        guard !ids.isEmpty else { return }
        try database.write { db in
            let statement = try db.cachedStatement(sql: "UPDATE alert SET \(column) = 1 WHERE alert_id = ?")
            for id in ids { try statement.execute(arguments: [id]) }
        }
    }
}
