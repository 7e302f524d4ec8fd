import Foundation
import RabbitMQ
import SameDayCore
import SameDayFiles
import SameDayPostgres

/// The worker's service configuration: a JSON file, then environment variables, which win.
/// docs/configuration.md documents each key for operators; keep the two tables in step.
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
public struct WorkerConfiguration: Sendable, Equatable {
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
        /// The key at fault, when one key is (so that an error about a value from the file can say where it is).
        public var key: String?

        public init(description: String, key: String? = nil) {
            self.description = description
            self.key = key
        }
    }

    /// Reads `path` (JSON; unknown keys are errors, so a typo does not silently fall back to a default), then
    /// applies the environment. Errors about the file name its line, column and key (docs/configuration.md).
    public static func load(path: String?, environment: [String: String]) throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        var file: JSONObject?
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Invalid(description: "\(path): cannot read the worker configuration")
            }
            do throws(ConfigurationError) {
                let root = try JSONReader(file: path).root([UInt8](data), allowed: Key.allKeys.sorted())
                configuration = try read(root)
                file = root
            } catch {
                throw Invalid(description: error.description, key: error.keyPath)
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
        do {
            try configuration.validate()
        } catch let error as Invalid {
            // A value the file set, and the environment did not replace: say where it is.
            guard let key = error.key, let file, let node = file[key], !environmentKeys(environment).contains(key)
            else { throw error }
            var message = Substring(error.description)
            if message.hasPrefix(key + " ") { message = message.dropFirst(key.count + 1) }
            throw Invalid(description: file.reader.error(node, key, String(message)).description, key: key)
        }
        return configuration
    }

    /// The keys the environment set, which win over the file's.
    static func environmentKeys(_ environment: [String: String]) -> Set<String> {
        let names: [String: String] = [
            "SAMEDAY_AMQP_URL": "brokers", "SAMEDAY_AMQP_CREDENTIALS_FILE": "credentialsFile", "SAMEDAY_SHARD": "shard",
            "SAMEDAY_NAME_PREFIX": "namePrefix", "SAMEDAY_DOMAIN_CONFIG": "domainConfig",
            "SAMEDAY_STATE_DIR": "stateDirectory", "SAMEDAY_STORE": "store",
            "SAMEDAY_STORE_PASSWORD_FILE": "storePasswordFile", "SAMEDAY_ALERTS_DIR": "alertsDirectory",
            "SAMEDAY_ROLLUPS_DIR": "rollupsDirectory", "SAMEDAY_METRICS_LISTEN": "metricsListen",
            "SAMEDAY_SOURCE_SILENCE": "sourceSilence", "SAMEDAY_SOURCES_DIR": "sourcesDirectory",
            "SAMEDAY_SOURCES_METRICS_LISTEN": "sourcesMetricsListen", "SAMEDAY_SHARDS": "shards",
            "SAMEDAY_CLOCK": "clock",
        ]
        return Set(environment.keys.compactMap { names[$0] })
    }

    /// The file's settings over the defaults, each checked for its type.
    static func read(_ o: JSONObject) throws(ConfigurationError) -> WorkerConfiguration {
        var c = WorkerConfiguration()
        func set(_ value: inout String, _ key: String) throws(ConfigurationError) {
            if let v = try o.string(key) { value = v }
        }
        func set(_ value: inout Int, _ key: String) throws(ConfigurationError) {
            if let v = try o.int(key) { value = v }
        }
        if let v = try o.strings("brokers") { c.brokers = v }
        c.credentialsFile = try o.string("credentialsFile")
        try set(&c.shard, "shard")
        try set(&c.namePrefix, "namePrefix")
        try set(&c.domainConfig, "domainConfig")
        try set(&c.stateDirectory, "stateDirectory")
        c.store = try o.string("store")
        c.storePasswordFile = try o.string("storePasswordFile")
        try set(&c.leaseSeconds, "leaseSeconds")
        c.alertsDirectory = try o.string("alertsDirectory")
        c.rollupsDirectory = try o.string("rollupsDirectory")
        if let text = try o.string("clock") {
            guard let mode = ClockMode(rawValue: text) else {
                throw o.error("clock", "expected \"wall\" or \"events\", found \(o["clock"]!.found)")
            }
            c.clock = mode
        }
        try set(&c.prefetch, "prefetch")
        try set(&c.batchSize, "batchSize")
        try set(&c.batchDelayMilliseconds, "batchDelayMilliseconds")
        try set(&c.snapshotSeconds, "snapshotSeconds")
        try set(&c.metricsListen, "metricsListen")
        try set(&c.heartbeatSeconds, "heartbeatSeconds")
        c.sourceSilence = try o.bool("sourceSilence")
        try set(&c.shards, "shards")
        try set(&c.eventsFrom, "eventsFrom")
        try set(&c.eventsAheadSeconds, "eventsAheadSeconds")
        try set(&c.rescheduleWithinDays, "rescheduleWithinDays")
        try set(&c.maxClockJumpSeconds, "maxClockJumpSeconds")
        try set(&c.retainClosedDays, "retainClosedDays")
        try set(&c.eventLogDays, "eventLogDays")
        try set(&c.maxDossiersPerUnit, "maxDossiersPerUnit")
        c.sourcesDirectory = try o.string("sourcesDirectory")
        try set(&c.sourcesMetricsListen, "sourcesMetricsListen")
        return c
    }

    func validate() throws {
        guard shards >= 1, (0..<shards).contains(shard) else {
            throw Invalid(
                description: "shard \(shard) is not one of the \(shards) shards (0…\(shards - 1))", key: "shard")
        }
        guard (1...65535).contains(prefetch) else {
            throw Invalid(description: "prefetch must be 1…65535", key: "prefetch")
        }
        guard batchSize >= 1, batchSize <= prefetch else {
            throw Invalid(description: "batchSize must be between 1 and prefetch (\(prefetch))", key: "batchSize")
        }
        guard batchDelayMilliseconds >= 1 else {
            throw Invalid(description: "batchDelayMilliseconds must be ≥ 1", key: "batchDelayMilliseconds")
        }
        guard snapshotSeconds >= 1 else {
            throw Invalid(description: "snapshotSeconds must be ≥ 1", key: "snapshotSeconds")
        }
        guard LocalDate(eventsFrom) != nil else {
            throw Invalid(description: "eventsFrom must be a YYYY-MM-DD date", key: "eventsFrom")
        }
        guard (0...366 * 86_400).contains(eventsAheadSeconds) else {
            throw Invalid(description: "eventsAheadSeconds must be 0…31622400 (a year)", key: "eventsAheadSeconds")
        }
        guard (1...3660).contains(rescheduleWithinDays) else {
            throw Invalid(description: "rescheduleWithinDays must be 1…3660", key: "rescheduleWithinDays")
        }
        guard (1...3660).contains(retainClosedDays) else {
            throw Invalid(description: "retainClosedDays must be 1…3660", key: "retainClosedDays")
        }
        guard (1...3660).contains(eventLogDays) else {
            throw Invalid(description: "eventLogDays must be 1…3660", key: "eventLogDays")
        }
        guard (1...100_000_000).contains(maxDossiersPerUnit) else {
            throw Invalid(description: "maxDossiersPerUnit must be 1…100000000", key: "maxDossiersPerUnit")
        }
        guard (3...300).contains(leaseSeconds) else {
            throw Invalid(description: "leaseSeconds must be 3…300", key: "leaseSeconds")
        }
        guard maxClockJumpSeconds >= 1 else {
            throw Invalid(description: "maxClockJumpSeconds must be ≥ 1", key: "maxClockJumpSeconds")
        }
        do { _ = try postgresStore } catch { throw Invalid(description: "\(error)", key: "store") }
        if metricsListen.hasSuffix("+shard") && resolvedMetricsListen == metricsListen {
            throw Invalid(
                description: "metricsListen \"\(metricsListen)\": expected HOST:PORT or HOST:PORT+shard",
                key: "metricsListen")
        }
    }

    /// The broker connection, with credentials from the credentials file when one is set (never from arguments).
    public func connection(name: String) throws -> ConnectionConfiguration {
        var connection = try ConnectionConfiguration(urls: brokers, connectionName: name)
        connection.heartbeat = heartbeatSeconds
        if let credentialsFile { try connection.useCredentials(fromFile: credentialsFile) }
        return connection
    }

    /// The keys `worker.json` may have.
    enum Key: String, CaseIterable {
        case brokers, credentialsFile, shard, namePrefix, domainConfig, stateDirectory, store, storePasswordFile,
            leaseSeconds,
            alertsDirectory,
            rollupsDirectory, clock, prefetch, batchSize, batchDelayMilliseconds, snapshotSeconds, metricsListen,
            heartbeatSeconds, sourceSilence, shards, eventsFrom, eventsAheadSeconds, rescheduleWithinDays,
            maxClockJumpSeconds, retainClosedDays, eventLogDays, maxDossiersPerUnit, sourcesDirectory,
            sourcesMetricsListen
        static var allKeys: [String] { allCases.map(\.rawValue) }
    }
}
