import Foundation
import Logging
import NIOCore
import PostgresNIO
import SameDayCore
import SameDayStore

/// A shard's state in PostgreSQL: the same tables and rules as `WorkerStore` (SQLite), keyed by the shard's name
/// (its work queue, `sameday.work.<n>`), so one database serves every shard and any worker can serve any shard.
///
/// Every write is fenced: its transaction first reads the shard's lease epoch (`shard_lease`, row-locked for the
/// transaction) and rolls back with `LeaseLost` if another worker took the lease since this one did. So a worker that
/// lost its lease (a network cut, a pause longer than the session) can neither commit events, nor fire alerts into
/// the outbox, nor mark or prune anything.
public final class PostgresShardStore: ShardStore {
    public let url: PostgresStoreURL
    /// The shard's key in every table: its work queue's name.
    public let shard: String
    /// The lease epoch this store's commits must match (nil: unfenced, for tools that only read).
    public let fencingEpoch: Int64?
    private let connection: BlockingConnection
    /// Rows per page when a restart reads the dossiers (memory stays bounded whatever the shard holds).
    static let pageSize = 20_000

    public var location: String { "\(url) shard \(shard)" }

    public init(
        url: PostgresStoreURL, passwordFile: String?, shard: String, fencingEpoch: Int64?,
        logger: Logger = Logger(label: "sameday.store")
    ) throws {
        self.url = url
        self.shard = shard
        self.fencingEpoch = fencingEpoch
        connection = try BlockingConnection(
            url: url, password: try readPassword(file: passwordFile), name: "store \(shard)", logger: logger)
        try PostgresSchema.migrate(connection)
    }

    deinit { connection.close() }

    /// Ends the store's connection at once, failing a statement in flight: the worker lost its lease, and its
    /// commits would be refused anyway.
    public func abandon(_ reason: String) { connection.abandon(reason) }

    // MARK: Commit

    /// Never: the shard's lease lives in this store's session, so a failed write may mean a standby holds the
    /// shard now. The worker stops, and a worker that takes the lease again goes on from the committed state.
    public func isTransient(_ error: any Error) -> Bool { false }

