import Foundation
import Logging
import SameDayBroker
import SameDayCore
import SameDayFiles
import SameDayStore
import Synchronization

/// Where the worker's "now" comes from.
public enum ClockMode: String, Sendable, Codable {
    /// The wall clock: alerts fire on time even when no event arrives (production).
    case wall
    /// The newest `occurredAt` seen, never going back: backfills and demonstrations of past periods.
    case events
}

/// A source of the current instant, injected so tests can drive time by hand.
public protocol WorkerClock: Sendable {
    func now() -> Instant
}

/// The system's wall clock.
public struct SystemClock: WorkerClock {
    public init() {}
    public func now() -> Instant { Instant(Date().timeIntervalSince1970.rounded(.down)) }
}

/// How long a worker keeps what it no longer needs for live work (issue "state bounded by open work").
public struct Retention: Sendable, Equatable {
    /// A closed dossier stays this long after its last event, while late events may still change it; then it is
    /// retired (its figures are final in the day rollups) and the rollups of days older than this are never
    /// rewritten. Default 62 days: a month's report plus a month of late events.
    public var closedDays: Int
    /// The event log (an audit trail) and the tombstones of retired dossiers are kept this long.
    public var eventLogDays: Int

    public init(closedDays: Int = 62, eventLogDays: Int = 62) {
        self.closedDays = closedDays
        self.eventLogDays = eventLogDays
    }

    public var closedSeconds: Int64 { Int64(closedDays) * LocalTime.secondsPerDay }
    public var eventLogSeconds: Int64 { Int64(eventLogDays) * LocalTime.secondsPerDay }
}

/// When the engine saves the rows of the dossiers that changed (`CommitBatch.savesRows`) into a store that defers
/// them (`ShardStore.defersDossierRows`): at the first bound reached. Between saves a commit writes the events and
/// the alerts only; a restart loads the rows and replays the events logged since the last save. Saving in every
/// commit rewrote a 4 KiB page of the dossier table for nearly every event (a commit's dossiers are spread over the
/// live window); a save writes each page once for thousands of events.
public struct RowSaving: Sendable, Equatable {
    /// Dossiers changed since the last save.
    public var maxDossiers: Int
    /// Events applied since the last save: what a restart after a SIGKILL replays at most (at the live rate of
    /// applying them: 0.2 s in the drain benchmark, 1.5 s with a million dossiers open at once).
    public var maxEvents: Int
    /// Wall-clock time since the last save: how stale the rows that `sameday board` reads may be.
    public var maxInterval: Duration
    /// Engine-clock seconds since the last save: the log's tail never spans a retention window (in `.events` mode a
    /// backfill moves months in seconds).
    public var maxClockSeconds: Int64

    public init(
        maxDossiers: Int = 20_000, maxEvents: Int = 20_000, maxInterval: Duration = .seconds(2),
        maxClockSeconds: Int64 = LocalTime.secondsPerDay
    ) {
        self.maxDossiers = maxDossiers
        self.maxEvents = maxEvents
        self.maxInterval = maxInterval
        self.maxClockSeconds = maxClockSeconds
    }
}

/// A dossier change the rollups must follow: changed by events from `since` (a day number) on, or retired.
public enum RollupChange: Sendable {
    case changed(Dossier, since: Int64)
    case retired(code: String, abandonedIn: RollupCell?)
}

/// A group commit ready to be written: the batch, the alerts it adds to the outbox, and the changes the rollups
/// follow once it is durable.
public struct PreparedCommit: Sendable {
    public var batch: CommitBatch
    public var alerts: [OutboxAlert] { batch.alerts }
    public var rollupChanges: [RollupChange]
    /// The batch's alerts before `encodeAlerts` turns them into outbox rows.
    var newAlerts: [Alert]

    /// Renders the new alerts as outbox rows (JSON, routing key, day) into the batch: on the commit thread, not on
    /// the consume thread that prepared them.
    mutating func encodeAlerts() {
        guard !newAlerts.isEmpty else { return }
        batch.alerts.reserveCapacity(batch.alerts.count + newAlerts.count)
        for alert in newAlerts { batch.alerts.append(OutboxAlert(alert)) }
        newAlerts = []
    }

    /// Frees what only the store needed (the events' bodies, the dossier rows) once it is written: here, on the
    /// commit thread. Freed where the consume thread collects the commit, it cost that thread 3 % of its time.
    mutating func releaseWritten() {
        batch.events = []
        batch.dossiers = []
        batch.forecastUnits = []
    }
}

