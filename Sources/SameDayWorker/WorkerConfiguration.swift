import Foundation
import RabbitMQ
import SameDayCore
import SameDayFiles
import SameDayPostgres

/// The worker's service configuration: a JSON file, then environment variables, which win.
///
/// | key | environment | default | meaning |
/// |---|---|---|---|
/// | `brokers` | `SAMEDAY_AMQP_URL` (comma-separated) | `["amqp://127.0.0.1:5672/%2F"]` | broker URLs (a cluster: several) |
/// | `credentialsFile` | `SAMEDAY_AMQP_CREDENTIALS_FILE` | none | a file holding `user:password`, mode 0600 (refused if group or others have any access); overrides the URLs' user |
/// | `shard` | `SAMEDAY_SHARD` | 0 | the work queue this worker consumes (`sameday.work.<shard>`) |
/// | `namePrefix` | `SAMEDAY_NAME_PREFIX` | "" | prefix of every broker name (tests run private copies) |
/// | `domainConfig` | `SAMEDAY_DOMAIN_CONFIG` | `deploy/config/hcmc-2022` | units, catalog, calendars, alerting |
/// | `stateDirectory` | `SAMEDAY_STATE_DIR` | `/var/lib/sameday` | SQLite state (`shard-<n>.sqlite`) |
/// | `store` | `SAMEDAY_STORE` | none: SQLite in `stateDirectory` | `postgres://user@host[:port]/database[?sslmode=require]`: the shared store, where any worker can serve any shard and a second worker of a shard waits as a standby (docs/operations.md) |
/// | `leaseSeconds` | | 10 | with the shared store: a shard's lease expires this long after its holder's last renewal (every second), so a standby takes over a holder that died, froze or lost its network within this plus its quarter-second poll |
/// | `storePasswordFile` | `SAMEDAY_STORE_PASSWORD_FILE` | none | the PostgreSQL password, first line of this file (never in the URL nor on a command line) |
/// | `alertsDirectory` | `SAMEDAY_ALERTS_DIR` | `<state>/alerts` | `alerts-YYYY-MM-DD.jsonl`, one line per alert |
/// | `rollupsDirectory` | `SAMEDAY_ROLLUPS_DIR` | `<state>/rollups` | `daily/YYYY-MM-DD/{units,blocks}.{csv,json}` |
/// | `clock` | `SAMEDAY_CLOCK` | `wall` | `wall` or `events` (newest `occurredAt`, for backfills) |
/// | `prefetch` | | 3000 | unacked deliveries: at least three batches, so one fills while the one before commits |
/// | `batchSize` | | 1000 | events per group commit (the commit runs on its own thread; acks follow it) |
/// | `batchDelayMilliseconds` | | 200 | the longest an event waits for its commit |
/// | `snapshotSeconds` | | 60 | intraday rollup snapshot interval |
/// | `metricsListen` | `SAMEDAY_METRICS_LISTEN` | `127.0.0.1:9464+shard` | Prometheus `/metrics`, `/healthz`, `/readyz`; `HOST:PORT`, or `HOST:PORT+shard` for PORT plus the shard number (one host runs every shard); empty: off |
/// | `heartbeatSeconds` | | 30 | AMQP heartbeat |
/// | `shards` | `SAMEDAY_SHARDS` | 1 | how many shards the deployment has (each worker sees 1/shards of a unit's events) |
/// | `eventsFrom` | | `2000-01-01` | events whose `occurredAt` is earlier are dead-lettered |
/// | `eventsAheadSeconds` | | 86400 | events whose `occurredAt` is later than this after the wall clock are dead-lettered |
/// | `rescheduleWithinDays` | | 366 | a `newDueAt` further than this from its event is dead-lettered |
/// | `maxClockJumpSeconds` | | 600 | a wall-clock jump larger than this (against the monotonic clock) is refused, logged and counted |
/// | `retainClosedDays` | | 62 | a closed dossier stays in the state this long after its last event (a month's report plus a month of late events), then it is retired; rollups of older days are never rewritten (docs/worker.md) |
/// | `eventLogDays` | | 62 | the event log (an audit trail nobody reads at start) and retired dossiers' tombstones are kept this long; an event older than this for a dossier not held is dead-lettered (`too_old`) |
/// | `maxDossiersPerUnit` | | 200000 | dossiers one unit may hold in this shard (open, and closed ones not yet retired); a new dossier beyond it is dead-lettered (`unit_full`), and `sameday_unit_dossiers_fullest_ratio` shows how near the fullest unit is |
/// | `sourceSilence` | `SAMEDAY_SOURCE_SILENCE` (0/1) | on when `shards` is 1 | raise `source_silent` when a unit goes quiet (`alerting.json`); a worker that sees only part of a unit's events would take its own share of them for silence. Off wherever `sameday sources` runs |
/// | `sourcesDirectory` | `SAMEDAY_SOURCES_DIR` | `<state>/sources` | `sameday sources` only: its state (`sources.sqlite`, `sources.lock`) and its alert files (`alerts/`) |
/// | `sourcesMetricsListen` | `SAMEDAY_SOURCES_METRICS_LISTEN` | `127.0.0.1:9463` | `sameday sources` only: `/metrics`, `/healthz`, `/readyz` (beside the workers' 9464+shard); empty: off |
public struct WorkerConfiguration: Sendable, Codable, Equatable {
    public var brokers: [String] = ["amqp://127.0.0.1:5672/%2F"]
    public var credentialsFile: String?
    public var shard = 0
    public var namePrefix = ""
    public var domainConfig = "deploy/config/hcmc-2022"
    public var stateDirectory = "/var/lib/sameday"
    public var store: String?
    public var storePasswordFile: String?
    public var leaseSeconds = 10
    public var alertsDirectory: String?
    public var rollupsDirectory: String?
    public var clock: ClockMode = .wall
    public var prefetch = 3000
    public var batchSize = 1000
    public var batchDelayMilliseconds = 200
    public var snapshotSeconds = 60
    public var metricsListen = "127.0.0.1:9464+shard"
    public var heartbeatSeconds = 30
    public var shards = 1
    public var eventsFrom = "2000-01-01"
    public var eventsAheadSeconds = 86_400
    public var rescheduleWithinDays = 366
    public var maxClockJumpSeconds = 600
    public var retainClosedDays = 62
    public var eventLogDays = 62
    public var maxDossiersPerUnit = 200_000
    /// Nil: decided by `shards` (see the table above).
    public var sourceSilence: Bool?
    /// Whether this worker watches units for silence.
    public var watchesSourceSilence: Bool { sourceSilence ?? (shards == 1) }
    /// `sameday sources`: its state folder (nil: `<stateDirectory>/sources`).
    public var sourcesDirectory: String?
    public var sourcesMetricsListen = "127.0.0.1:9463"

