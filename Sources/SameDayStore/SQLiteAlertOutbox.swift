import GRDB
import GRDBSQLite
import Synchronization

/// The alert outbox as both SQLite stores keep it (`WorkerStore`, `SourcesStore`): the `alert` table (a row per
/// alert id, written once) and beside it `alert_undelivered` (a narrow row per alert not yet delivered both ways:
/// `published`, the broker confirmed it; `filed`, the alert files hold it), written inside their transactions and
/// read oldest first.
///
/// The marks sit apart from the alert because an alert is marked after the commit that stored it: a mark in its
/// row rewrote the row, JSON and all, so each alert went to the write-ahead log twice (a fifth of a worker's log
/// pages). A mark now changes or deletes a few bytes at the end of the narrow table, and what waits for delivery is
/// read from that table alone (a start, a broker's return), whatever the number of delivered alerts kept.
///
/// Which row holds which alert id is kept in memory (`OutboxRows`), not in an index of the file. Alert ids are
/// hashes, so an index on them took a write to a random page of it for every alert stored, and each delivery mark
/// searched it again: a quarter of a worker's commit thread. In memory, the id of a stored alert is found at no cost
/// of the file, and the marks update rows by their number, at the table's end where the recent alerts are. The
/// index is read from the table at the first write that stores or marks alerts (not at a store's opening: a
/// restart's first commit usually has none, so the read runs behind the consume loop), and read again whenever the
/// table's newest row is not the one this outbox last wrote or saw (another opener of the file added alerts).
final class SQLiteAlertOutbox: Sendable {
    /// The table and its indexes as the first migration of each store created them. Part of those migrations:
    /// never edit it; a change is a new migration in each store (`WorkerStore`'s v9 rebuilt it without the unique
    /// index on `alert_id`; `sameday sources`' store keeps it, a last guard behind the ids held in memory).
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

    /// The migration that moved the delivery marks out of `alert` into `alert_undelivered` (v10 of `WorkerStore`,
    /// v2 of `SourcesStore`): the marks of alerts still waiting are kept, the table is rebuilt without its mark
    /// columns and their indexes. `uniqueIDs` keeps the unique index on `alert_id` of a store that had it (see
    /// `tableV1`). Part of those migrations: never edit it.
    static func deliveryMarksMigration(uniqueIDs: Bool) -> String {
        """
        CREATE TABLE alert_undelivered (
            seq INTEGER PRIMARY KEY,
            published INTEGER NOT NULL,
            filed INTEGER NOT NULL
        );
        INSERT INTO alert_undelivered (seq, published, filed)
            SELECT seq, published, filed FROM alert WHERE published = 0 OR filed = 0 ORDER BY seq;
        CREATE TABLE alert_v10 (
            seq INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL\(uniqueIDs ? " UNIQUE" : ""),
            level TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            day TEXT NOT NULL,
            json TEXT NOT NULL
        );
        INSERT INTO alert_v10 SELECT seq, alert_id, level, routing_key, day, json FROM alert ORDER BY seq;
        DROP TABLE alert;
        ALTER TABLE alert_v10 RENAME TO alert;
        """
    }

    private let rows = Mutex(OutboxRows())

    init() {}

    /// Runs `body` in one transaction of `database` with the outbox at hand (`OutboxWrite`). What the transaction
    /// stored or removed joins the ids held in memory only once it is in; one that failed leaves them as they were.
    func write<T: Sendable>(_ database: DatabaseQueue, _ body: (Database, OutboxWrite) throws -> T) throws -> T {
        try rows.withLock { rows in
            rows.pending = .init()
            do {
                let result = try database.write { db in try body(db, OutboxWrite(db: db, rows: rows)) }
                rows.applyPending()
                return result
            } catch {
                rows.pending = .init()
                throw error
            }
        }
    }

    /// Which alerts a read of the outbox returns.
    enum Selection {
        case unpublished, unfiled, all