/// The worker's state and its durable mirror, without any broker: the core engine (dossiers, timers) in memory,
/// every change staged into one `CommitBatch`, written to SQLite in one transaction.
///
/// The durable state is each open or retained dossier's compact state, saved every few seconds (`RowSaving`), and
/// the event log: a restart loads the rows and replays the events logged since they were saved. Closed dossiers
/// are retired `Retention.closedDays` after their last event; an event for a retired dossier is refused with the
/// reason `dossier retired` (tombstones are kept `eventLogDays`).
public final class WorkerEngine {
    public let configuration: Configuration
    public let store: any ShardStore
    public let clockMode: ClockMode
    public let retention: Retention
    private let clock: any WorkerClock
    private let logger: Logger
    private var engine: Replay
    private var staged = CommitBatch()
    /// Alerts raised since the last commit (`PreparedCommit.newAlerts`).
    private var stagedAlerts: [Alert] = []
    /// Dossiers changed since the last commit, by slot, with the first day an event changed them from
    /// (`onlyAlerts`: an alert, no event). A touched dossier is not retired before the commit, so its slot stays its.
    private var touched = SlotMarks()
    private static let onlyAlerts = Int64.max
    /// Retirement candidates: one entry per dossier (the engine marks which are queued), checked when due.
    private(set) var retirementQueue = InstantHeap<RetirementCandidate>()
    /// Numbers the candidates in the order they were queued (`RetirementCandidate.order`).
    private var candidatesQueued: Int64 = 0
    /// Tombstones of retired dossiers (FNV-1a of the code), with their expiry queue.
    private var tombstones: Set<UInt64> = []
    private var tombstoneExpiry: [(at: Instant, hash: UInt64)] = []
    private var tombstoneExpiryHead = 0
    public private(set) var firstDay: Int64?
    public private(set) var lastEventDay: Int64?
    private var daysChanged = false
    /// The key the next dossier committed for the first time gets (`CommitBatch.dossiers`).
    private var nextStorageKey: Int64 = 1
    /// Dossiers changed since the rows were last saved, by slot, and what else decides the next save (`RowSaving`).
    private var unsaved = SlotMarks()
    /// A dossier retired since the last save had unsaved changes: the next commit saves the rows.
    private var retiredUnsaved = false
    private var eventsSinceSave = 0
    private var lastSave = ContinuousClock.now
    private var clockAtLastSave: Instant?
    private var saveRequested = false
    private let defersRows: Bool
    public var rowSaving = RowSaving()

    /// `sourceSilence`: also watch units for silence (`source_silent` alerts).
    public init(
        configuration: Configuration, store: any ShardStore, clockMode: ClockMode,
        clock: any WorkerClock = SystemClock(),
        retention: Retention = Retention(), sourceSilence: Bool = false,
        logger: Logger = Logger(label: "sameday.worker")
    ) {
        self.configuration = configuration
        self.store = store
        self.clockMode = clockMode
        self.clock = clock
        self.retention = retention
        self.logger = logger
        self.engine = Replay(config: configuration)
        self.defersRows = store.defersDossierRows
        engine.detectSilence = sourceSilence
    }

    /// Reads the engine in place. `engine` is a struct stored in this class: calling one of its non-mutating
    /// methods directly copies the whole engine first (a retain and a release of each of its buffers), and the
    /// checks below run for every event.
    @inline(__always) private func peek<R>(_ body: (inout Replay) -> R) -> R { body(&engine) }

    /// `occurredAt` of the newest event applied: with the wall clock, how far behind the unit systems we are.
    public private(set) var newestOccurredAt: Instant?

    /// The most dossiers one unit may hold (nil: no limit): a unit system that floods new dossier codes, by fault
    /// or by intent, fills its own quota and no more.
    public var maxDossiersPerUnit: Int?

    /// The fullest unit's share of `maxDossiersPerUnit` (0 without a limit), and that unit.
    public func fullestUnit() -> (unit: UnitID, ratio: Double)? {
        guard let limit = maxDossiersPerUnit, !configuration.units.isEmpty else { return nil }
        var best: UnitID = 0
        for u in 1..<UnitID(configuration.units.count) where engine.heldDossiers(of: u) > engine.heldDossiers(of: best)
        {
            best = u
        }
        return (best, Double(engine.heldDossiers(of: best)) / Double(limit))
    }

    /// The engine's current instant; nil before its first event (or a stored clock) moved it.
    public var now: Instant? { engine.clock }
    /// The local day of `now`.
    public var clockDay: Int64? { engine.clock.map(LocalTime.day(of:)) }
    /// When the next alert threshold falls (the consume wait must not outlast it in wall-clock mode).
    public var nextTimerAt: Instant? { engine.nextTimerAt }
    /// Dossiers held: open ones and closed ones not yet retired.
    public var dossierCount: Int { engine.liveDossierCount }
    public var tombstoneCount: Int { tombstones.count }

