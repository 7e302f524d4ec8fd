import Foundation
import Logging
import SameDayBroker
import SameDayCore
import SameDayStore

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

/// The worker's state and its durable mirror, without any broker: the core engine (dossiers, timers) in memory,
/// and every change staged into one `CommitBatch` that `commit()` writes to SQLite in one transaction.
///
/// Events are applied at the engine clock (wall clock, or the newest `occurredAt` in `.events` mode); the clock an
/// event was applied at is stored with it, so `rebuild()` replays the log to exactly the state the worker had.
public final class WorkerEngine {
    public let configuration: Configuration
    public let store: WorkerStore
    public let clockMode: ClockMode
    private let clock: any WorkerClock
    private let logger: Logger
    private var engine: Replay
    private var staged = CommitBatch()
    /// Dossiers changed since the last commit, with their unit code.
    private var touched: [String: String] = [:]
    public private(set) var firstDay: Int64?
    public private(set) var lastEventDay: Int64?

    /// `sourceSilence`: also watch units for silence (`source_silent` alerts).
    public init(
        configuration: Configuration, store: WorkerStore, clockMode: ClockMode, clock: any WorkerClock = SystemClock(),
        sourceSilence: Bool = false, logger: Logger = Logger(label: "sameday.worker")
    ) {
        self.configuration = configuration
        self.store = store
        self.clockMode = clockMode
        self.clock = clock
        self.logger = logger
        self.engine = Replay(config: configuration)
        engine.detectSilence = sourceSilence
    }

    /// `occurredAt` of the newest event applied: with the wall clock, how far behind the unit systems we are.
    public private(set) var newestOccurredAt: Instant?

    /// The engine's current instant.
    public var now: Instant { engine.clock }
    /// When the next alert threshold falls (the consume wait must not outlast it in wall-clock mode).
    public var nextTimerAt: Instant? { engine.nextTimerAt }
    public var dossierCount: Int { engine.dossiers.count }

    public struct RebuildSummary: Sendable {
        public var events: Int
        public var dossiers: Int
        public var missedAlerts: Int
        /// Stored events that could not be read back or applied: moved to `event_quarantine`, not fatal.
        public var quarantined: Int
        public var seconds: Double
    }

    /// Replays the stored event log into memory, then (wall clock) fires what came due while the worker was down:
    /// those alerts are marked late-fired and committed.
    public func rebuild() throws -> RebuildSummary {
        let started = Date()
        var count = 0
        var unreadable: [(arrival: Int64, reason: String)] = []
        try store.forEachEvent { arrival, json, appliedAt in
            // A row that no longer reads back (written by an older version, or damaged) must not stop the shard
            // for good: it is set aside with the reason, and the restart goes on.
            do {
                let event = try DossierEvent.decode(json)
                try engine.receive(event, at: max(engine.clock, appliedAt))
                noteDays(event)
                count += 1
            } catch {
                unreadable.append((arrival, "\(error)"))
            }
        }
        if !unreadable.isEmpty {
            try store.quarantine(unreadable)
            for row in unreadable.prefix(20) {
                logger.error(
                    "stored event quarantined: it cannot be read back",
                    metadata: ["arrival": "\(row.arrival)", "reason": "\(row.reason.prefix(300))"])
            }
        }
        if let stored = try store.clock() { engine.advance(to: stored) }
        // Everything fired up to the stored clock was committed with it: already in the outbox.
        _ = engine.takeAlerts()
        var missed = 0
        if clockMode == .wall {
            engine.jump(to: clock.now())
            collectAlerts()
            missed = staged.alerts.count
            try commit()
        }
        return RebuildSummary(
            events: count, dossiers: engine.dossiers.count, missedAlerts: missed, quarantined: unreadable.count,
            seconds: Date().timeIntervalSince(started))
    }

    /// What the broker says about a delivery besides its body.
    public struct Envelope: Sendable {
        public var routingKey: String
        /// The `dossier` header the consistent-hash exchange shards on (nil when absent).
        public var dossierHeader: String?
        public init(routingKey: String, dossierHeader: String?) {
            self.routingKey = routingKey
            self.dossierHeader = dossierHeader
        }
    }

