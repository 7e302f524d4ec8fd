/// Every metric SameDay exports, by kind: a counter is only incremented, a gauge only set, a histogram only
/// observed, and a labelled counter always carries its label, or the call does not compile. Names and help texts
/// live here only (docs/operations.md lists them for operators).
public enum Metric {
    /// Counters without labels: whole counts that only go up.
    public enum Counter: String, CaseIterable, Sendable {
        case eventsTotal = "sameday_events_total"
        case eventsDuplicateTotal = "sameday_events_duplicate_total"
        case deadLettersTotal = "sameday_dead_letters_total"
        case quarantinedEventsTotal = "sameday_quarantined_events_total"
        case clockJumpsRefusedTotal = "sameday_clock_jumps_refused_total"
        case dossiersRetiredTotal = "sameday_dossiers_retired_total"
        case retiredDossierEventsTotal = "sameday_retired_dossier_events_total"
        case prunedRowsTotal = "sameday_pruned_rows_total"
        case rollupFilesWrittenTotal = "sameday_rollup_files_written_total"
        case consumerErrorsTotal = "sameday_consumer_errors_total"
        case consumerReconnectsTotal = "sameday_consumer_reconnects_total"
        case leaseTakeoversTotal = "sameday_lease_takeovers_total"
        case sourcesEventsTotal = "sameday_sources_events_total"
        case sourcesInvalidEventsTotal = "sameday_sources_invalid_events_total"
        case sourcesSkippedDeliveriesTotal = "sameday_sources_skipped_deliveries_total"
        case storeWriteFailuresTotal = "sameday_store_write_failures_total"
        case fileWriteFailuresTotal = "sameday_file_write_failures_total"
        case notifyAlertsTotal = "sameday_notify_alerts_total"
        case notifyOwedTotal = "sameday_notify_owed_total"
        case notifyDigestsTotal = "sameday_notify_digests_total"
        case boardAlertsTotal = "sameday_board_alerts_total"
        case boardDroppedTotal = "sameday_board_dropped_total"

        /// The `# HELP` text.
        public var help: String {
            switch self {
            case .eventsTotal: "Events applied to dossiers and committed (each one acked after its commit)."
            case .eventsDuplicateTotal: "Deliveries whose event id was already applied; they changed nothing."
            case .deadLettersTotal:
                "Deliveries refused and dead-lettered to sameday.dead (the reason is in x-sameday-reason)."
            case .quarantinedEventsTotal:
                "Stored dossier rows (or an older state folder's events) that could not be read back at a restart, set aside."
            case .clockJumpsRefusedTotal: "Wall-clock readings refused for jumping beyond maxClockJumpSeconds."
            case .dossiersRetiredTotal: "Closed dossiers retired from the state after retainClosedDays."
            case .retiredDossierEventsTotal:
                "Events for retired dossiers, dead-lettered with the reason \"dossier retired\"."
            case .prunedRowsTotal:
                "Rows pruned by retention: event log rows and tombstones after eventLogDays, delivered alerts likewise."
            case .rollupFilesWrittenTotal: "Daily rollup files rewritten because their figures changed."
            case .consumerErrorsTotal: "Errors the consumer met (each followed by a reconnect or a stop)."
            case .consumerReconnectsTotal: "Times the consumer connection was opened again after a loss."
            case .leaseTakeoversTotal: "Times this worker took its shard's lease (its start, or a takeover)."
            case .sourcesEventsTotal:
                "sameday sources: events read from the events stream and counted for their unit's last event."
            case .sourcesInvalidEventsTotal:
                "sameday sources: stream deliveries refused (undecodable, unknown unit, routing key or time out of bounds); counted and logged, never stopping the service."
            case .sourcesSkippedDeliveriesTotal:
                "sameday sources: stream deliveries at or below the offset already consumed (read again after a reconnect)."
            case .storeWriteFailuresTotal: "Group commits the store refused, each retried with backoff."
            case .fileWriteFailuresTotal:
                "File jobs (alert lines, rollup files) that failed, each retried with backoff."
            case .notifyAlertsTotal: "sameday notify: alerts consumed and committed (redeliveries included)."
            case .notifyOwedTotal: "sameday notify: (alert, person) pairs newly owed; each goes out in one digest."
            case .notifyDigestsTotal: "sameday notify: digests taken (one message per channel of the person)."
            case .boardAlertsTotal: "sameday board: alerts consumed from its queue (redeliveries included)."
            case .boardDroppedTotal:
                "sameday board: alerts not shown because the board held its most entries (maxEntries)."
            }
        }
    }

    /// Counters with one label.
    public enum LabelledCounter: String, CaseIterable, Sendable {
        case alertsTotal = "sameday_alerts_total"
        case refusalsTotal = "sameday_refusals_total"
        case sourcesRefusalsTotal = "sameday_sources_refusals_total"
        case notifyRefusalsTotal = "sameday_notify_refusals_total"
        case notifyDeliveriesTotal = "sameday_notify_deliveries_total"
        case boardRefusalsTotal = "sameday_board_refusals_total"
        case boardLoginsTotal = "sameday_board_logins_total"
        case calendarRunOutEventsTotal = "sameday_calendar_run_out_events_total"