    public struct RebuildSummary: Sendable {
        /// Events replayed: those logged after the rows were last saved, and once, when an older state folder's log
        /// was turned into dossier rows, all of it.
        public var events: Int
        public var dossiers: Int
        public var missedAlerts: Int
        /// Stored rows that could not be read back: set aside with the reason, not fatal.
        public var quarantined: Int
        public var seconds: Double
        /// Retired abandoned dossiers per unit code and field name (read beside the rows).
        public var retiredStock: [RetiredStockKey: Int]
    }

    /// Loads the stored dossiers, replays the events logged since they were saved, then (wall clock) fires what
    /// came due while the worker was down: those alerts are marked late-fired and committed. Ends with a commit that
    /// saves the rows. A state folder of an older version has only its log: that is replayed once into dossier rows.
    public func rebuild() throws -> RebuildSummary {
        let started = Date()
        var replayed = 0
        var quarantined = 0
        // Rows built from an older folder's log do not record the levels its worker fired between events.
        let rowsRecordFiredLevels = try !store.needsDossierRebuild()
        if !rowsRecordFiredLevels {
            (replayed, quarantined) = try dossiersFromLog()
        }
        // The rows' own instant first (they are as the engine was then), the last commit's after the log's tail.
        let storedClock = try store.clock()
        if let rowsClock = try store.savedRowsClock() { engine.advance(to: rowsClock) }
        // The forecast's per-unit part first: loading a dossier puts it back in its unit's queue.
        for unit in engine.restoreForecast(try store.forecastUnits()) {
            logger.warning(
                "the queue forecast of a unit does not read back: it starts afresh",
                metadata: ["unit": "\(unit.prefix(100))"])
        }
        firstDay = try store.firstDay()
        lastEventDay = try store.lastEventDay()
        var unreadable: [(key: Int64, code: String, reason: String)] = []
        let expected = try store.dossierCountHint()
        engine.reserveCapacity(expected)
        var retirements: [(at: Instant, value: RetirementCandidate)] = []
        retirements.reserveCapacity(expected)
        // The rows are read and decoded on a helper thread while this one loads them into the engine (and arms
        // their timers): on two cores a restart with a million dossiers takes about half as long. The window's
        // tombstones (the year's soak holds 150,000 of them at a tenth of the city's volume) and the retired stock
        // are read meanwhile on a connection of their own, which the loading thread, waiting for rows, leaves room
        // for. A store with one connection reads them on the helper after the rows.
        let tombstonesSince = engine.clock.map { $0 - retention.eventLogSeconds } ?? .min
        let sideReader = try store.sideReader()
        let besideRows = sideReader.map { reader in
            BackgroundRead(name: "sameday.load-side") { try RetiredState(reading: reader, since: tombstonesSince) }
        }
        let afterRows = try StoredDossiers.read(
            from: store, configuration: configuration,
            afterwards: { [store] in
                sideReader == nil ? try RetiredState(reading: store, since: tombstonesSince) : nil
            }
        ) { row in
            let (key, code, dossier, reason) = row.parts()
            nextStorageKey = max(nextStorageKey, key + 1)
            if let reason {
                unreadable.append((key, code, reason.description))
                return
            }
            let last = dossier.lastEventAt
            // Nothing keeps two rows from naming one dossier but the engine itself: should that ever fail, the
            // first row stands and the other is set aside rather than silently overwriting it.
            // Handed on (`consume`): passed as a binding still in scope, each dossier was copied.
            guard engine.loadNew(consume dossier, storageKey: key, queued: last != nil) else {
                unreadable.append((key, code, "a second stored row for a dossier already loaded"))
                return
            }
            if let last { retirements.append((last + retention.closedSeconds, candidate(code))) }
        }
        retirementQueue.push(contentsOf: consume retirements)
        engine.armRestoredForecast()
        if !unreadable.isEmpty {
            try store.quarantineDossiers(unreadable)
            for row in unreadable.prefix(20) {
                logger.error(
                    "stored dossier quarantined: it cannot be read back",
                    metadata: ["dossier": "\(row.code.prefix(100))", "reason": "\(row.reason.prefix(300))"])
            }
        }
        // Nothing adds a tombstone before these: the loaded window is the whole of it.
        let retired = try besideRows?.value() ?? afterRows!
        tombstones = retired.hashes
        tombstoneExpiry = retired.expiry
        tombstoneExpiryHead = 0
        replayed += try replayLogTail()
        // What fires at the stored clock: silence alerts due by then were committed with it (no row records them),
        // so they are dropped, not raised a second time. A dossier's row records the levels it has fired, so a
        // dossier alert that fires here was never committed: a threshold at exactly the instant of the last event
        // before the stop (an event fires the timers strictly before its own time; those at it fire with the next
        // one). It is committed now, as the uninterrupted worker would have, with the same id and times. (Rows built
        // from an older log record no such levels: there everything due by the stored clock is taken as sent.)
        if let stored = [storedClock, engine.clock].compactMap({ $0 }).max() { engine.jump(to: stored) }
        for alert in engine.takeAlerts() where rowsRecordFiredLevels && !alert.dossier.isEmpty { stage(alert) }
        var missed = 0
        if clockMode == .wall {
            let before = stagedAlerts.count
            engine.jump(to: clock.now())
            collectAlerts()
            missed = stagedAlerts.count - before
        }
        // The rows are saved now: the tail just replayed is not replayed again, and a store that never saved rows
        // records where its log's tail starts.
        if defersRows || !stagedAlerts.isEmpty { try commit() }
        return RebuildSummary(
            events: replayed, dossiers: engine.liveDossierCount, missedAlerts: missed,
            quarantined: quarantined + unreadable.count, seconds: Date().timeIntervalSince(started),
            retiredStock: retired.stock)
    }

