import SameDayCore

/// What a restart reads besides the dossier rows: a store answers them itself, and a SQLite store also on a second
/// connection (`ShardStore.sideReader`) while its own reads the rows.
public protocol RestartReads: AnyObject, Sendable {
    /// Tombstones of dossiers retired at or after `since`, oldest first: the FNV-1a hash of the code and when.
    func tombstones(since: Instant, _ body: (_ hash: UInt64, _ at: Instant) -> Void) throws
    /// Retired abandoned dossiers per unit code and field name.
    func retiredStock() throws -> [RetiredStockKey: Int]
}

/// A shard's durable state, whatever engine keeps it: `WorkerStore` (SQLite, one machine, the embedded default) or
/// `PostgresShardStore` (shared, so that any worker can serve any shard and a standby can take over). Both keep the
/// same things with the same guarantees: a commit is all in or all out; each open or retained dossier's compact state
/// is what a restart loads, with the events logged since those rows were last saved (`CommitBatch.savesRows`); an
/// alert id already in the outbox is kept as it was.
///
/// Methods block the calling thread (the worker calls them from its own threads, never from Swift's cooperative
/// pool) and are safe to call from several threads: each backend serialises its transactions.
public protocol ShardStore: AlertOutboxStore, RestartReads {
    /// Where the state lives, for logs and errors (a file path, or a PostgreSQL URL without its password).
    var location: String { get }

    /// Writes a batch in one transaction.
    func commit(_ batch: CommitBatch) throws

    /// Whether a failed write may succeed later with nothing changed in the process (a full disk, a read-only or
    /// failing device): the worker then keeps the batch and tries again instead of exiting, which would hand its
    /// deliveries back to the broker and count them towards the delivery limit.
    func isTransient(_ error: any Error) -> Bool

    /// Whether a commit may leave the dossier rows behind the event log (`CommitBatch.savesRows`): SQLite, where a
    /// restart replays the log's tail. PostgreSQL saves them in every commit, so a standby that takes the shard over
    /// loads current rows.
    var defersDossierRows: Bool { get }
    /// The events logged after the last commit that saved the dossier rows, in arrival order, with the clock each was
    /// applied at: what a restart replays on top of the rows. None for a store that does not defer the rows.
    func forEachEventAfterSavedRows(_ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void)
        throws
    /// The engine clock of the last commit that saved the dossier rows (the rows' own instant).
    func savedRowsClock() throws -> Instant?

    /// Every stored dossier (its row's key, code and compact state): what a restart loads. A store that keys rows
    /// by code (PostgreSQL) gives key 0; see `CommitBatch.dossiers`. The state is lent for the call only (SQLite's
    /// own buffer: a restart reads a million rows, and a copy of each cost an allocation).
    func forEachDossierRecord(
        _ body: (_ key: Int64, _ code: String, _ state: UnsafeBufferPointer<UInt8>) throws -> Void)
        throws
    /// The queue forecast's stored part of each unit (`CommitBatch.forecastUnits`), by unit code.
    func forecastUnits() throws -> [(unit: String, state: [UInt8])]
    /// Moves dossier rows that cannot be read back aside, with the reason, so a restart goes on.
    func quarantineDossiers(_ rows: [(key: Int64, code: String, reason: String)]) throws
    func quarantinedDossierCount() throws -> Int
    /// A read-only connection of its own to the same state, for what a restart reads beside the dossier rows (the
    /// tombstones and the retired stock), or nil where the store has a single connection: it then reads them after
    /// the rows.
    func sideReader() throws -> (any RestartReads)?
    /// The most recently retired dossier's code (tests, an operator).
    func lastTombstone() throws -> String?

    /// Whether the dossier rows must be built from the event log once (a state folder of an older version).
    func needsDossierRebuild() throws -> Bool
    /// Replaces every dossier row at once and clears `needsDossierRebuild`.
    func replaceDossiers(_ rows: [(code: String, state: [UInt8])]) throws
    /// The event log in arrival order, with the clock each event was applied at (migration and audit only).
    func forEachLoggedEvent(_ body: (_ arrival: Int64, _ bytes: [UInt8], _ appliedAt: Instant) throws -> Void) throws
    /// Moves logged events that cannot be read back aside, with the reason.
    func quarantine(_ rows: [(arrival: Int64, reason: String)]) throws
    func quarantinedEventCount() throws -> Int

    /// One small slice of retention work in its own short transaction (see `WorkerStore.prune`).
    func prune(eventsBefore: Instant, tombstonesBefore: Instant, alertsBeforeDay: String, limit: Int) throws
        -> PruneResult

    // The outbox (unpublished, unfiled, dead letters and their marks): `AlertOutboxStore`.
    /// Every alert in the outbox, oldest first (tests and the crash-safety and failover checks).
    func allAlerts() throws -> [OutboxAlert]

    /// The engine clock of the last commit.
    func clock() throws -> Instant?
    func firstDay() throws -> Int64?
    func lastEventDay() throws -> Int64?
    /// Events in the audit log (pruned after `eventLogDays`).
    func eventCount() throws -> Int
    /// Dossiers held (open, and closed ones not yet retired).
    func dossierCount() throws -> Int
    /// About how many rows `forEachDossier` will give, without counting them where the store saved the number.
    func dossierCountHint() throws -> Int
    func tombstoneCount() throws -> Int
    /// Bytes the state takes on disk. For PostgreSQL the shared tables' size, every shard's rows together: a share per
    /// shard would need a count of each table's rows.
    func bytesOnDisk() -> Int64
}

extension ShardStore {
    /// `forEachDossierRecord` with each state copied out (tests, tools).
    public func forEachDossier(_ body: (_ key: Int64, _ code: String, _ state: [UInt8]) throws -> Void) throws {
        try forEachDossierRecord { key, code, state in try body(key, code, Array(state)) }
    }

    public func prune(eventsBefore: Instant, tombstonesBefore: Instant, alertsBeforeDay: String) throws -> PruneResult {
        try prune(
            eventsBefore: eventsBefore, tombstonesBefore: tombstonesBefore, alertsBeforeDay: alertsBeforeDay,
            limit: 2000)
    }
    public func pendingDeadLetters() throws -> [DeadLetter] { try pendingDeadLetters(limit: 1000) }
    public func unfiledAlerts() throws -> [OutboxAlert] { try unfiledAlerts(limit: 10_000) }
}

/// A commit refused because another worker took the shard's lease since this one took it (the fencing epoch moved
/// on): the worker that gets it must stop at once, without acking, committing or firing anything more.
public struct LeaseLost: Error, CustomStringConvertible {
    public var shard: String
    public var heldEpoch: Int64
    public var currentEpoch: Int64?
    public init(shard: String, heldEpoch: Int64, currentEpoch: Int64?) {
        self.shard = shard
        self.heldEpoch = heldEpoch
        self.currentEpoch = currentEpoch
    }
    public var description: String {
        "the lease of \(shard) was taken over (held epoch \(heldEpoch), now \(currentEpoch.map(String.init) ?? "none")): this worker stops without committing"
    }
}