    public func commit(_ batch: CommitBatch) throws {
        guard !batch.isEmpty else { return }
        let shard = shard
        try fencedTransaction { execute in
            if !batch.events.isEmpty {
                try execute(
                    """
                    INSERT INTO event_log (shard, dossier, event_id, applied_at, body)
                        SELECT \(shard), * FROM unnest(\(batch.events.map(\.dossier))::text[], \
                    \(batch.events.map(\.eventID))::text[], \(batch.events.map(\.appliedAt))::int8[], \
                    \(batch.events.map { ByteBuffer(bytes: $0.body) })::bytea[])
                    """)
            }
            // One row per code (the last state wins): an upsert may not touch a row twice in one statement.
            let dossiers = Self.lastPerKey(batch.dossiers, key: \.code)
            if !dossiers.isEmpty {
                try execute(
                    """
                    INSERT INTO dossier (shard, code, state)
                        SELECT \(shard), * FROM unnest(\(dossiers.map(\.code))::text[], \
                    \(dossiers.map { ByteBuffer(bytes: $0.state) })::bytea[])
                    ON CONFLICT (shard, code) DO UPDATE SET state = excluded.state
                    """)
            }
            if !batch.retired.isEmpty {
                let retired = Self.lastPerKey(batch.retired, key: \.code)
                let codes = retired.map(\.code)
                try execute("DELETE FROM dossier WHERE shard = \(shard) AND code = ANY(\(codes)::text[])")
                // The hash is what a restart loads (no string per tombstone); the code is for an operator.
                try execute(
                    """
                    INSERT INTO retired (shard, code, hash, retired_at)
                        SELECT \(shard), * FROM unnest(\(codes)::text[], \
                    \(codes.map { Int64(bitPattern: FNV1a.hash($0)) })::int8[], \(retired.map(\.at))::int8[])
                    ON CONFLICT (shard, code) DO UPDATE SET hash = excluded.hash, retired_at = excluded.retired_at
                    """)
                var stock: [RetiredStockKey: Int64] = [:]
                for dossier in batch.retired { if let key = dossier.abandonedIn { stock[key, default: 0] += 1 } }
                if !stock.isEmpty {
                    let keys = Array(stock.keys)
                    try execute(
                        """
                        INSERT INTO retired_stock (shard, unit, field, dossiers)
                            SELECT \(shard), * FROM unnest(\(keys.map(\.unit))::text[], \(keys.map(\.field))::text[], \
                        \(keys.map { stock[$0]! })::int8[])
                        ON CONFLICT (shard, unit, field) DO UPDATE SET dossiers = retired_stock.dossiers + excluded.dossiers
                        """)
                }
            }
            let forecast = Self.lastPerKey(batch.forecastUnits, key: \.unit)
            if !forecast.isEmpty {
                try execute(
                    """
                    INSERT INTO forecast_unit (shard, unit, state)
                        SELECT \(shard), * FROM unnest(\(forecast.map(\.unit))::text[], \
                    \(forecast.map { ByteBuffer(bytes: $0.state) })::bytea[])
                    ON CONFLICT (shard, unit) DO UPDATE SET state = excluded.state
                    """)
            }
            let alerts = Self.lastPerKey(batch.alerts, key: \.alertID)
            if !alerts.isEmpty {
                // An alert id already in the outbox is kept as it was: the same alert raised again (after a
                // takeover, a redelivery) is the same alert.
                try execute(
                    """
                    INSERT INTO alert (shard, alert_id, level, routing_key, day, json)
                        SELECT \(shard), * FROM unnest(\(alerts.map(\.alertID))::text[], \(alerts.map(\.level))::text[], \
                    \(alerts.map(\.routingKey))::text[], \(alerts.map(\.day))::text[], \(alerts.map(\.json))::text[])
                    ON CONFLICT (shard, alert_id) DO NOTHING
                    """)
            }
            if !batch.publishedAlertIDs.isEmpty {
                try execute(
                    "UPDATE alert SET published = true WHERE shard = \(shard) AND alert_id = ANY(\(batch.publishedAlertIDs)::text[])"
                )
            }
            if !batch.filedAlertIDs.isEmpty {
                try execute(
                    "UPDATE alert SET filed = true WHERE shard = \(shard) AND alert_id = ANY(\(batch.filedAlertIDs)::text[])"
                )
            }
            if !batch.deadLetters.isEmpty {
                let letters = batch.deadLetters
                try execute(
                    """
                    INSERT INTO dead_letter (shard, message_id, routing_key, queue, reason, refusal, body)
                        SELECT \(shard), * FROM unnest(\(letters.map(\.messageID))::text[], \
                    \(letters.map(\.routingKey))::text[], \(letters.map(\.queue))::text[], \
                    \(letters.map(\.reason))::text[], \(letters.map(\.refusal))::text[], \
                    \(letters.map { ByteBuffer(bytes: $0.body) })::bytea[])
                    """)
            }
            if !batch.confirmedDeadLetters.isEmpty {
                try execute(
                    "DELETE FROM dead_letter WHERE shard = \(shard) AND seq = ANY(\(batch.confirmedDeadLetters)::int8[])"
                )
            }
            var keys: [String] = []
            var values: [Int64] = []
            if let clock = batch.clock { (keys, values) = (keys + ["clock"], values + [clock]) }
            if let day = batch.firstDay { (keys, values) = (keys + ["first_day"], values + [day]) }
            if let day = batch.lastEventDay { (keys, values) = (keys + ["last_event_day"], values + [day]) }
            if !keys.isEmpty {
                try execute(
                    """
                    INSERT INTO worker_state (shard, key, value) SELECT \(shard), * FROM unnest(\(keys)::text[], \(values)::int8[])
                    ON CONFLICT (shard, key) DO UPDATE SET value = excluded.value
                    """)
            }
        }
    }

    /// A transaction that first checks the lease epoch (row-locked until it ends): every write of this store goes
    /// through it, so a worker that lost its lease changes nothing more, not even a delivery mark or a prune.
    @discardableResult
    private func fencedTransaction<T>(_ body: (BlockingConnection.Statements) throws -> T) throws -> T {
        try connection.fencedTransaction(lease: shard, epoch: fencingEpoch, body)
    }

