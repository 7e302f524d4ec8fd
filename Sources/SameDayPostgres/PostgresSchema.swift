import Foundation
import PostgresNIO

/// The shared store's tables: `WorkerStore`'s (SQLite) with the shard's name in every key, plus `shard_lease`.
/// Versions only move forward, each in one transaction under a transaction-scoped advisory lock, so that workers
/// starting together migrate once.
enum PostgresSchema {
    static let tables = [
        "shard_lease", "worker_state", "event_log", "event_quarantine", "dossier", "dossier_quarantine", "retired",
        "retired_stock", "alert", "dead_letter", "notify_owed", "notify_log", "notify_message",
        "notify_recipient_state", "notify_open_overdue", "notify_clock", "forecast_unit",
    ]

    /// The advisory-lock namespace of SameDay (the first key of the two-key form): "SD" in ASCII.
    static let lockNamespace: Int32 = 0x5344

    static let migrations: [String] = [
        """
        CREATE TABLE shard_lease (
            shard text PRIMARY KEY, epoch int8 NOT NULL, holder text NOT NULL, acquired_at timestamptz NOT NULL
        );
        CREATE TABLE worker_state (shard text NOT NULL, key text NOT NULL, value int8 NOT NULL, PRIMARY KEY (shard, key));
        CREATE TABLE event_log (
            shard text NOT NULL, arrival bigserial, dossier text NOT NULL, event_id text NOT NULL,
            applied_at int8 NOT NULL, body bytea NOT NULL, PRIMARY KEY (shard, arrival)
        );
        CREATE TABLE event_quarantine (
            shard text NOT NULL, arrival int8 NOT NULL, event_id text NOT NULL, dossier text NOT NULL,
            applied_at int8 NOT NULL, body bytea NOT NULL, reason text NOT NULL, PRIMARY KEY (shard, arrival)
        );
        CREATE TABLE dossier (shard text NOT NULL, code text NOT NULL, state bytea NOT NULL, PRIMARY KEY (shard, code));
        CREATE TABLE dossier_quarantine (
            shard text NOT NULL, code text NOT NULL, state bytea NOT NULL, reason text NOT NULL, PRIMARY KEY (shard, code)
        );
        CREATE TABLE retired (
            shard text NOT NULL, code text NOT NULL, hash int8 NOT NULL, retired_at int8 NOT NULL,
            PRIMARY KEY (shard, code)
        );
        CREATE INDEX retired_by_time ON retired (shard, retired_at, code) INCLUDE (hash);
        CREATE TABLE retired_stock (
            shard text NOT NULL, unit text NOT NULL, field text NOT NULL, dossiers int8 NOT NULL,
            PRIMARY KEY (shard, unit, field)
        );
        CREATE TABLE alert (
            shard text NOT NULL, seq bigserial, alert_id text NOT NULL, level text NOT NULL, routing_key text NOT NULL,
            day text NOT NULL, json text NOT NULL, published bool NOT NULL DEFAULT false,
            filed bool NOT NULL DEFAULT false, PRIMARY KEY (shard, seq), UNIQUE (shard, alert_id)
        );
        CREATE INDEX alert_unpublished ON alert (shard, seq) WHERE NOT published;
        CREATE INDEX alert_unfiled ON alert (shard, seq) WHERE NOT filed;
        CREATE TABLE dead_letter (
            shard text NOT NULL, seq bigserial, message_id text NOT NULL, routing_key text NOT NULL, queue text NOT NULL,
            reason text NOT NULL, body bytea NOT NULL, PRIMARY KEY (shard, seq)
        );
        """,
        // 2: a dead letter's refusal code (`EventRefusal.code`).
        """
        ALTER TABLE dead_letter ADD COLUMN refusal text NOT NULL DEFAULT ''
        """,
        // 3: the lease expires on the server's clock unless renewed (it no longer lives as long as a TCP session),
        // and names the holder's backend, whose end frees it at once. A row of the old scheme counts as expired: a
        // worker of the old version still holding it is fenced off by the epoch the next take moves on.
        """
        ALTER TABLE shard_lease ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now();
        ALTER TABLE shard_lease ADD COLUMN backend_pid int4 NOT NULL DEFAULT 0
        """,
        // 4: `sameday notify`'s state (`NotifyStore`'s tables), keyed by the notifier's queue so that a notifier and
        // its standby share it; its lease is the `shard_lease` row of that name.
        """
        CREATE TABLE notify_owed (
            notifier text NOT NULL, seq bigserial, recipient text NOT NULL, alert_id text NOT NULL,
            received_at int8 NOT NULL, json text NOT NULL, PRIMARY KEY (notifier, seq),
            UNIQUE (notifier, recipient, alert_id)
        );
        CREATE TABLE notify_log (
            notifier text NOT NULL, alert_id text NOT NULL, recipient text NOT NULL, channel text NOT NULL,
            message_seq int8, at int8 NOT NULL, PRIMARY KEY (notifier, alert_id, recipient, channel)
        );
        CREATE INDEX notify_log_at ON notify_log (notifier, at);
        CREATE TABLE notify_message (
            notifier text NOT NULL, seq bigserial, message_id text NOT NULL, recipient text NOT NULL,
            channel text NOT NULL, destination text NOT NULL, body text NOT NULL, alert_ids text NOT NULL,
            created_at int8 NOT NULL, attempts int8 NOT NULL DEFAULT 0, next_attempt_at int8 NOT NULL,
            status text NOT NULL, last_error text, PRIMARY KEY (notifier, seq), UNIQUE (notifier, message_id, channel)
        );
        CREATE INDEX notify_message_pending ON notify_message (notifier, next_attempt_at) WHERE status = 'pending';
        CREATE TABLE notify_recipient_state (
            notifier text NOT NULL, recipient text NOT NULL, last_sent_at int8, open_escalations text NOT NULL,
            PRIMARY KEY (notifier, recipient)
        );
        CREATE TABLE notify_open_overdue (
            notifier text NOT NULL, unit text NOT NULL, dossier text NOT NULL, at int8 NOT NULL, json text NOT NULL,
            PRIMARY KEY (notifier, unit, dossier)
        );
        CREATE TABLE notify_clock (notifier text PRIMARY KEY, at int8 NOT NULL)
        """,
        // 5: the queue forecast's stored part per unit (`CommitBatch.forecastUnits`).
        """
        CREATE TABLE forecast_unit (shard text NOT NULL, unit text NOT NULL, state bytea NOT NULL, PRIMARY KEY (shard, unit))
        """,
    ]

    static func migrate(_ connection: BlockingConnection) throws {
        try connection.transaction { execute in
            try execute("SELECT pg_advisory_xact_lock(\(lockNamespace), 0)")
            try execute("CREATE TABLE IF NOT EXISTS sameday_schema (version int4 NOT NULL)")
            let current = try execute("SELECT max(version) FROM sameday_schema").first?.decode(Int32?.self) ?? 0
            for (index, sql) in migrations.enumerated() where index + 1 > current {
                // The extended protocol takes one statement at a time.
                for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) })
                where !statement.isEmpty {
                    try execute(PostgresQuery(unsafeSQL: statement))
                }
                try execute("INSERT INTO sameday_schema (version) VALUES (\(Int32(index + 1)))")
            }
        }
    }
}