    /// Replays the events logged after the rows were last saved, as they were applied (same clock, same order), and
    /// stages their dossiers' alerts again: the outbox keeps the ids it holds, and those it lacks (a threshold due at
    /// the instant of the last commit) were never sent. Source-silence alerts are not raised again, as at any start.
    private func replayLogTail() throws -> Int {
        var count = 0
        var unreadable: [(arrival: Int64, reason: String)] = []
        try store.forEachEventAfterSavedRows { arrival, bytes, appliedAt in
            do {
                let event = try bytes.withUnsafeBytes { raw throws(EventDecodingError) in try DossierEvent.decode(raw) }
                if let slot = try engine.receiveIntoSlot(event, at: max(engine.clock ?? appliedAt, appliedAt)) {
                    noteApplied(event, slot: slot)
                }
                count += 1
            } catch {
                unreadable.append((arrival, "\(error)"))
            }
        }
        for alert in engine.takeAlerts() where !alert.dossier.isEmpty { stage(alert) }
        try quarantineLogged(unreadable)
        return count
    }

    /// Moves logged events that cannot be replayed aside (`event_quarantine`), logging the first 20.
    private func quarantineLogged(_ unreadable: [(arrival: Int64, reason: String)]) throws {
        guard !unreadable.isEmpty else { return }
        try store.quarantine(unreadable)
        for row in unreadable.prefix(20) {
            logger.error(
                "stored event quarantined: it cannot be read back",
                metadata: ["arrival": "\(row.arrival)", "reason": "\(row.reason.prefix(300))"])
        }
    }

    /// An older state folder: replays its event log once and stores the dossier rows it implies.
    private func dossiersFromLog() throws -> (events: Int, quarantined: Int) {
        var replay = Replay(config: configuration)
        var count = 0
        var unreadable: [(arrival: Int64, reason: String)] = []
        var first: Int64?, last: Int64?
        try store.forEachLoggedEvent { arrival, bytes, appliedAt in
            do {
                let event = try bytes.withUnsafeBytes { raw throws(EventDecodingError) in try DossierEvent.decode(raw) }
                try replay.receive(event, at: max(replay.clock ?? appliedAt, appliedAt))
                let day = LocalTime.day(of: event.occurredAt)
                first = min(first ?? day, day)
                last = max(last ?? day, day)
                count += 1
            } catch {
                unreadable.append((arrival, "\(error)"))
            }
        }
        try quarantineLogged(unreadable)
        let rows = replay.dossiers.filter { !$0.code.isEmpty }.map {
            (code: $0.code, state: DossierRecord.encode($0, config: configuration))
        }
        try store.replaceDossiers(rows)
        var days = CommitBatch()
        days.firstDay = first
        days.lastEventDay = last
        days.clock = try store.clock()
        if days.clock != nil || first != nil { try store.commit(days) }
        logger.notice(
            "dossier rows built from an older state folder's event log",
            metadata: ["events": "\(count)", "dossiers": "\(rows.count)"])
        return (count, unreadable.count)
    }