        /// The query of `fetch`: the waiting alerts through `alert_undelivered`, or every row of `alert`.
        ///
        /// `CROSS JOIN` makes SQLite walk `alert_undelivered` and look each row up in `alert`, never the other way.
        /// With a plain `JOIN` and no statistics (a store never runs ANALYZE) it chose to walk `alert` in `seq` order
        /// and look each row up in the narrow table: every read of what waits scanned every alert kept (0.1–0.2 s
        /// with a million kept), twice at each start (files, then broker), growing with the history kept.
        var sql: String {
            let columns = "SELECT a.seq, a.alert_id, a.level, a.routing_key, a.day, a.json"
            return switch self {
            case .unpublished:
                columns + " FROM alert_undelivered AS u CROSS JOIN alert AS a ON a.seq = u.seq"
                    + " WHERE u.published = 0 AND u.seq > ? ORDER BY u.seq LIMIT ?"
            case .unfiled:
                columns + " FROM alert_undelivered AS u CROSS JOIN alert AS a ON a.seq = u.seq"
                    + " WHERE u.filed = 0 AND u.seq > ? ORDER BY u.seq LIMIT ?"
            case .all:
                columns + " FROM alert AS a WHERE a.seq > ? ORDER BY a.seq LIMIT ?"
            }
        }
    }

    /// The alerts `selection` names whose row number is after `seq`, oldest first, with their numbers. The waiting
    /// ones are found through `alert_undelivered` (only they are in it), so a start or a broker's return reads what
    /// waits, not the delivered alerts kept.
    static func fetch(_ selection: Selection, limit: Int, after seq: Int64, in db: Database) throws
        -> [(seq: Int64, alert: OutboxAlert)]
    {
        try Row.fetchAll(db, sql: selection.sql, arguments: [seq, limit]).map {
            (seq: $0[0], alert: OutboxAlert(alertID: $0[1], level: $0[2], routingKey: $0[3], day: $0[4], json: $0[5]))
        }
    }
}

/// The outbox inside one transaction of its store (`SQLiteAlertOutbox.write`).
struct OutboxWrite {
    let db: Database
    fileprivate let rows: OutboxRows

    /// Adds alerts; an id already in the outbox is kept as it was (the same alert raised twice has the same id).
    func insert(_ alerts: [OutboxAlert]) throws {
        guard !alerts.isEmpty else { return }
        try rows.refresh(db)
        let insert = try RowStatement(
            db, sql: "INSERT OR IGNORE INTO alert (alert_id, level, routing_key, day, json) VALUES (?, ?, ?, ?, ?)")
        let waiting = try RowStatement(
            db, sql: "INSERT INTO alert_undelivered (seq, published, filed) VALUES (?, 0, 0)")
        for alert in alerts {
            let key = OutboxKey(alert.alertID)
            guard rows.seq(of: key) == nil else { continue }
            try insert.bind(1, alert.alertID)
            try insert.bind(2, alert.level)
            try insert.bind(3, alert.routingKey)
            try insert.bind(4, alert.day)
            try insert.bind(5, alert.json)
            try insert.step()
            // Ignored only by a table that kept the unique index (see `tableV1`) and an id the memory lacked.
            guard db.changesCount == 1 else { continue }
            let seq = db.lastInsertedRowID
            rows.pending.added[key] = seq
            try waiting.bind(1, seq)
            try waiting.step()
        }
    }

    /// Marks alerts delivered: confirmed by the broker (`published`), appended to the files (`filed`). An alert
    /// delivered both ways leaves `alert_undelivered`: one delete for an alert both confirmed and filed since the
    /// last commit, the usual case. Ids no longer in the outbox (pruned once delivered both ways) are passed over.
    func mark(published: [String], filed: [String]) throws {
        guard !published.isEmpty || !filed.isEmpty else { return }
        try rows.refresh(db)
        var marks: [Int64: (published: Bool, filed: Bool)] = [:]
        marks.reserveCapacity(max(published.count, filed.count))
        for id in published {
            if let seq = rows.seq(of: OutboxKey(id)) { marks[seq, default: (false, false)].published = true }
        }
        for id in filed {
            if let seq = rows.seq(of: OutboxKey(id)) { marks[seq, default: (false, false)].filed = true }
        }
        // Statements come from GRDB's cache: preparing one that goes unused costs a lookup.
        let delivered = try RowStatement(db, sql: "DELETE FROM alert_undelivered WHERE seq = ?")
        let publishedOnly = try RowStatement(db, sql: "UPDATE alert_undelivered SET published = 1 WHERE seq = ?")
        let filedOnly = try RowStatement(db, sql: "UPDATE alert_undelivered SET filed = 1 WHERE seq = ?")
        // A one-way mark completes an alert marked the other way before: then it leaves too.
        let completed = try RowStatement(
            db, sql: "DELETE FROM alert_undelivered WHERE seq = ? AND published = 1 AND filed = 1")
        // In row order: the rows are at the end of the table, one page after another.
        for (seq, mark) in marks.sorted(by: { $0.key < $1.key }) {
            if mark.published && mark.filed {
                try delivered.bind(1, seq)
                try delivered.step()
                continue
            }
            let update = mark.published ? publishedOnly : filedOnly
            try update.bind(1, seq)
            try update.step()
            try completed.bind(1, seq)
            try completed.step()
        }
    }