    public init() {}

    public var resolvedAlertsDirectory: String { alertsDirectory ?? stateDirectory + "/alerts" }
    public var resolvedRollupsDirectory: String { rollupsDirectory ?? stateDirectory + "/rollups" }
    public var retention: Retention { Retention(closedDays: retainClosedDays, eventLogDays: eventLogDays) }
    public var databasePath: String { stateDirectory + "/shard-\(shard).sqlite" }
    /// The shared store's address, when the state is in PostgreSQL.
    public var postgresStore: PostgresStoreURL? { get throws { try store.map(PostgresStoreURL.init) } }
    public var resolvedSourcesDirectory: String { sourcesDirectory ?? stateDirectory + "/sources" }
    /// `sameday sources`' SQLite state: each unit's last event, the stream offset consumed, its alert outbox.
    public var sourcesDatabasePath: String { resolvedSourcesDirectory + "/sources.sqlite" }
    /// `sameday sources`' alert files: its own folder, never a worker's.
    public var sourcesAlertsDirectory: String { resolvedSourcesDirectory + "/alerts" }

    /// The window of plausible event times (`eventsFrom`, `eventsAheadSeconds`, `rescheduleWithinDays`).
    public var eventTimeBounds: EventTimeBounds {
        EventTimeBounds(
            earliest: LocalDate(eventsFrom)?.startInstant ?? EventTimeBounds.standard.earliest,
            maxAheadSeconds: Int64(eventsAheadSeconds), rescheduleWithinSeconds: Int64(rescheduleWithinDays) * 86_400)
    }