    /// Why a delivery must not be applied, or nil when it may (issue "hostile input"): its time is outside the
    /// plausible window; its routing key does not say the body's block, unit and type (topic permissions check
    /// only the key, so a unit system allowed `district.760.*` could otherwise write any unit's dossiers); its
    /// `dossier` header (what the consistent-hash exchange shards on) is not the body's dossier; or its stored form
    /// would not read back as the same event.
    public func refusal(of event: DossierEvent, envelope: Envelope?, bounds: EventTimeBounds, now: Instant) -> String? {
        if let reason = bounds.violation(of: event, now: now) { return reason }
        if let envelope {
            let routingKey = envelope.routingKey
            guard let unit = configuration.unitID(event.unit) else {
                return "field \"unit\": unit \"\(event.unit)\" is not in units.csv"
            }
            let expected = SameDayRoutingKey.event(
                block: configuration.unit(unit).block.rawValue, unit: event.unit, type: event.type.name)
            if routingKey != expected {
                return "routing key \"\(routingKey.prefix(200))\" does not match the event's block, unit and type "
                    + "(expected \"\(expected)\")"
            }
            if envelope.dossierHeader != event.dossier {
                return "header \"\(SameDayTopology.shardHeader)\" "
                    + (envelope.dossierHeader.map { "\"\($0.prefix(100))\"" } ?? "missing")
                    + " differs from the body's dossier \"\(event.dossier)\""
            }
        }
        let stored = event.encoded()
        guard (try? DossierEvent.decode(stored)) == event else {
            return "the event cannot be stored in a form that reads back as the same event"
        }
        return nil
    }

    /// Stages a refused delivery for the dead-letter outbox: it is stored in the commit that acks it.
    public func stage(deadLetter: DeadLetter) { staged.deadLetters.append(deadLetter) }

    /// Applies one event at the engine clock; false for a duplicate (same `eventId` already applied).
    @discardableResult
    public func apply(_ event: DossierEvent) throws(DossierError) -> Bool {
        let at: Instant =
            switch clockMode {
            case .wall: max(engine.clock, clock.now())
            case .events: max(engine.clock, event.occurredAt)
            }
        let before = engine.dossier(event.dossier)?.eventCount ?? 0
        try engine.receive(event, at: at)
        guard (engine.dossier(event.dossier)?.eventCount ?? 0) > before else {
            collectAlerts()
            return false
        }
        staged.events.append((event.eventId, event.dossier, engine.clock, event.encoded()))
        touched[event.dossier] = event.unit
        noteDays(event)
        collectAlerts()
        return true
    }

    /// Moves the clock to `instant` (never back), firing every threshold due by then.
    public func advance(to instant: Instant) {
        guard instant > engine.clock else { return }
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
        !staged.events.isEmpty || !staged.alerts.isEmpty || !touched.isEmpty || !staged.deadLetters.isEmpty
    }

    /// Writes everything staged since the last commit in one SQLite transaction, with the delivery marks of
    /// alerts already sent; returns the alerts it added to the outbox (for the caller to deliver).
    @discardableResult
    public func commit(published: [String] = [], filed: [String] = [], deadLettersSent: [Int64] = []) throws
        -> [OutboxAlert]
    {
        guard hasStagedChanges || !published.isEmpty || !filed.isEmpty || !deadLettersSent.isEmpty else { return [] }
        for (code, unit) in touched {
            staged.dossiers.append((code, unit, engine.isOpen(code), engine.timer(of: code)))
        }
        staged.clock = engine.clock
        staged.publishedAlertIDs = published
        staged.filedAlertIDs = filed
        staged.confirmedDeadLetters = deadLettersSent
        try store.commit(staged)
        let added = staged.alerts
        staged = CommitBatch()
        touched.removeAll(keepingCapacity: true)
        return added
    }

    /// Facts of every received dossier, for rollups.
    public func facts() -> [DossierFacts] { engine.facts() }

    /// The days a rollup covers: from the first event's day to the later of the clock's and the last event's day.
    public var rollupDays: ClosedRange<Int64>? {
        guard let firstDay, let lastEventDay else { return nil }
        return firstDay...max(lastEventDay, LocalTime.day(of: engine.clock))
    }

    private func noteDays(_ event: DossierEvent) {
        newestOccurredAt = max(newestOccurredAt ?? event.occurredAt, event.occurredAt)
        let day = LocalTime.day(of: event.occurredAt)
        firstDay = min(firstDay ?? day, day)
        lastEventDay = max(lastEventDay ?? day, day)
    }

    private func collectAlerts() {
        for alert in engine.takeAlerts() {
            staged.alerts.append(OutboxAlert(alert))
            if !alert.dossier.isEmpty { touched[alert.dossier] = alert.unit }
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