    static func lastPerKey<Row>(_ rows: [Row], key: (Row) -> String) -> [Row] {
        var index: [String: Int] = [:]
        var out: [Row] = []
        out.reserveCapacity(rows.count)
        for row in rows {
            if let at = index[key(row)] {
                out[at] = row
            } else {
                index[key(row)] = out.count
                out.append(row)
            }
        }
        return out
    }

    // MARK: Restart

    public func forecastUnits() throws -> [(unit: String, state: [UInt8])] {
        try connection.run("SELECT unit, state FROM forecast_unit WHERE shard = \(shard) ORDER BY unit").map {
            let (unit, state) = try $0.decode((String, ByteBuffer).self)
            return (unit: unit, state: Array(state.readableBytesView))
        }
    }

    /// Rows are keyed by code here (the engine's row keys serve SQLite's page locality): every key reads back as 0.
    public func forEachDossierRecord(
        _ body: (_ key: Int64, _ code: String, _ state: UnsafeBufferPointer<UInt8>) throws -> Void
    ) throws {
        // Page by code: a restart of a large shard never holds more than a page of rows from the server.
        var after = ""
        while true {
            let rows = try connection.run(
                """
                SELECT code, state FROM dossier WHERE shard = \(shard) AND code > \(after) ORDER BY code
                LIMIT \(Self.pageSize)
                """)
            for row in rows {
                let (code, state) = try row.decode((String, ByteBuffer).self)
                try state.withUnsafeReadableBytes { try body(0, code, $0.assumingMemoryBound(to: UInt8.self)) }
                after = code
            }
            if rows.count < Self.pageSize { return }
        }
    }

    public func quarantineDossiers(_ rows: [(key: Int64, code: String, reason: String)]) throws {
        guard !rows.isEmpty else { return }
        try fencedTransaction { execute in
            try execute(
                """
                INSERT INTO dossier_quarantine (shard, code, state, reason)
                    SELECT d.shard, d.code, d.state, q.reason
                    FROM unnest(\(rows.map(\.code))::text[], \(rows.map(\.reason))::text[]) AS q(code, reason)
                    JOIN dossier d ON d.shard = \(shard) AND d.code = q.code
                ON CONFLICT (shard, code) DO UPDATE SET state = excluded.state, reason = excluded.reason
                """)
            try execute("DELETE FROM dossier WHERE shard = \(shard) AND code = ANY(\(rows.map(\.code))::text[])")
        }
    }

    public func quarantinedDossierCount() throws -> Int {
        try count("SELECT count(*) FROM dossier_quarantine WHERE shard = \(shard)")
    }

    public func tombstones(since: Instant, _ body: (_ hash: UInt64, _ at: Instant) -> Void) throws {
        var after: (at: Int64, code: String) = (since, "")
        var first = true
        while true {
            let rows = try connection.run(
                first
                    ? """
                    SELECT hash, retired_at, code FROM retired WHERE shard = \(shard) AND retired_at >= \(since)
                    ORDER BY retired_at, code LIMIT \(Self.pageSize)
                    """
                    : """
                    SELECT hash, retired_at, code FROM retired WHERE shard = \(shard)
                        AND (retired_at, code) > (\(after.at), \(after.code))
                    ORDER BY retired_at, code LIMIT \(Self.pageSize)
                    """)
            first = false
            for row in rows {
                let (hash, at, code) = try row.decode((Int64, Int64, String).self)
                body(UInt64(bitPattern: hash), at)
                after = (at, code)
            }
            if rows.count < Self.pageSize { return }
        }
    }

    /// One connection per store: a restart reads the tombstones after the rows, on it.
    public func sideReader() throws -> (any RestartReads)? { nil }

    public func lastTombstone() throws -> String? {
        try connection.run("SELECT code FROM retired WHERE shard = \(shard) ORDER BY retired_at DESC LIMIT 1")
            .first?.decode(String.self)
    }