    /// Why a delivery must not be applied, or nil when it may (docs/worker.md lists every refusal): its time is
    /// outside the plausible window; the envelope or the unit's ownership of the dossier fails
    /// (`Configuration.admissionRefusal`: a unit system allowed `district.760.*` must not touch Sở Y tế's
    /// dossiers); the dossier is held with another unit's events; it was retired, or it is not held and the event
    /// is older than the window in which retired dossiers are remembered (an old export sent again must not
    /// re-open it); or the unit already holds `maxDossiersPerUnit`. What is stored is the bytes that arrived, which
    /// decoded to this event, so it always reads back.
    public func refusal(of event: DossierEvent, envelope: DeliveryEnvelope?, bounds: EventTimeBounds, now: Instant)
        -> EventRefusal?
    {
        if let reason = bounds.violation(of: event, now: now) { return .implausibleTime("\(reason)") }
        if let envelope, let refusal = configuration.admissionRefusal(of: event, envelope: envelope) {
            return refusal
        }
        guard let unit = configuration.unitID(event.unit) else { return .unknownUnit(event.unit) }
        let (held, heldRefusal) = peek { $0.heldUnitCheck(of: event.dossier, unit: unit) }
        if held { return heldRefusal }
        if !tombstones.isEmpty, tombstones.contains(FNV1a.hash(event.dossier)) {
            return .retired(dossier: event.dossier, closedDays: retention.closedDays)
        }
        if let clock = peek({ $0.clock }), event.occurredAt < clock - retention.eventLogSeconds {
            return .tooOld(occurredAt: event.occurredAt, horizon: clock - retention.eventLogSeconds)
        }
        if let limit = maxDossiersPerUnit, peek({ $0.heldDossiers(of: unit) }) >= limit {
            return .unitFull(unit: event.unit, limit: limit)
        }
        return nil
    }

    /// Stages a refused delivery for the dead-letter outbox: it is stored in the commit that acks it.
    public func stage(deadLetter: DeadLetter) { staged.deadLetters.append(deadLetter) }

    /// Applies one event at the engine clock; false for a duplicate (same `eventId` already applied). `body` is
    /// what arrived (the audit log stores it); nil stores the canonical encoding.
    @discardableResult
    public func apply(_ event: DossierEvent, body: [UInt8]? = nil) throws(DossierError) -> Bool {
        let reading =
            switch clockMode {
            case .wall: clock.now()
            case .events: event.occurredAt
            }
        // The clock never goes back.
        let at = max(engine.clock ?? reading, reading)
        guard let slot = try engine.receiveIntoSlot(event, at: at) else {
            collectAlerts()
            return false
        }
        staged.events.append((event.eventId, event.dossier, at, body ?? Array(event.encoded().utf8)))
        noteApplied(event, slot: slot)
        if let end = configuration.earliestHolidaysEnd, event.occurredAt >= end,
            let unit = configuration.unitID(event.unit),
            let calendar = configuration.calendarRunOut(unit: unit, at: event.occurredAt)
        {
            calendarRunOuts[calendar, default: 0] += 1
        }
        collectAlerts()
        return true
    }

    /// What an applied event changes besides the engine (a live one, or one replayed from the log at start).
    private func noteApplied(_ event: DossierEvent, slot: Int) {
        eventsSinceSave += 1
        touched.mark(slot, value: LocalTime.day(of: event.occurredAt))
        if engine.markQueued(slot: slot) {
            retirementQueue.push(event.occurredAt + retention.closedSeconds, candidate(event.dossier))
        }
        noteDays(event)
        if !sawSimulatedEvents, SimulatedData.isSimulated(event) { sawSimulatedEvents = true }
    }

    /// An event made by `sameday simulate` was applied since start: the rollups folder says so (`SimulatedData`).
    public private(set) var sawSimulatedEvents = false

    /// Events applied on a day their unit's calendar lists no holidays for (past its `holidaysThrough`), by calendar
    /// id, since the last `takeCalendarRunOuts`: their deadlines count every weekday as a working day.
    private var calendarRunOuts: [String: Int] = [:]

    public func takeCalendarRunOuts() -> [String: Int] {
        defer { calendarRunOuts.removeAll() }
        return calendarRunOuts
    }

    /// Moves the clock to `instant` (never back), firing every threshold due by then.
    public func advance(to instant: Instant) {
        if let clock = engine.clock, instant <= clock { return }
        engine.advance(to: instant)
        collectAlerts()
    }

    /// Fires what the wall clock has made due (no-op in `.events` mode, where only events move time).
    public func tick() {
        if clockMode == .wall { advance(to: clock.now()) }
    }

    public var hasStagedDeadLetters: Bool { !staged.deadLetters.isEmpty }

    /// Whether anything awaits `commit()`.
    public var hasStagedChanges: Bool {
        !staged.events.isEmpty || !stagedAlerts.isEmpty || !touched.isEmpty || !staged.deadLetters.isEmpty
            || !staged.retired.isEmpty || daysChanged || rowsSaveDue
    }

