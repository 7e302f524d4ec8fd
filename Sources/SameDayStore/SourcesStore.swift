import Foundation
import GRDB
import SameDayCore

/// What one commit of `sameday sources` writes, in one SQLite transaction: the units whose last event (or alerted
/// flag) changed, the stream offset consumed up to, the clock, the alerts raised, and the delivery marks of alerts
/// sent since the last commit.
public struct SourcesCommit: Sendable {
    /// Unit code, its newest event's `occurredAt`, and whether its silence since then was reported.
    public var units: [(code: String, lastEventAt: Instant, alerted: Bool)] = []
    /// The newest stream offset whose delivery is covered by this commit (nil: unchanged).
    public var offset: Int64?
    public var clock: Instant?
    public var alerts: [OutboxAlert] = []
    public var publishedAlertIDs: [String] = []
    public var filedAlertIDs: [String] = []

    public init() {}

    public var isEmpty: Bool {
        units.isEmpty && offset == nil && clock == nil && alerts.isEmpty && publishedAlertIDs.isEmpty
            && filedAlertIDs.isEmpty
    }
}

/// The durable state of `sameday sources` in SQLite (WAL, synchronous=FULL): each unit's last event, the offset of
/// the events stream consumed, the clock, and the alert outbox (the same rows as a worker's, so the same delivery
/// code serves both). The offset is written in the transaction that writes what its events changed, so a restart
/// resumes at the next offset: no event counted twice, none missed. Its size follows the number of units, plus the
/// alerts of the last `eventLogDays` days.
public final class SourcesStore: AlertOutboxStore {
    private let database: DatabaseQueue
    private let outbox = SQLiteAlertOutbox()
    public let path: String

    public init(path: String) throws {
        self.path = path
        database = try DurableSQLite.open(path: path, migrator: Self.migrator)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: units, stream offset, alert outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE unit_source (
                        unit TEXT PRIMARY KEY,
                        last_event_at INTEGER NOT NULL,
                        alerted INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    \(SQLiteAlertOutbox.tableV1)
                    CREATE TABLE sources_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2: delivery marks beside the outbox, not in its rows") { db in
            // As the worker's store (its v10); this store keeps the unique index on the alert id.
            try db.execute(sql: SQLiteAlertOutbox.deliveryMarksMigration(uniqueIDs: true))
        }
        return migrator
    }

    /// Writes a commit in one transaction. An alert id already in the outbox is kept as it was.
    public func commit(_ commit: SourcesCommit) throws {
        guard !commit.isEmpty else { return }
        try outbox.write(database) { db, outbox in
            let upsertUnit = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO unit_source (unit, last_event_at, alerted) VALUES (?, ?, ?)")
            for unit in commit.units {
                try upsertUnit.execute(arguments: [unit.code, unit.lastEventAt, unit.alerted ? 1 : 0])
            }
            try outbox.insert(commit.alerts)
            try outbox.mark(published: commit.publishedAlertIDs, filed: commit.filedAlertIDs)
            let setValue = try db.cachedStatement(
                sql:
                    "INSERT INTO sources_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            )
            if let offset = commit.offset { try setValue.execute(arguments: ["offset", offset]) }
            if let clock = commit.clock { try setValue.execute(arguments: ["clock", clock]) }
        }
    }

    /// Every unit's stored state, by unit code.
    public func units() throws -> [(code: String, lastEventAt: Instant, alerted: Bool)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT unit, last_event_at, alerted FROM unit_source ORDER BY unit").map {
                (code: $0[0], lastEventAt: $0[1], alerted: ($0[2] as Int64) != 0)
            }
        }
    }

    /// The newest stream offset committed; the next start consumes from the one after it.
    public func offset() throws -> Int64? { try value("offset") }
    public func clock() throws -> Instant? { try value("clock") }

    private func value(_ key: String) throws -> Int64? {
        try database.read { db in
            try Int64.fetchOne(db, sql: "SELECT value FROM sources_state WHERE key = ?", arguments: [key])
        }
    }

    /// Outbox rows not yet confirmed by the broker, oldest first.
    public func unpublishedAlerts(limit: Int, after seq: Int64) throws -> [(seq: Int64, alert: OutboxAlert)] {
        try database.read { db in try SQLiteAlertOutbox.fetch(.unpublished, limit: limit, after: seq, in: db) }
    }

    /// Outbox rows not yet appended to the alerts files, oldest first.
    public func unfiledAlerts(limit: Int = 10_000) throws -> [OutboxAlert] {
        try fetchAlerts(.unfiled, limit: limit)
    }

    /// Marks outbox rows as confirmed by the broker, in a transaction of their own.
    public func markPublished(_ ids: [String]) throws {
        var marks = SourcesCommit()
        marks.publishedAlertIDs = ids
        try commit(marks)
    }

    /// Marks outbox rows as appended to the alert files, in a transaction of their own.
    public func markFiled(_ ids: [String]) throws {
        var marks = SourcesCommit()
        marks.filedAlertIDs = ids
        try commit(marks)
    }

    /// None: a stream delivery cannot be dead-lettered (the stream keeps it for the workers), so `sameday sources`
    /// stores no dead letters.
    public func pendingDeadLetters(limit: Int) throws -> [DeadLetter] { [] }

    /// Every alert in the outbox, oldest first (tests, operators).
    public func allAlerts() throws -> [OutboxAlert] { try fetchAlerts(.all, limit: Int.max) }

    /// Removes alerts delivered both ways whose day is before `day` (YYYY-MM-DD), at most `limit`; returns how many.
    @discardableResult
    public func pruneAlerts(before day: String, limit: Int = 2000) throws -> Int {
        try outbox.write(database) { _, outbox in try outbox.prune(before: day, limit: limit) }
    }

    private func fetchAlerts(_ selection: SQLiteAlertOutbox.Selection, limit: Int) throws -> [OutboxAlert] {
        try database.read { db in try SQLiteAlertOutbox.fetch(selection, limit: limit, after: 0, in: db).map(\.alert) }
    }
}
