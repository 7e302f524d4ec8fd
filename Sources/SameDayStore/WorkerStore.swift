import Foundation
import GRDB
import GRDBSQLite
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
    /// The refusal's stable code (`EventRefusal.code`); empty for rows stored before it existed.
    public var refusal: String
    public var body: [UInt8]

    /// The text fields come from outside (a message id or routing key may hold a NUL, which SQLite's text reader
    /// would cut): their control characters are escaped, so what is stored reads back as it was written.
    public init(
        seq: Int64 = 0, messageID: String, routingKey: String, queue: String, reason: String, refusal: String = "",
        body: [UInt8]
    ) {
        self.seq = seq
        self.messageID = Printable.escaped(messageID, limit: 1000)
        self.routingKey = Printable.escaped(routingKey, limit: 1000)
        self.queue = queue
        self.reason = Printable.escaped(reason, limit: 2000)
        self.refusal = refusal
        self.body = body
    }
}

/// What one group commit writes, all in one SQLite transaction.
public struct CommitBatch: Sendable {
    /// Newly applied events for the audit log: id, dossier, the engine clock they were applied at, the bytes that
    /// arrived (they decoded to the applied event, so they read back as it).
    public var events: [(eventID: String, dossier: String, appliedAt: Instant, body: [UInt8])] = []
    /// Dossiers whose state changed: the key of the row, code and compact state (`DossierRecord`). The engine gives
    /// each dossier a key at its first commit, counting up, and keeps it while it holds the dossier. SQLite keys the
    /// rows by it, so the rows a commit rewrites (dossiers still in play) sit together at the end of the table: keyed
    /// by code they were spread over all of it, and each commit rewrote a page per dossier. PostgreSQL keys rows by
    /// code and ignores it.
    public var dossiers: [(key: Int64, code: String, state: [UInt8])] = []
    /// Dossiers retired: their rows leave (by key; 0: the dossier has no row), a tombstone stays (`retired_at`),
    /// and abandoned ones count per unit code and field name (`retired_stock`).
    public var retired: [(key: Int64, code: String, at: Instant, abandonedIn: RetiredStockKey?)] = []
    public var alerts: [OutboxAlert] = []
    /// The engine clock after the batch.
    public var clock: Instant?
    /// The first and the last day of the shard's events (what the rollup files cover).
    public var firstDay: Int64?
    public var lastEventDay: Int64?
    /// Outbox rows delivered since the last commit (confirmed by the broker; appended to the files): marked in the
    /// same transaction, so delivery bookkeeping costs no fsync of its own.
    public var publishedAlertIDs: [String] = []
    public var filedAlertIDs: [String] = []
    /// Deliveries refused with a reason: stored in the batch that acks them, sent to `sameday.dead` afterwards.
    public var deadLetters: [DeadLetter] = []
    /// Dead letters the broker confirmed since the last commit: deleted.
    public var confirmedDeadLetters: [Int64] = []
    /// The queue forecast's stored part of each unit it changed (`QueueForecast.encode(unit:)`), by unit code.
    public var forecastUnits: [(unit: String, state: [UInt8])] = []
    /// `dossiers` and `forecastUnits` hold every change since the last batch that saved them, so the rows are now
    /// current up to this batch's last event: a store that defers rows (`ShardStore.defersDossierRows`) records how
    /// far, and a restart replays only the events logged after it.
    public var savesRows = false
    /// With `savesRows`: the dossiers held after this batch, so the rows in the table. A restart reserves room for
    /// them from this instead of counting the table (a scan of every row).
    public var heldDossiers: Int?

    public init() {}
    public var isEmpty: Bool {
        events.isEmpty && dossiers.isEmpty && retired.isEmpty && alerts.isEmpty && clock == nil
            && forecastUnits.isEmpty && !savesRows
            && publishedAlertIDs.isEmpty && filedAlertIDs.isEmpty && deadLetters.isEmpty && confirmedDeadLetters.isEmpty
    }
}

/// What `prune` removed in one slice.
public struct PruneResult: Sendable, Equatable {
    public var events = 0
    public var tombstones = 0
    public var alerts = 0
    public var total: Int { events + tombstones + alerts }
    public init() {}
}