    /// Whether the next commit saves the rows (`RowSaving`): always for a store that does not defer them.
    private var rowsSaveDue: Bool {
        guard saveRequested || eventsSinceSave > 0 || !unsaved.isEmpty || retiredUnsaved else { return false }
        if saveRequested || !defersRows || retiredUnsaved { return true }
        if unsaved.count >= rowSaving.maxDossiers || eventsSinceSave >= rowSaving.maxEvents { return true }
        if let now = engine.clock, let saved = clockAtLastSave, now - saved >= rowSaving.maxClockSeconds { return true }
        return ContinuousClock.now - lastSave >= rowSaving.maxInterval
    }

    /// The next commit saves the rows whatever `rowSaving` says (a graceful stop, a snapshot).
    public func saveRowsAtNextCommit() { saveRequested = true }

    /// Retires up to `limit` dossiers whose time has come (in bounded slices: the consume thread does this
    /// between batches).
    public func retireDue(limit: Int = 2000) {
        guard let clock = engine.clock else { return }  // no event yet: nothing is due
        var done = 0
        while done < limit, let top = retirementQueue.peek, top.at <= clock {
            _ = retirementQueue.pop()
            let code = top.value.code
            done += 1
            guard let slot = peek({ $0.slot(of: code) }) else { continue }
            engine.settle(code)
            collectAlerts()
            guard let dossier = peek({ $0.dossier(inSlot: slot) }) else { continue }
            guard let retirement = dossier.retirement(config: configuration, retainSeconds: retention.closedSeconds)
            else {
                // Its SLA clock runs (running, or paused for a fee): only an event can close it, and the next event
                // queues it again. Looking again every day instead made the queue's work grow with the open
                // dossiers, and closed ones waited behind them during a catch-up.
                engine.unmarkQueued(code)
                continue
            }
            if retirement.at > clock || touched.value(slot) != nil {
                retirementQueue.push(max(retirement.at, clock + 1), candidate(code))
                continue
            }
            let key = engine.storageKey(of: code) ?? 0
            engine.remove(code)
            // Its row is deleted in the commit that retires it, so the log's tail must not hold events of it either
            // (a restart would rebuild it from them alone): that commit saves the rows.
            if unsaved.unmark(slot) { retiredUnsaved = true }
            staged.retired.append(
                (
                    key, code, clock,
                    retirement.abandonedIn.map {
                        RetiredStockKey(
                            unit: configuration.unit($0.unit).code, field: configuration.fields[Int($0.field)])
                    }
                ))
            addTombstone(hash: FNV1a.hash(code), at: clock)
            retiredChanges.append(.retired(code: code, abandonedIn: retirement.abandonedIn))
        }
        // Tombstones older than the event log's retention are forgotten (the store prunes its copies).
        let horizon = clock - retention.eventLogSeconds
        while tombstoneExpiryHead < tombstoneExpiry.count, tombstoneExpiry[tombstoneExpiryHead].at < horizon {
            tombstones.remove(tombstoneExpiry[tombstoneExpiryHead].hash)
            tombstoneExpiryHead += 1
        }
        if tombstoneExpiryHead > 4096, tombstoneExpiryHead * 2 > tombstoneExpiry.count {
            tombstoneExpiry.removeFirst(tombstoneExpiryHead)
            tombstoneExpiryHead = 0
        }
    }
    private var retiredChanges: [RollupChange] = []

    /// Takes everything staged since the last commit as one batch (with the delivery marks of alerts already
    /// sent), for the caller to write; the engine goes on with an empty batch.
    public func prepareCommit(published: [String] = [], filed: [String] = [], deadLettersSent: [Int64] = [])
        -> PreparedCommit?
    {
        guard hasStagedChanges || !published.isEmpty || !filed.isEmpty || !deadLettersSent.isEmpty else { return nil }
        var changes = retiredChanges
        retiredChanges.removeAll(keepingCapacity: true)
        touched.drain { slot, since in
            unsaved.mark(slot, value: 0)
            if since != Self.onlyAlerts, let dossier = peek({ $0.dossier(inSlot: slot) }) {
                changes.append(.changed(dossier, since: since))
            }
        }
        staged.clock = peek { $0.clock }
        if rowsSaveDue { saveRows() }
        if daysChanged {
            staged.firstDay = firstDay
            staged.lastEventDay = lastEventDay
            daysChanged = false
        }
        staged.publishedAlertIDs = published
        staged.filedAlertIDs = filed
        staged.confirmedDeadLetters = deadLettersSent
        let prepared = PreparedCommit(batch: staged, rollupChanges: changes, newAlerts: stagedAlerts)
        staged = CommitBatch()
        stagedAlerts = []
        return prepared
    }