    public func retiredStock() throws -> [RetiredStockKey: Int] {
        var out: [RetiredStockKey: Int] = [:]
        for row in try connection.run("SELECT unit, field, dossiers FROM retired_stock WHERE shard = \(shard)") {
            let (unit, field, dossiers) = try row.decode((String, String, Int64).self)
            out[RetiredStockKey(unit: unit, field: field)] = Int(dossiers)
        }
        return out
    }

    /// A PostgreSQL store was never an older SQLite state folder: there is no log to rebuild dossiers from.
    public func needsDossierRebuild() throws -> Bool { false }

    public func replaceDossiers(_ rows: [(code: String, state: [UInt8])]) throws {
        try fencedTransaction { execute in
            try execute("DELETE FROM dossier WHERE shard = \(shard)")
            let rows = Self.lastPerKey(rows, key: \.code)
            if !rows.isEmpty {
                try execute(
                    """
                    INSERT INTO dossier (shard, code, state) SELECT \(shard), * FROM unnest(\(rows.map(\.code))::text[], \
                    \(rows.map { ByteBuffer(bytes: $0.state) })::bytea[])
                    """)
            }
        }
    }

    public func forEachLoggedEvent(_ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void)
        throws
    {
        var after: Int64 = 0
        while true {
            let rows = try connection.run(
                """
                SELECT arrival, body, applied_at FROM event_log WHERE shard = \(shard) AND arrival > \(after)
                ORDER BY arrival LIMIT \(Self.pageSize)
                """)
            for row in rows {
                let (arrival, bytes, appliedAt) = try row.decode((Int64, ByteBuffer, Int64).self)
                try body(arrival, Array(bytes.readableBytesView), appliedAt)
                after = arrival
            }
            if rows.count < Self.pageSize { return }
        }
    }

    public func quarantine(_ rows: [(arrival: Int64, reason: String)]) throws {
        guard !rows.isEmpty else { return }
        try fencedTransaction { execute in
            try execute(
                """
                INSERT INTO event_quarantine (shard, arrival, event_id, dossier, applied_at, body, reason)
                    SELECT e.shard, e.arrival, e.event_id, e.dossier, e.applied_at, e.body, q.reason
                    FROM unnest(\(rows.map(\.arrival))::int8[], \(rows.map(\.reason))::text[]) AS q(arrival, reason)
                    JOIN event_log e ON e.shard = \(shard) AND e.arrival = q.arrival
                ON CONFLICT (shard, arrival) DO NOTHING
                """)
            try execute(
                "DELETE FROM event_log WHERE shard = \(shard) AND arrival = ANY(\(rows.map(\.arrival))::int8[])")
        }
    }

    public func quarantinedEventCount() throws -> Int {
        try count("SELECT count(*) FROM event_quarantine WHERE shard = \(shard)")
    }

    // MARK: Retention

    public func prune(eventsBefore: Instant, tombstonesBefore: Instant, alertsBeforeDay: String, limit: Int) throws
        -> PruneResult
    {
        try fencedTransaction { execute in
            var result = PruneResult()
            // From the head of each table only: each slice costs the same whatever the history.
            result.events =
                try execute(
                    """
                    DELETE FROM event_log WHERE shard = \(shard) AND arrival IN
                        (SELECT arrival FROM event_log WHERE shard = \(shard) ORDER BY arrival LIMIT \(limit))
                        AND applied_at < \(eventsBefore)
                    """
                ).metadata.rows ?? 0
            result.tombstones =
                try execute(
                    """
                    DELETE FROM retired WHERE shard = \(shard) AND code IN
                        (SELECT code FROM retired WHERE shard = \(shard) AND retired_at < \(tombstonesBefore)
                         ORDER BY retired_at LIMIT \(limit))
                    """
                ).metadata.rows ?? 0
            result.alerts =
                try execute(
                    """
                    DELETE FROM alert WHERE shard = \(shard) AND seq IN
                        (SELECT seq FROM alert WHERE shard = \(shard) ORDER BY seq LIMIT \(limit * 2))
                        AND day < \(alertsBeforeDay) AND published AND filed
                    """
                ).metadata.rows ?? 0
            return result
        }
    }

    // MARK: Outboxes

