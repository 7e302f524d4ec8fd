import GRDB

/// The alert outbox as both SQLite stores keep it (`WorkerStore`, `SourcesStore`): the `alert` table (a row per
/// alert id, with its delivery marks `published` and `filed`), written inside their transactions and read oldest
/// first.
enum SQLiteAlertOutbox {
    /// The table and its indexes as the first migration of each store created them. Part of those migrations:
    /// never edit it; a change is a new migration in each store.
    static let tableV1 = """
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
        """

    /// Adds alerts; an id already in the outbox is kept as it was (the same alert raised twice has the same id).
    static func insert(_ alerts: [OutboxAlert], in db: Database) throws {
        guard !alerts.isEmpty else { return }
        let insert = try RowStatement(
            db, sql: "INSERT OR IGNORE INTO alert (alert_id, level, routing_key, day, json) VALUES (?, ?, ?, ?, ?)")
        for alert in alerts {
            try insert.bind(1, alert.alertID)
            try insert.bind(2, alert.level)
            try insert.bind(3, alert.routingKey)
            try insert.bind(4, alert.day)
            try insert.bind(5, alert.json)
            try insert.step()
        }
    }

    enum Mark: String {
        case published, filed
    }

    /// Marks alerts delivered one way (confirmed by the broker, or appended to the files).
    static func mark(_ ids: [String], _ mark: Mark, in db: Database) throws {
        guard !ids.isEmpty else { return }
        let statement = try RowStatement(db, sql: "UPDATE alert SET \(mark.rawValue) = 1 WHERE alert_id = ?")
        for id in ids {
            try statement.bind(1, id)
            try statement.step()
        }
    }

    /// Alerts matching `condition` (an SQL expression over the table's columns), oldest first.
    static func fetch(where condition: String, limit: Int, offset: Int, in db: Database) throws -> [OutboxAlert] {
        try Row.fetchAll(
            db,
            sql:
                "SELECT alert_id, level, routing_key, day, json FROM alert WHERE \(condition) ORDER BY seq LIMIT ? OFFSET ?",
            arguments: [limit, offset]
        ).map { OutboxAlert(alertID: $0[0], level: $0[1], routingKey: $0[2], day: $0[3], json: $0[4]) }
    }

    /// Removes alerts delivered both ways whose day is before `day` (YYYY-MM-DD), from the head of the outbox only
    /// (a few undelivered rows there only wait for their delivery), at most `limit` rows looked at; returns how many.
    static func prune(before day: String, limit: Int, in db: Database) throws -> Int {
        try db.execute(
            sql: """
                DELETE FROM alert WHERE seq IN (SELECT seq FROM alert ORDER BY seq LIMIT ?)
                    AND day < ? AND published = 1 AND filed = 1
                """, arguments: [limit, day])
        return db.changesCount
    }
}