    /// Stages the rows of every dossier changed since the last save, and the forecast's changed units, as current
    /// up to this batch.
    private func saveRows() {
        staged.dossiers.reserveCapacity(unsaved.count)
        unsaved.drain { slot, _ in
            guard let key = engine.storageKey(ofSlot: slot, assigning: &nextStorageKey),
                let row = peek({
                    $0.withDossier(inSlot: slot) { (key, $0.code, DossierRecord.encode($0, config: configuration)) }
                })
            else { return }
            staged.dossiers.append(row)
        }
        retiredUnsaved = false
        staged.forecastUnits = peek { $0.takeForecastChanges() }
        staged.savesRows = true
        staged.heldDossiers = engine.liveDossierCount
        eventsSinceSave = 0
        saveRequested = false
        lastSave = .now
        clockAtLastSave = engine.clock
    }

    /// Writes everything staged since the last commit in one SQLite transaction on the calling thread, saving the
    /// rows; returns the commit (its alerts for the caller to deliver, its changes for the rollups).
    @discardableResult
    public func commit(published: [String] = [], filed: [String] = [], deadLettersSent: [Int64] = []) throws
        -> [OutboxAlert]
    {
        saveRequested = true
        return try commitPrepared(published: published, filed: filed, deadLettersSent: deadLettersSent)?.alerts ?? []
    }

    @discardableResult
    public func commitPrepared(published: [String] = [], filed: [String] = [], deadLettersSent: [Int64] = []) throws
        -> PreparedCommit?
    {
        guard var prepared = prepareCommit(published: published, filed: filed, deadLettersSent: deadLettersSent)
        else { return nil }
        prepared.encodeAlerts()
        try store.commit(prepared.batch)
        return prepared
    }

    /// Every dossier held (for the rollups at start).
    public func heldDossiers() -> [Dossier] { engine.dossiers.filter { !$0.code.isEmpty } }

    /// Facts of every held dossier that was received.
    public func facts() -> [DossierFacts] { engine.facts() }

    /// The days a rollup covers: from the first event's day to the later of the clock's and the last event's day.
    public var rollupDays: ClosedRange<Int64>? {
        guard let firstDay, let lastEventDay else { return nil }
        return firstDay...max(lastEventDay, clockDay ?? lastEventDay)
    }

    private func noteDays(_ event: DossierEvent) {
        newestOccurredAt = max(newestOccurredAt ?? event.occurredAt, event.occurredAt)
        let day = LocalTime.day(of: event.occurredAt)
        if firstDay.map({ day < $0 }) ?? true {
            firstDay = day
            daysChanged = true
        }
        if lastEventDay.map({ day > $0 }) ?? true {
            lastEventDay = day
            daysChanged = true
        }
    }

    private func candidate(_ code: String) -> RetirementCandidate {
        candidatesQueued += 1
        return RetirementCandidate(order: candidatesQueued, code: code)
    }

    private func addTombstone(hash: UInt64, at: Instant) {
        tombstones.insert(hash)
        tombstoneExpiry.append((at, hash))
    }

    private func collectAlerts() {
        for alert in engine.takeAlerts() { stage(alert) }
    }

    /// Stages an alert for the next commit, with its dossier's row (which records the level as fired).
    private func stage(_ alert: Alert) {
        stagedAlerts.append(alert)
        if !alert.dossier.isEmpty, let slot = peek({ $0.slot(of: alert.dossier) }) {
            touched.mark(slot, value: Self.onlyAlerts)
        }
    }
}

extension OutboxAlert {
    init(_ alert: Alert) {
        self.init(
            alertID: alert.alertId, level: alert.level.name,
            routingKey: SameDayRoutingKey.alert(level: alert.level.name, block: alert.block.rawValue, unit: alert.unit),
            day: LocalDate(dayNumber: LocalTime.day(of: alert.firedAt)).description, json: alert.jsonLine())
    }
}

/// A dossier in the retirement queue. Candidates due at the same instant (a restart queues a million, many at the
/// same second) are taken in the order they were queued: comparing numbers, not codes.
struct RetirementCandidate: Comparable, Sendable {
    var order: Int64
    var code: String
    static func < (a: Self, b: Self) -> Bool { a.order < b.order }
    static func == (a: Self, b: Self) -> Bool { a.order == b.order }
}

/// A worker store's dossier rows, read and decoded on a thread of their own and handed over in batches, so the
/// thread that loads them into the engine does only that.
enum StoredDossiers {
    struct Row: Sendable {
        var key: Int64
        var code: String
        /// The dossier read back (an empty one when it cannot be).
        var dossier: Dossier
        /// Why the row cannot be read back, or nil.
        var unreadable: DossierRecord.Unreadable?