    public func pendingDeadLetters(limit: Int) throws -> [DeadLetter] {
        try connection.run(
            """
            SELECT seq, message_id, routing_key, queue, reason, refusal, body FROM dead_letter
            WHERE shard = \(shard) ORDER BY seq LIMIT \(limit)
            """
        ).map { row in
            let (seq, messageID, routingKey, queue, reason, refusal, body) = try row.decode(
                (Int64, String, String, String, String, String, ByteBuffer).self)
            return DeadLetter(
                seq: seq, messageID: messageID, routingKey: routingKey, queue: queue, reason: reason,
                refusal: refusal, body: Array(body.readableBytesView))
        }
    }

    public func unpublishedAlerts(limit: Int, after seq: Int64) throws -> [(seq: Int64, alert: OutboxAlert)] {
        try fetchAlerts(condition: "NOT published", limit: limit, after: seq)
    }

    public func unfiledAlerts(limit: Int) throws -> [OutboxAlert] {
        try fetchAlerts(condition: "NOT filed", limit: limit, after: 0).map(\.alert)
    }

    public func markPublished(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try fencedTransaction { execute in
            try execute("UPDATE alert SET published = true WHERE shard = \(shard) AND alert_id = ANY(\(ids)::text[])")
        }
    }

    public func markFiled(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        try fencedTransaction { execute in
            try execute("UPDATE alert SET filed = true WHERE shard = \(shard) AND alert_id = ANY(\(ids)::text[])")
        }
    }

    public func allAlerts() throws -> [OutboxAlert] {
        try fetchAlerts(condition: "true", limit: Int.max, after: 0).map(\.alert)
    }

    private func fetchAlerts(condition: String, limit: Int, after seq: Int64) throws
        -> [(seq: Int64, alert: OutboxAlert)]
    {
        let query: PostgresQuery = """
            SELECT seq, alert_id, level, routing_key, day, json FROM alert
            WHERE shard = \(shard) AND \(unescaped: condition) AND seq > \(seq)
            ORDER BY seq LIMIT \(limit)
            """
        return try connection.run(query).map { row in
            let (seq, id, level, routingKey, day, json) = try row.decode(
                (Int64, String, String, String, String, String).self)
            return (seq, OutboxAlert(alertID: id, level: level, routingKey: routingKey, day: day, json: json))
        }
    }

    // MARK: Small reads

    /// Every commit saves its dossier rows here: a standby taking the shard over loads current rows, no tail.
    public var defersDossierRows: Bool { false }
    public func forEachEventAfterSavedRows(
        _ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void
    ) throws {}
    public func savedRowsClock() throws -> Instant? { try clock() }

    public func clock() throws -> Instant? { try value("clock") }
    public func firstDay() throws -> Int64? { try value("first_day") }
    public func lastEventDay() throws -> Int64? { try value("last_event_day") }

    private func value(_ key: String) throws -> Int64? {
        try connection.run("SELECT value FROM worker_state WHERE shard = \(shard) AND key = \(key)")
            .first?.decode(Int64.self)
    }

    public func eventCount() throws -> Int { try count("SELECT count(*) FROM event_log WHERE shard = \(shard)") }
    public func dossierCount() throws -> Int { try count("SELECT count(*) FROM dossier WHERE shard = \(shard)") }
    /// Counted: this store keeps no saved count (every commit saves its rows).
    public func dossierCountHint() throws -> Int { try dossierCount() }
    public func tombstoneCount() throws -> Int { try count("SELECT count(*) FROM retired WHERE shard = \(shard)") }

    /// The database's tables hold every shard: this is their whole size, the cost ops pay for the shared store.
    public func bytesOnDisk() -> Int64 {
        let tables = PostgresSchema.tables.map { "pg_total_relation_size('\($0)')" }.joined(separator: " + ")
        return (try? connection.run(PostgresQuery(unsafeSQL: "SELECT (\(tables))::int8")).first?.decode(Int64.self))
            ?? 0
    }

    private func count(_ query: PostgresQuery) throws -> Int {
        Int(try connection.run(query).first?.decode(Int64.self) ?? 0)
    }
}