        /// The `# HELP` text.
        public var help: String {
            switch self {
            case .alertsTotal: "SLA alerts raised, by level."
            case .refusalsTotal:
                "Deliveries dead-lettered, by refusal code (x-sameday-refusal; docs/worker.md lists them)."
            case .sourcesRefusalsTotal:
                "Stream deliveries passed over by sameday sources, by refusal code (the worker dead-letters the same)."
            case .notifyRefusalsTotal: "sameday notify: alert deliveries dead-lettered, by refusal code."
            case .notifyDeliveriesTotal:
                "sameday notify: attempts to send a message, by outcome (delivered, retry, failed)."
            case .boardRefusalsTotal: "sameday board: alert deliveries dead-lettered, by refusal code."
            case .boardLoginsTotal: "sameday board: login attempts, by outcome (accepted, refused, locked)."
            case .calendarRunOutEventsTotal:
                "Events on a day past the holidays their unit's calendar lists (holidaysThrough), by calendar: their deadlines count every weekday as working."
            }
        }

        /// The label's name: `level` for alerts, `refusal` for refusals.
        public var label: String {
            switch self {
            case .alertsTotal: "level"
            case .refusalsTotal: "refusal"
            case .sourcesRefusalsTotal: "refusal"
            case .notifyRefusalsTotal: "refusal"
            case .notifyDeliveriesTotal: "outcome"
            case .boardRefusalsTotal: "refusal"
            case .boardLoginsTotal: "outcome"
            case .calendarRunOutEventsTotal: "calendar"
            }
        }
    }

    /// Gauges: a value set, which may go down.
    public enum Gauge: String, CaseIterable, Sendable {
        case ready = "sameday_ready"
        case dossiers = "sameday_dossiers"
        case clockSeconds = "sameday_clock_seconds"
        case eventLagSeconds = "sameday_event_lag_seconds"
        case rebuildSeconds = "sameday_rebuild_seconds"
        case outboxInFlight = "sameday_outbox_in_flight"
        case leaseHeld = "sameday_lease_held"
        case takeoverSeconds = "sameday_takeover_seconds"
        case sourcesUnits = "sameday_sources_units"
        case sourcesOffset = "sameday_sources_offset"
        case unitDossiersFullestRatio = "sameday_unit_dossiers_fullest_ratio"
        case storeRetrying = "sameday_store_retrying"
        case notifyMessagesPending = "sameday_notify_messages_pending"
        case notifyMessagesFailed = "sameday_notify_messages_failed"
        case notifyQueues = "sameday_notify_queues"
        case boardEntries = "sameday_board_entries"
        case boardClients = "sameday_board_clients"

        /// The `# HELP` text.
        public var help: String {
            switch self {
            case .ready:
                "1 while consuming; 0 while starting, rebuilding, stopping or away from the broker (see /readyz)."
            case .dossiers: "Dossiers the worker holds in its state."
            case .clockSeconds: "The worker's clock (wall, or the newest occurredAt on the events clock), Unix seconds."
            case .eventLagSeconds: "Wall clock minus the occurredAt of the newest event applied, in seconds."
            case .rebuildSeconds: "Seconds the last start spent loading the state before consuming."
            case .outboxInFlight: "Alerts and dead letters published to the broker and not yet confirmed."
            case .leaseHeld:
                "1 while this worker holds its shard's lease (PostgreSQL store); 0 on a standby, which consumes nothing."
            case .takeoverSeconds:
                "Seconds from taking the lease to consuming: the shard's state loaded and the missed timers fired."
            case .sourcesUnits: "sameday sources: units that have sent at least one event."
            case .sourcesOffset: "sameday sources: the newest events-stream offset committed."
            case .unitDossiersFullestRatio:
                "Dossiers held by the fullest unit over maxDossiersPerUnit; at 1 its new dossiers are dead-lettered."
            case .storeRetrying:
                "1 while a commit the store refused (a full disk, a read-only device, PostgreSQL away) is retried; nothing is consumed meanwhile."
            case .notifyMessagesPending: "sameday notify: messages waiting for their channel (first try or a retry)."
            case .notifyMessagesFailed:
                "sameday notify: messages in the failed-deliveries outbox (sameday notify failed list|retry)."
            case .notifyQueues: "sameday notify: people owed something or with an escalation open."
            case .boardEntries: "sameday board: dossiers at risk on the board."
            case .boardClients: "sameday board: live clients connected (one event stream each)."
            }
        }
    }

    /// Histograms of durations, in seconds (`<name>_bucket`, `<name>_sum`, `<name>_count`).
    public enum Histogram: String, CaseIterable, Sendable {
        case commitSeconds = "sameday_commit_seconds"
        case snapshotSeconds = "sameday_snapshot_seconds"
        case restartSeconds = "sameday_restart_seconds"

        /// The `# HELP` text.
        public var help: String {
            switch self {
            case .commitSeconds: "Duration of one group commit (one SQLite or PostgreSQL transaction), in seconds."
            case .snapshotSeconds: "Duration of one rollup snapshot (the days touched since the last one), in seconds."
            case .restartSeconds: "Duration of a start, from opening the state to consuming, in seconds."
            }
        }

        /// Buckets, in seconds: fine ones for a commit, a wide range (10 ms to 10 min) for the rest.
        public var buckets: [Double] {
            self == .commitSeconds
                ? [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
                : [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
        }
    }

    /// Every metric's help text by name (the registry's factory asks by name).
    static let help: [String: String] = {
        var help: [String: String] = [:]
        for metric in Counter.allCases { help[metric.rawValue] = metric.help }
        for metric in LabelledCounter.allCases { help[metric.rawValue] = metric.help }
        for metric in Gauge.allCases { help[metric.rawValue] = metric.help }
        for metric in Histogram.allCases { help[metric.rawValue] = metric.help }
        return help
    }()
}