        /// The row's parts, moved out: the dossier goes on into the engine without a copy. (Held in a `Result`, it
        /// was copied out of it and the `Result` released: a retain and a release of each of its buffers.)
        consuming func parts() -> (key: Int64, code: String, dossier: Dossier, unreadable: DossierRecord.Unreadable?) {
            (key, code, dossier, unreadable)
        }
    }

    /// Calls `body` on each row in key order, handing it over: a copy of a row costs a retain and a release of
    /// each of its buffers, and a restart loads a million. Then returns what `afterwards` gave: the reading thread
    /// runs it once the rows are read, while this one may still be loading them.
    static func read<Afterwards: Sendable>(
        from store: any ShardStore, configuration: Configuration,
        afterwards: @escaping @Sendable () throws -> Afterwards, _ body: (consuming Row) throws -> Void
    ) throws -> Afterwards {
        // Optional rows: the loading thread moves each out in order (`take`), with no copy and no reversal.
        let handOff = HandOff<[Row?]>(capacity: 8)
        let result = Mutex<Afterwards?>(nil)
        NamedThread.start("sameday.load") {
            do {
                var batch: [Row?] = []
                batch.reserveCapacity(2048)
                let codes = DossierRecord.CodeCache()
                try store.forEachDossierRecord { key, code, state in
                    do throws(DossierRecord.Unreadable) {
                        let dossier = try DossierRecord.decode(
                            code: code, buffer: state, config: configuration, codes: codes)
                        batch.append(Row(key: key, code: code, dossier: dossier, unreadable: nil))
                    } catch {
                        batch.append(Row(key: key, code: code, dossier: Dossier(code: ""), unreadable: error))
                    }
                    if batch.count == 2048 {
                        handOff.put(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if !batch.isEmpty { handOff.put(batch) }
                let value = try afterwards()
                result.withLock { $0 = value }
                handOff.finish(nil)
            } catch {
                handOff.finish(error)
            }
        }
        // Should `body` fail, the reader is still drained, so it never waits for room for ever.
        var failure: (any Error)?
        while var batch = try handOff.take() {
            guard failure == nil else { continue }
            do {
                for index in batch.indices { try body(batch[index].take()!) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        // `take` returned nil: the reader finished without an error, after storing the result.
        return result.withLock { $0! }
    }
}

/// What a restart reads of retired dossiers: the tombstones of the event log's window, in time order, and their
/// hashes as a set built at its full size (grown one insert at a time, it rehashed on its way to a full window's);
/// and the retired stock.
struct RetiredState: Sendable {
    let expiry: [(at: Instant, hash: UInt64)]
    let hashes: Set<UInt64>
    let stock: [RetiredStockKey: Int]

    init(reading store: any RestartReads, since: Instant) throws {
        var expiry: [(at: Instant, hash: UInt64)] = []
        try store.tombstones(since: since) { hash, at in expiry.append((at, hash)) }
        var hashes = Set<UInt64>(minimumCapacity: expiry.count)
        for entry in expiry { hashes.insert(entry.hash) }
        (self.expiry, self.hashes) = (expiry, hashes)
        stock = try store.retiredStock()
    }
}

/// A value worked out on a thread of its own from its start; `value()` waits for it (or throws its error).
final class BackgroundRead<Value: Sendable>: Sendable {
    private let result = Mutex<Result<Value, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(name: String, _ body: @escaping @Sendable () throws -> Value) {
        NamedThread.start(name) { [self] in
            let outcome = Result { try body() }
            result.withLock { $0 = outcome }
            done.signal()
        }
    }

    /// Waits for the value; call once.
    func value() throws -> Value {
        done.wait()
        return try result.withLock { $0! }.get()
    }
}

/// A bounded queue between one producing and one consuming thread; `finish` ends it, with the producer's error
/// if it failed.
final class HandOff<Item>: @unchecked Sendable {
    private let condition = NSCondition()
    /// Pending items; a taken one leaves nil behind, so the taker holds the only reference (a batch popped from
    /// while the queue still held it was copied whole, a retain of every row's buffers).
    private var items: [Item?] = []
    private var head = 0
    private var finished = false
    private var failure: (any Error)?
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Waits while `capacity` items are pending.
    func put(_ item: Item) {
        condition.lock()
        while items.count - head >= capacity { condition.wait() }
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    func finish(_ error: (any Error)?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next item; nil once finished and drained (throws the producer's error then).
    func take() throws -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !finished { condition.wait() }
        if head < items.count {
            let item = items[head]!
            items[head] = nil
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.broadcast()
            return item
        }
        if let failure { throw failure }
        return nil
    }
}