    /// Removes alerts delivered both ways whose day is before `day` (YYYY-MM-DD), from the head of the outbox only
    /// (a few undelivered rows there only wait for their delivery), at most `limit` rows looked at; returns how many.
    func prune(before day: String, limit: Int) throws -> Int {
        let removed = try String.fetchAll(
            db,
            sql: """
                DELETE FROM alert WHERE seq IN (SELECT seq FROM alert ORDER BY seq LIMIT ?) AND day < ?
                    AND NOT EXISTS (SELECT 1 FROM alert_undelivered AS u WHERE u.seq = alert.seq)
                RETURNING alert_id
                """, arguments: [limit, day])
        rows.pending.removed += removed.map(OutboxKey.init)
        return removed.count
    }
}

/// Which row of the outbox holds each alert id: what an index of the file on `alert_id` would give
/// (`SQLiteAlertOutbox`). Only used under its outbox's lock, inside the store's transaction.
private final class OutboxRows: @unchecked Sendable {
    private var seqByID: [OutboxKey: Int64] = [:]
    /// The newest row this outbox wrote or read; nil before the table is read.
    private var newest: Int64?
    /// What the transaction under way stored and removed.
    var pending = Pending()

    struct Pending {
        var added: [OutboxKey: Int64] = [:]
        var removed: [OutboxKey] = []
        /// The table's newest row was compared with `newest` in this transaction (once is enough: what it adds
        /// is in `added`).
        var checked = false
    }

    func seq(of key: OutboxKey) -> Int64? { pending.added[key] ?? seqByID[key] }

    /// Reads the ids from the table at first, and again when its newest row is not the one last seen here: another
    /// opener of the file wrote alerts, or every row was pruned. (Rows another opener only pruned stay known here;
    /// marking them finds nothing, and an id of theirs raised again is taken as stored.) A prune needs no read: the
    /// rows it removes leave the memory with its transaction, read or not.
    func refresh(_ db: Database) throws {
        guard !pending.checked else { return }
        pending.checked = true
        let newestInTable = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM alert") ?? 0
        guard newest != newestInTable else { return }
        seqByID.removeAll(keepingCapacity: true)
        // Rows are numbered in order and pruned from the head: the span of numbers bounds the count.
        let oldest = try Int64.fetchOne(db, sql: "SELECT min(seq) FROM alert") ?? newestInTable
        seqByID.reserveCapacity(Int(clamping: max(0, newestInTable - oldest + 1)))
        // Stepped through SQLite's C API, the hex ids parsed from their bytes: a store holds a few hundred thousand.
        let statement = try db.makeStatement(sql: "SELECT seq, alert_id FROM alert")
        try forEachRawRow(of: statement, in: db) { raw in
            let bytes = UnsafeBufferPointer(
                start: sqlite3_column_text(raw, 1), count: Int(sqlite3_column_bytes(raw, 1)))
            seqByID[OutboxKey(utf8: bytes)] = sqlite3_column_int64(raw, 0)
        }
        newest = newestInTable
    }

    func applyPending() {
        for key in pending.removed { seqByID[key] = nil }
        for (key, seq) in pending.added {
            seqByID[key] = seq
            newest = max(newest ?? 0, seq)
        }
        pending = Pending()
    }
}

/// An alert id as the outbox holds it in memory: the 16 lower-case hex digits of `Alert.id` as their number (no
/// string storage), any other id as its text. Each id has exactly one key.
private enum OutboxKey: Hashable {
    case hash(UInt64)
    case text(String)

    init(_ id: String) {
        var text = id
        self = text.withUTF8 { bytes in Self.hex(bytes).map { .hash($0) } ?? .text(id) }
    }

    /// From the id's UTF-8 bytes (a string is made only for an id that is not 16 hex digits).
    init(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        self = Self.hex(bytes).map { .hash($0) } ?? .text(String(decoding: bytes, as: UTF8.self))
    }

    private static func hex(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard bytes.count == 16 else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }
}