    /// `metricsListen` with `+shard` resolved: `127.0.0.1:9464+shard` is port 9466 for shard 2.
    public var resolvedMetricsListen: String {
        guard metricsListen.hasSuffix("+shard"), let colon = metricsListen.lastIndex(of: ":"),
            let port = Int(metricsListen[metricsListen.index(after: colon)...].dropLast("+shard".count))
        else { return metricsListen }
        return String(metricsListen[..<colon]) + ":\(port + shard)"
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads `path` (JSON; unknown keys are errors, so a typo does not silently fall back to a default), then
    /// applies the environment.
    public static func load(path: String?, environment: [String: String]) throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Invalid(description: "\(path): cannot read the worker configuration")
            }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Invalid(description: "\(path): not a JSON object")
            }
            let known = Set(CodingKeys.allKeys)
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw Invalid(
                    description:
                        "\(path): unknown key \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
            }
            do {
                configuration = try JSONDecoder().decode(WorkerConfiguration.self, from: data)
            } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
                throw Invalid(
                    description:
                        "\(path): \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
                )
            } catch let DecodingError.dataCorrupted(context) {
                throw Invalid(
                    description:
                        "\(path): \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
                )
            }
        }
        if let urls = environment["SAMEDAY_AMQP_URL"] { configuration.brokers = [urls] }
        if let file = environment["SAMEDAY_AMQP_CREDENTIALS_FILE"] {
            configuration.credentialsFile = file.isEmpty ? nil : file  // empty: the URLs' own credentials
        }
        if let shard = environment["SAMEDAY_SHARD"] {
            guard let value = Int(shard) else { throw Invalid(description: "SAMEDAY_SHARD=\(shard): not a number") }
            configuration.shard = value
        }
        if let prefix = environment["SAMEDAY_NAME_PREFIX"] { configuration.namePrefix = prefix }
        if let folder = environment["SAMEDAY_DOMAIN_CONFIG"] { configuration.domainConfig = folder }
        if let folder = environment["SAMEDAY_STATE_DIR"] { configuration.stateDirectory = folder }
        if let store = environment["SAMEDAY_STORE"] { configuration.store = store.isEmpty ? nil : store }
        if let file = environment["SAMEDAY_STORE_PASSWORD_FILE"] {
            configuration.storePasswordFile = file.isEmpty ? nil : file
        }
        if let folder = environment["SAMEDAY_ALERTS_DIR"] { configuration.alertsDirectory = folder }
        if let folder = environment["SAMEDAY_ROLLUPS_DIR"] { configuration.rollupsDirectory = folder }
        if let listen = environment["SAMEDAY_METRICS_LISTEN"] { configuration.metricsListen = listen }
        if let silence = environment["SAMEDAY_SOURCE_SILENCE"] { configuration.sourceSilence = silence != "0" }
        if let folder = environment["SAMEDAY_SOURCES_DIR"] { configuration.sourcesDirectory = folder }
        if let listen = environment["SAMEDAY_SOURCES_METRICS_LISTEN"] { configuration.sourcesMetricsListen = listen }
        if let shards = environment["SAMEDAY_SHARDS"] {
            guard let value = Int(shards) else { throw Invalid(description: "SAMEDAY_SHARDS=\(shards): not a number") }
            configuration.shards = value
        }
        if let clock = environment["SAMEDAY_CLOCK"] {
            guard let mode = ClockMode(rawValue: clock) else {
                throw Invalid(description: "SAMEDAY_CLOCK=\(clock): expected wall or events")
            }
            configuration.clock = mode
        }
        try configuration.validate()
        return configuration
    }

    func validate() throws {
        guard shards >= 1, (0..<shards).contains(shard) else {
            throw Invalid(description: "shard \(shard) is not one of the \(shards) shards (0…\(shards - 1))")
        }
        guard (1...65535).contains(prefetch) else { throw Invalid(description: "prefetch must be 1…65535") }
        guard batchSize >= 1, batchSize <= prefetch else {
            throw Invalid(description: "batchSize must be between 1 and prefetch (\(prefetch))")
        }
        guard batchDelayMilliseconds >= 1 else { throw Invalid(description: "batchDelayMilliseconds must be ≥ 1") }
        guard snapshotSeconds >= 1 else { throw Invalid(description: "snapshotSeconds must be ≥ 1") }
        guard LocalDate(eventsFrom) != nil else { throw Invalid(description: "eventsFrom must be a YYYY-MM-DD date") }
        guard (0...366 * 86_400).contains(eventsAheadSeconds) else {
            throw Invalid(description: "eventsAheadSeconds must be 0…31622400 (a year)")
        }
        guard (1...3660).contains(rescheduleWithinDays) else {
            throw Invalid(description: "rescheduleWithinDays must be 1…3660")
        }
        guard (1...3660).contains(retainClosedDays) else {
            throw Invalid(description: "retainClosedDays must be 1…3660")
        }
        guard (1...3660).contains(eventLogDays) else { throw Invalid(description: "eventLogDays must be 1…3660") }
        guard (1...100_000_000).contains(maxDossiersPerUnit) else {
            throw Invalid(description: "maxDossiersPerUnit must be 1…100000000")
        }
        guard (3...300).contains(leaseSeconds) else { throw Invalid(description: "leaseSeconds must be 3…300") }
        guard maxClockJumpSeconds >= 1 else { throw Invalid(description: "maxClockJumpSeconds must be ≥ 1") }
        do { _ = try postgresStore } catch { throw Invalid(description: "\(error)") }
        if metricsListen.hasSuffix("+shard") && resolvedMetricsListen == metricsListen {
            throw Invalid(description: "metricsListen \"\(metricsListen)\": expected HOST:PORT or HOST:PORT+shard")
        }
    }

    /// The broker connection, with credentials from the credentials file when one is set (never from arguments).
    public func connection(name: String) throws -> ConnectionConfiguration {
        var connection = try ConnectionConfiguration(urls: brokers, connectionName: name)
        connection.heartbeat = heartbeatSeconds
        if let credentialsFile { try connection.useCredentials(fromFile: credentialsFile) }
        return connection
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case brokers, credentialsFile, shard, namePrefix, domainConfig, stateDirectory, store, storePasswordFile,
            leaseSeconds,
            alertsDirectory,
            rollupsDirectory, clock, prefetch, batchSize, batchDelayMilliseconds, snapshotSeconds, metricsListen,
            heartbeatSeconds, sourceSilence, shards, eventsFrom, eventsAheadSeconds, rescheduleWithinDays,
            maxClockJumpSeconds, retainClosedDays, eventLogDays, maxDossiersPerUnit, sourcesDirectory,
            sourcesMetricsListen
        static var allKeys: [String] { allCases.map(\.rawValue) }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = WorkerConfiguration()
        brokers = try container.decodeIfPresent([String].self, forKey: .brokers) ?? defaults.brokers
        credentialsFile = try container.decodeIfPresent(String.self, forKey: .credentialsFile)
        shard = try container.decodeIfPresent(Int.self, forKey: .shard) ?? defaults.shard
        namePrefix = try container.decodeIfPresent(String.self, forKey: .namePrefix) ?? defaults.namePrefix
        domainConfig = try container.decodeIfPresent(String.self, forKey: .domainConfig) ?? defaults.domainConfig
        stateDirectory = try container.decodeIfPresent(String.self, forKey: .stateDirectory) ?? defaults.stateDirectory
        store = try container.decodeIfPresent(String.self, forKey: .store)
        storePasswordFile = try container.decodeIfPresent(String.self, forKey: .storePasswordFile)
        leaseSeconds = try container.decodeIfPresent(Int.self, forKey: .leaseSeconds) ?? defaults.leaseSeconds
        alertsDirectory = try container.decodeIfPresent(String.self, forKey: .alertsDirectory)
        rollupsDirectory = try container.decodeIfPresent(String.self, forKey: .rollupsDirectory)
        clock = try container.decodeIfPresent(ClockMode.self, forKey: .clock) ?? defaults.clock
        prefetch = try container.decodeIfPresent(Int.self, forKey: .prefetch) ?? defaults.prefetch
        batchSize = try container.decodeIfPresent(Int.self, forKey: .batchSize) ?? defaults.batchSize
        batchDelayMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .batchDelayMilliseconds) ?? defaults.batchDelayMilliseconds
        snapshotSeconds = try container.decodeIfPresent(Int.self, forKey: .snapshotSeconds) ?? defaults.snapshotSeconds
        metricsListen = try container.decodeIfPresent(String.self, forKey: .metricsListen) ?? defaults.metricsListen
        heartbeatSeconds =
            try container.decodeIfPresent(Int.self, forKey: .heartbeatSeconds) ?? defaults.heartbeatSeconds
        sourceSilence = try container.decodeIfPresent(Bool.self, forKey: .sourceSilence)
        shards = try container.decodeIfPresent(Int.self, forKey: .shards) ?? defaults.shards
        eventsFrom = try container.decodeIfPresent(String.self, forKey: .eventsFrom) ?? defaults.eventsFrom
        eventsAheadSeconds =
            try container.decodeIfPresent(Int.self, forKey: .eventsAheadSeconds) ?? defaults.eventsAheadSeconds
        rescheduleWithinDays =
            try container.decodeIfPresent(Int.self, forKey: .rescheduleWithinDays) ?? defaults.rescheduleWithinDays
        maxClockJumpSeconds =
            try container.decodeIfPresent(Int.self, forKey: .maxClockJumpSeconds) ?? defaults.maxClockJumpSeconds
        retainClosedDays =
            try container.decodeIfPresent(Int.self, forKey: .retainClosedDays) ?? defaults.retainClosedDays
        eventLogDays = try container.decodeIfPresent(Int.self, forKey: .eventLogDays) ?? defaults.eventLogDays
        maxDossiersPerUnit =
            try container.decodeIfPresent(Int.self, forKey: .maxDossiersPerUnit) ?? defaults.maxDossiersPerUnit
        sourcesDirectory = try container.decodeIfPresent(String.self, forKey: .sourcesDirectory)
        sourcesMetricsListen =
            try container.decodeIfPresent(String.self, forKey: .sourcesMetricsListen) ?? defaults.sourcesMetricsListen
    }
}