/// Durable worker state in SQLite (WAL, synchronous=FULL): each open or retained dossier's compact state (what a
/// restart loads, saved every few seconds: `CommitBatch.savesRows`), tombstones of retired dossiers, the alert and
/// dead-letter outboxes, the worker's clock, and the event log, an audit trail of which a restart reads only the
/// tail after the last save. A crash at any point changes nothing: a batch is either all in, or all redelivered.
/// Everything that would grow with history (the log, tombstones, delivered alerts) is pruned in
/// small slices by `prune`.
public final class WorkerStore: ShardStore {
    private let database: DatabaseQueue
    private let outbox = SQLiteAlertOutbox()
    public let path: String
    public var location: String { path }

    public init(path: String) throws {
        self.path = path
        database = try DurableSQLite.open(path: path, migrator: Self.migrator) { db in
            // The dossier table is read at every upsert: keep its pages in memory (64 MiB of cache, and the file
            // mapped) instead of a read(2) per B-tree page.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            try Self.mapFile(db)
            // Checkpoint every 32 MiB of log rather than every 4 MiB: a dossier page rewritten by many commits
            // is copied into the database once per checkpoint, not once per commit. The log is cut back after.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 8192")
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        }
    }

    /// Reads through the file mapped (up to 1 GiB) rather than a read(2) per page; every connection to it.
    static func mapFile(_ db: Database) throws { try db.execute(sql: "PRAGMA mmap_size = 1073741824") }

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
                    \(SQLiteAlertOutbox.tableV1)
                    CREATE TABLE worker_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2: event ids unique per dossier, dead-letter outbox, quarantine") { db in
            // An event id is the idempotency key of one dossier's events (docs/rules.md §3.4): two dossiers may use the
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
        migrator.registerMigration("v3: dossier state rows, tombstones, the event log as an audit trail") { db in
            // A restart loads dossier rows instead of replaying the log. A state folder of an older version keeps
            // its log; the worker builds the dossier rows from it once (`needsDossierRebuild`).
            let logged = try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0
            try db.execute(
                sql: """
                    CREATE TABLE event_log (
                        arrival INTEGER PRIMARY KEY,
                        dossier TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        applied_at INTEGER NOT NULL,
                        body BLOB NOT NULL
                    );
                    INSERT INTO event_log (arrival, dossier, event_id, applied_at, body)
                        SELECT arrival, dossier, event_id, applied_at, CAST(json AS BLOB) FROM event ORDER BY arrival;
                    DROP TABLE event;
                    DROP INDEX IF EXISTS dossier_timer;
                    DROP TABLE dossier;
                    CREATE TABLE dossier (code TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE dossier_quarantine (code TEXT PRIMARY KEY, state BLOB NOT NULL, reason TEXT NOT NULL)
                        WITHOUT ROWID;
                    CREATE TABLE retired (
                        code TEXT PRIMARY KEY, hash INTEGER NOT NULL, retired_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX retired_by_time ON retired(retired_at);
                    CREATE TABLE retired_stock (unit TEXT PRIMARY KEY, dossiers INTEGER NOT NULL) WITHOUT ROWID;
                    """)
            if logged > 0 {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO worker_state (key, value) VALUES ('dossiers_from_log', 1)")
            }
        }
        migrator.registerMigration("v4: retired abandoned dossiers counted per unit and field") { db in
            // Rows retired before v4 did not record the field: they count under the empty field name, which a
            // configuration maps to its unlisted row (`Configuration.fieldID(named:)`).
            try db.execute(
                sql: """
                    CREATE TABLE retired_stock_v4 (
                        unit TEXT NOT NULL, field TEXT NOT NULL, dossiers INTEGER NOT NULL, PRIMARY KEY (unit, field)
                    ) WITHOUT ROWID;
                    INSERT INTO retired_stock_v4 (unit, field, dossiers) SELECT unit, '', dossiers FROM retired_stock;
                    DROP TABLE retired_stock;
                    ALTER TABLE retired_stock_v4 RENAME TO retired_stock;
                    """)
        }
        migrator.registerMigration("v5: tombstones load from their index alone") { db in
            // A restart reads every tombstone's hash by time. With an index on the time alone, each row cost a
            // search of the table by code: 2.2 s of CPU for 1.5 M tombstones, the restart's growth in a year at the
            // city's volume. With the hash in the index the same read is 0.1 s (the code, the table's key, is in
            // every index entry already, so pruning by time is covered too).
            try db.execute(
                sql: """
                    DROP INDEX retired_by_time;
                    CREATE INDEX retired_by_time ON retired(retired_at, hash);
                    """)
        }
        migrator.registerMigration("v6: dossier rows keyed by the engine's number, in order of first commit") { db in
            // Keyed by code, the rows a commit rewrites were spread over the whole table: each commit wrote a page
            // of it (to the log, then to the file at a checkpoint) for nearly every dossier it touched. Keyed by a
            // number given at first commit, the dossiers in play sit together at the table's end. No index on the
            // code: the engine holds every row's key, and an index would cost a random page write per new dossier.
            try db.execute(
                sql: """
                    CREATE TABLE dossier_v6 (id INTEGER PRIMARY KEY, code TEXT NOT NULL, state BLOB NOT NULL);
                    INSERT INTO dossier_v6 (code, state) SELECT code, state FROM dossier ORDER BY code;
                    DROP TABLE dossier;
                    ALTER TABLE dossier_v6 RENAME TO dossier;
                    """)
        }
        migrator.registerMigration("v7: a dead letter's refusal code") { db in
            try db.execute(sql: "ALTER TABLE dead_letter ADD COLUMN refusal TEXT NOT NULL DEFAULT ''")
        }
        migrator.registerMigration("v8: the queue forecast's state per unit") { db in
            try db.execute(
                sql: "CREATE TABLE forecast_unit (unit TEXT PRIMARY KEY, state BLOB NOT NULL) WITHOUT ROWID")
        }
        migrator.registerMigration("v9: the outbox without an index on the alert id") { db in
            // The ids are hashes: their unique index took a write to a random page of it for every alert stored.
            // The outbox holds which row has which id in memory instead (`SQLiteAlertOutbox`). Unfiled alerts are
            // read only at start, so they are found by reading the outbox (a day of alerts, and what waits for
            // delivery) rather than through an index every alert enters and leaves again.
            try db.execute(
                sql: """
                    CREATE TABLE alert_v9 (
                        seq INTEGER PRIMARY KEY,
                        alert_id TEXT NOT NULL,
                        level TEXT NOT NULL,
                        routing_key TEXT NOT NULL,
                        day TEXT NOT NULL,
                        json TEXT NOT NULL,
                        published INTEGER NOT NULL DEFAULT 0,
                        filed INTEGER NOT NULL DEFAULT 0
                    );
                    INSERT INTO alert_v9 SELECT seq, alert_id, level, routing_key, day, json, published, filed
                        FROM alert ORDER BY seq;
                    DROP TABLE alert;
                    ALTER TABLE alert_v9 RENAME TO alert;
                    CREATE INDEX alert_unpublished ON alert(published) WHERE published = 0;
                    """)
        }
        migrator.registerMigration("v10: delivery marks beside the outbox, not in its rows") { db in
            // A mark rewrote the alert's row, JSON and all, a commit after the one that stored it: a fifth of the
            // pages a drain wrote to the log. The index of unpublished alerts goes with the column: what waits is
            // what `alert_undelivered` holds.
            try db.execute(sql: SQLiteAlertOutbox.deliveryMarksMigration(uniqueIDs: false))
        }
        return migrator
    }

    /// SQLite's codes for a write the device refused (full, read-only, I/O error, a file it could not open, memory,
    /// a lock held elsewhere): the transaction was rolled back and the same batch may be written again.
    public func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        switch error.resultCode.primaryResultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_BUSY, .SQLITE_LOCKED,
            .SQLITE_NOMEM, .SQLITE_PROTOCOL:
            return true
        default:
            return false
        }
    }

    /// Writes a batch in one transaction. An alert id already in the outbox is kept as it was (the same alert
    /// raised twice has the same id).
    public func commit(_ batch: CommitBatch) throws {
        guard !batch.isEmpty else { return }
        try outbox.write(database) { db, outbox in
            if !batch.events.isEmpty {
                let insertEvent = try RowStatement(
                    db, sql: "INSERT INTO event_log (dossier, event_id, applied_at, body) VALUES (?, ?, ?, ?)")
                for event in batch.events {
                    try insertEvent.bind(1, event.dossier)
                    try insertEvent.bind(2, event.eventID)
                    try insertEvent.bind(3, event.appliedAt)
                    try insertEvent.bind(4, event.body)
                    try insertEvent.step()
                }
            }
            if !batch.dossiers.isEmpty {
                // Once a row is in, only its state changes (the code stays as first written).
                let upsertDossier = try RowStatement(
                    db,
                    sql: """
                        INSERT INTO dossier (id, code, state) VALUES (?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET state = excluded.state
                        """)
                for dossier in batch.dossiers {
                    try upsertDossier.bind(1, dossier.key)
                    try upsertDossier.bind(2, dossier.code)
                    try upsertDossier.bind(3, dossier.state)
                    try upsertDossier.step()
                }
            }
            if !batch.retired.isEmpty {
                let delete = try db.cachedStatement(sql: "DELETE FROM dossier WHERE id = ?")
                let tombstone = try db.cachedStatement(
                    sql: "INSERT OR REPLACE INTO retired (code, hash, retired_at) VALUES (?, ?, ?)")
                let stock = try db.cachedStatement(
                    sql: """
                        INSERT INTO retired_stock (unit, field, dossiers) VALUES (?, ?, 1)
                        ON CONFLICT(unit, field) DO UPDATE SET dossiers = dossiers + 1
                        """)
                for dossier in batch.retired {
                    try delete.execute(arguments: [dossier.key])
                    // The hash is what a restart loads (no string per tombstone); the code is for an operator.
                    try tombstone.execute(arguments: [
                        dossier.code, Int64(bitPattern: FNV1a.hash(dossier.code)), dossier.at,
                    ])
                    if let key = dossier.abandonedIn { try stock.execute(arguments: [key.unit, key.field]) }
                }
            }
            try outbox.insert(batch.alerts)
            try outbox.mark(published: batch.publishedAlertIDs, filed: batch.filedAlertIDs)
            if !batch.deadLetters.isEmpty {
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO dead_letter (message_id, routing_key, queue, reason, refusal, body)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """
                )
                for letter in batch.deadLetters {
                    try insert.execute(arguments: [
                        letter.messageID, letter.routingKey, letter.queue, letter.reason, letter.refusal,
                        Data(letter.body),
                    ])
                }
            }
            if !batch.confirmedDeadLetters.isEmpty {
                let delete = try db.cachedStatement(sql: "DELETE FROM dead_letter WHERE seq = ?")
                for seq in batch.confirmedDeadLetters { try delete.execute(arguments: [seq]) }
            }
            if !batch.forecastUnits.isEmpty {
                let upsert = try db.cachedStatement(
                    sql: """
                        INSERT INTO forecast_unit (unit, state) VALUES (?, ?)
                        ON CONFLICT(unit) DO UPDATE SET state = excluded.state
                        """)
                for row in batch.forecastUnits {
                    upsert.setUncheckedArguments([row.unit, Data(row.state)])
                    try upsert.execute()
                }
            }
            let setValue = try db.cachedStatement(
                sql:
                    "INSERT INTO worker_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            )
            if let clock = batch.clock { try setValue.execute(arguments: ["clock", clock]) }
            if batch.savesRows {
                // The log's newest row is never pruned (see `prune`), so this arrival is never handed out again.
                let newest = try Int64.fetchOne(db, sql: "SELECT max(arrival) FROM event_log") ?? 0
                try setValue.execute(arguments: ["rows_through_arrival", newest])
                if let held = batch.heldDossiers { try setValue.execute(arguments: ["rows_held", held]) }
                if let clock = batch.clock {
                    try setValue.execute(arguments: ["rows_clock", clock])
                } else {
                    // Saved before any event: the tail's events are replayed at their own instants.
                    try db.execute(sql: "DELETE FROM worker_state WHERE key = 'rows_clock'")
                }
            }
            if let day = batch.firstDay { try setValue.execute(arguments: ["first_day", day]) }
            if let day = batch.lastEventDay { try setValue.execute(arguments: ["last_event_day", day]) }
        }
    }

    /// The queue forecast's stored part of every unit (a restart restores it before loading the dossiers).
    public func forecastUnits() throws -> [(unit: String, state: [UInt8])] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT unit, state FROM forecast_unit ORDER BY unit").map {
                (unit: $0["unit"], state: [UInt8]($0["state"] as Data))
            }
        }
    }

    /// Every stored dossier (key, code and compact state), in key order: what a restart loads.
    public func forEachDossierRecord(
        _ body: (_ key: Int64, _ code: String, _ state: UnsafeBufferPointer<UInt8>) throws -> Void
    ) throws {
        try database.read { db in
            // Stepped through SQLite's C API: a restart reads a million rows.
            let statement = try db.makeStatement(sql: "SELECT id, code, state FROM dossier")
            try forEachRawRow(of: statement, in: db) { raw in
                let key = sqlite3_column_int64(raw, 0)
                let code =
                    sqlite3_column_text(raw, 1).map {
                        String(
                            decoding: UnsafeBufferPointer(start: $0, count: Int(sqlite3_column_bytes(raw, 1))),
                            as: UTF8.self)
                    } ?? ""
                // The blob first, then its length (SQLite's documented order); the buffer is valid until the next
                // step.
                let blob = sqlite3_column_blob(raw, 2)
                let length = Int(sqlite3_column_bytes(raw, 2))
                try body(
                    key, code,
                    UnsafeBufferPointer(
                        start: blob?.assumingMemoryBound(to: UInt8.self), count: blob == nil ? 0 : length))
            }
        }
    }

    /// Moves dossier rows that cannot be read back aside, with the reason, so a restart goes on.
    public func quarantineDossiers(_ rows: [(key: Int64, code: String, reason: String)]) throws {
        guard !rows.isEmpty else { return }
        try database.write { db in
            for row in rows {
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO dossier_quarantine (code, state, reason)
                            SELECT code, state, ? FROM dossier WHERE id = ?
                        """, arguments: [row.reason, row.key])
                try db.execute(sql: "DELETE FROM dossier WHERE id = ?", arguments: [row.key])
            }
        }
    }

    public func quarantinedDossierCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dossier_quarantine") ?? 0 }
    }

    /// Tombstones of dossiers retired at or after `since`, oldest first: the FNV-1a hash of the code (what the
    /// worker checks against) and when.
    public func tombstones(since: Instant, _ body: (_ hash: UInt64, _ at: Instant) -> Void) throws {
        try database.read { db in try Self.tombstones(in: db, since: since, body) }
    }

    static func tombstones(in db: Database, since: Instant, _ body: (_ hash: UInt64, _ at: Instant) -> Void) throws {
        // Stepped through SQLite's C API, as `forEachDossier`: a restart reads every tombstone of the window.
        let statement = try db.makeStatement(
            sql: "SELECT hash, retired_at FROM retired WHERE retired_at >= ? ORDER BY retired_at")
        try statement.setArguments([since])
        try forEachRawRow(of: statement, in: db) { raw in
            body(UInt64(bitPattern: sqlite3_column_int64(raw, 0)), sqlite3_column_int64(raw, 1))
        }
    }

    /// A second connection, read-only: in WAL mode it reads while this store's own connection reads the rows.
    public func sideReader() throws -> (any RestartReads)? { try WorkerStoreReader(path: path) }

    /// The most recently retired dossier's code (tests, an operator).
    public func lastTombstone() throws -> String? {
        try database.read { db in
            try String.fetchOne(db, sql: "SELECT code FROM retired ORDER BY retired_at DESC LIMIT 1")
        }
    }

    /// Retired abandoned dossiers per unit code and field name.
    public func retiredStock() throws -> [RetiredStockKey: Int] {
        try database.read { db in try Self.retiredStock(in: db) }
    }

    static func retiredStock(in db: Database) throws -> [RetiredStockKey: Int] {
        var out: [RetiredStockKey: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT unit, field, dossiers FROM retired_stock") {
            out[RetiredStockKey(unit: row[0], field: row[1])] = row[2]
        }
        return out
    }

    /// Whether the dossier rows must be built from the event log once (a state folder of an older version).
    public func needsDossierRebuild() throws -> Bool { try value("dossiers_from_log") == 1 }

    /// Replaces every dossier row at once and clears `needsDossierRebuild`.
    public func replaceDossiers(_ rows: [(code: String, state: [UInt8])]) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM dossier")
            let insert = try db.cachedStatement(sql: "INSERT INTO dossier (code, state) VALUES (?, ?)")
            for row in rows { try insert.execute(arguments: [row.code, Data(row.state)]) }
            try db.execute(sql: "DELETE FROM worker_state WHERE key = 'dossiers_from_log'")
        }
    }

    /// Rows are saved every few seconds, not in every commit (`CommitBatch.savesRows`): a commit then writes the
    /// log's rows and the alerts, not a page of dossier rows per event.
    public var defersDossierRows: Bool { true }

    /// A folder written before rows were deferred has no `rows_through_arrival`: its rows are current, no tail.
    public func forEachEventAfterSavedRows(
        _ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void
    ) throws {
        try database.read { db in
            guard
                let through = try Int64.fetchOne(
                    db, sql: "SELECT value FROM worker_state WHERE key = 'rows_through_arrival'")
            else { return }
            try Self.forEachLogged(after: through, in: db, body)
        }
    }

    /// Without `rows_through_arrival` (a folder older than deferred rows) the rows are as of the last commit.
    public func savedRowsClock() throws -> Instant? {
        try value("rows_through_arrival") == nil ? value("clock") : value("rows_clock")
    }

    /// The event log in arrival order, with the clock each event was applied at (migration and audit only).
    public func forEachLoggedEvent(_ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void)
        throws
    {
        try database.read { db in try Self.forEachLogged(after: 0, in: db, body) }
    }

    /// The logged events after `arrival`, in arrival order (arrivals start at 1).
    private static func forEachLogged(
        after arrival: Int64, in db: Database,
        _ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void
    ) throws {
        let rows = try Row.fetchCursor(
            db, sql: "SELECT arrival, body, applied_at FROM event_log WHERE arrival > ? ORDER BY arrival",
            arguments: [arrival])
        while let row = try rows.next() {
            try body(row[0], [UInt8](row[1] as Data), row[2])
        }
    }

    /// Moves logged events that cannot be read back into `event_quarantine`, with the reason.
    public func quarantine(_ rows: [(arrival: Int64, reason: String)]) throws {
        guard !rows.isEmpty else { return }
        try database.write { db in
            for row in rows {
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO event_quarantine (arrival, event_id, dossier, applied_at, json, reason)
                            SELECT arrival, event_id, dossier, applied_at, CAST(body AS TEXT), ? FROM event_log
                            WHERE arrival = ?
                        """, arguments: [row.reason, row.arrival])
                try db.execute(sql: "DELETE FROM event_log WHERE arrival = ?", arguments: [row.arrival])
            }
        }
    }

    public func quarantinedEventCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event_quarantine") ?? 0 }
    }

    /// One small slice of retention work, in its own short transaction: logged events applied before
    /// `eventsBefore`, tombstones older than `tombstonesBefore`, and alerts delivered both ways whose day is before
    /// `alertsBeforeDay` (YYYY-MM-DD), at most `limit` rows of each. Oldest rows come first in every table, so each
    /// slice costs the same whatever the history.
    public func prune(eventsBefore: Instant, tombstonesBefore: Instant, alertsBeforeDay: String, limit: Int)
        throws -> PruneResult
    {
        try outbox.write(database) { db, outbox in
            var result = PruneResult()
            // The oldest rows first, and only those: `applied_at` grows with `arrival`, so the head of the log is
            // where the old rows are, and the query never scans the rest of the table. Never the rows a restart
            // replays (after `rows_through_arrival`), nor that row itself: the newest row stays, so SQLite never
            // hands its arrival out again.
            try db.execute(
                sql: """
                    DELETE FROM event_log WHERE arrival IN
                        (SELECT arrival FROM event_log ORDER BY arrival LIMIT ?) AND applied_at < ?
                        AND arrival < coalesce(
                            (SELECT value FROM worker_state WHERE key = 'rows_through_arrival'),
                            (SELECT max(arrival) FROM event_log))
                    """, arguments: [limit, eventsBefore])
            result.events = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM retired WHERE code IN
                        (SELECT code FROM retired WHERE retired_at < ? ORDER BY retired_at LIMIT ?)
                    """, arguments: [tombstonesBefore, limit])
            result.tombstones = db.changesCount
            result.alerts = try outbox.prune(before: alertsBeforeDay, limit: limit * 2)
            return result
        }
    }

    /// Dead letters not yet confirmed by the broker, oldest first.
    public func pendingDeadLetters(limit: Int) throws -> [DeadLetter] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, message_id, routing_key, queue, reason, refusal, body FROM dead_letter
                    ORDER BY seq LIMIT ?
                    """,
                arguments: [limit]
            ).map {
                DeadLetter(
                    seq: $0[0], messageID: $0[1], routingKey: $0[2], queue: $0[3], reason: $0[4], refusal: $0[5],
                    body: [UInt8]($0[6] as Data))
            }
        }
    }

    /// Writes raw SQL (tests that simulate a damaged or old state folder).
    public func execute(sql: String) throws { try database.write { db in try db.execute(sql: sql) } }

    public func clock() throws -> Instant? { try value("clock") }
    public func firstDay() throws -> Int64? { try value("first_day") }
    public func lastEventDay() throws -> Int64? { try value("last_event_day") }

    private func value(_ key: String) throws -> Int64? {
        try database.read { db in
            try Int64.fetchOne(db, sql: "SELECT value FROM worker_state WHERE key = ?", arguments: [key])
        }
    }

    /// Events in the audit log (pruned after `eventLogDays`).
    public func eventCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event_log") ?? 0 }
    }

    /// Dossiers held (open, and closed ones not yet retired).
    public func dossierCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM dossier") ?? 0 }
    }

    /// The rows a restart will read: the count saved with them (`CommitBatch.heldDossiers`), else counted. A
    /// saved count outside 0…`maxRowsHint` is not believed.
    public func dossierCountHint() throws -> Int {
        if let held = try value("rows_held"), (0...Int64(Self.maxRowsHint)).contains(held) { return Int(held) }
        return try dossierCount()
    }
    static let maxRowsHint = 100_000_000

    public func tombstoneCount() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM retired") ?? 0 }
    }

    /// Bytes on disk: the database and its write-ahead log.
    public func bytesOnDisk() -> Int64 {
        [path, path + "-wal"].reduce(0) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)??.int64Value ?? 0
            return total + size
        }
    }

    /// Where the bytes on disk go: each table and index (SQLite's `dbstat`, pages in use), the free pages the
    /// file keeps for reuse, and the write-ahead log. Reads every page of the file: for benchmarks and an operator,
    /// not for the worker's loop.
    public func space() throws -> StoreSpace {
        try database.read { db in
            var space = StoreSpace()
            for row in try Row.fetchAll(db, sql: "SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE") {
                space.tables[row[0]] = row[1]
            }
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            space.freeBytes = (try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0) * pageSize
            let wal = try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber
            space.walBytes = wal?.int64Value ?? 0
            return space
        }
    }

    /// Outbox rows not yet confirmed by the broker, oldest first.
    public func unpublishedAlerts(limit: Int, after seq: Int64) throws -> [(seq: Int64, alert: OutboxAlert)] {
        try database.read { db in try SQLiteAlertOutbox.fetch(.unpublished, limit: limit, after: seq, in: db) }
    }

    /// Outbox rows not yet appended to the alerts files, oldest first (found through `alert_undelivered`).
    public func unfiledAlerts(limit: Int) throws -> [OutboxAlert] {
        try fetchAlerts(.unfiled, limit: limit)
    }

    public func markPublished(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try outbox.write(database) { _, outbox in try outbox.mark(published: ids, filed: []) }
    }
    public func markFiled(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try outbox.write(database) { _, outbox in try outbox.mark(published: [], filed: ids) }
    }

    /// All alert ids in the outbox (tests and the crash-safety check).
    public func allAlerts() throws -> [OutboxAlert] { try fetchAlerts(.all, limit: Int.max) }

    private func fetchAlerts(_ selection: SQLiteAlertOutbox.Selection, limit: Int) throws -> [OutboxAlert] {
        try database.read { db in try SQLiteAlertOutbox.fetch(selection, limit: limit, after: 0, in: db).map(\.alert) }
    }
}

/// A worker store's state on a read-only connection of its own: what a restart reads beside the dossier rows, read
/// while the store's connection reads those (WAL lets readers run side by side). Closed when released.
final class WorkerStoreReader: RestartReads {
    private let database: DatabaseQueue

    init(path: String) throws {
        database = try DurableSQLite.openReadOnly(path: path, tuning: WorkerStore.mapFile)
    }

    func tombstones(since: Instant, _ body: (_ hash: UInt64, _ at: Instant) -> Void) throws {
        try database.read { db in try WorkerStore.tombstones(in: db, since: since, body) }
    }

    func retiredStock() throws -> [RetiredStockKey: Int] {
        try database.read { db in try WorkerStore.retiredStock(in: db) }
    }
}

/// Where a retired abandoned dossier keeps counting: its unit's code and its procedure's field name (names, not
/// indices, so a changed configuration still reads them).
public struct RetiredStockKey: Hashable, Sendable {
    public var unit: String
    public var field: String
    public init(unit: String, field: String) {
        self.unit = unit
        self.field = field
    }
}

/// The bytes of a worker's database by table and index, its free pages and its log (`WorkerStore.space`).
public struct StoreSpace: Sendable, Equatable {
    public var tables: [String: Int64] = [:]
    public var freeBytes: Int64 = 0
    public var walBytes: Int64 = 0
    public init() {}
}
