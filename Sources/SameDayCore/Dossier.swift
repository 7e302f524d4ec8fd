/// FNV-1a 64: a stable hash for event ids and alert ids (Swift's `hashValue` is seeded per process).
public enum FNV1a {
    public static func hash(_ s: String, into h: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var s = s
        return s.withUTF8 { hash(bytes: $0, into: h) }  // contiguous bytes: much faster than iterating `utf8`
    }

    public static func hash(bytes: some Sequence<UInt8>, into h: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = h
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        return h
    }

    /// 16 lower-case hex digits.
    public static func hex(_ v: UInt64) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 16) { buf in
            for k in 0..<16 { buf[k] = digits.utf8Start[Int((v >> UInt64(60 - 4 * k)) & 0xF)] }
            return 16
        }
    }
}

/// One event as a dossier keeps it while open: 48 bytes, no strings.
struct CompactEvent: Sendable {
    /// FNV-1a 64 of `eventId`: the duplicate check (a collision inside one dossier is astronomically unlikely).
    var idHash: UInt64
    var at: Instant
    /// `seq`, or -1 when absent (sorts before any given `seq` at the same instant).
    var seq: Int64
    /// `newDueAt` of a `rescheduled`, or `promisedAt` of a `received` (0 when absent): one slot, as no event has both.
    var newDueAt: Instant
    var arrival: UInt32
    var unit: UnitID
    /// Catalog index, or `UInt32.max` when the procedure is not in the catalog.
    var procedure: UInt32
    var type: EventType
    /// Channel (`received`) or outcome (`resolved`) raw value, 0 when absent.
    var detail: UInt8

    @inline(__always) func orderedBefore(_ o: CompactEvent) -> Bool {
        if at != o.at { return at < o.at }
        if seq != o.seq { return seq < o.seq }
        return arrival < o.arrival
    }
}

/// Contradictions found while ordering a dossier's events (docs/rules.md §3.4): kept, applied by the ordering rule,
/// reported.
public struct Anomalies: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let duplicateReceived = Anomalies(rawValue: 1 << 0)
    public static let eventBeforeReceived = Anomalies(rawValue: 1 << 1)
    public static let eventAfterClosure = Anomalies(rawValue: 1 << 2)
    public static let conflictingOutcome = Anomalies(rawValue: 1 << 3)
    public static let secondReschedule = Anomalies(rawValue: 1 << 4)
    public static let unexpectedResume = Anomalies(rawValue: 1 << 5)
    public static let mixedUnits = Anomalies(rawValue: 1 << 6)
    public static let mixedProcedures = Anomalies(rawValue: 1 << 7)
    public static let returnedBeforeResolved = Anomalies(rawValue: 1 << 8)
    /// An `extended` for a procedure whose field `alerting.json` does not let extend, or one that came after the
    /// deadline it would move: ignored.
    public static let extensionRefused = Anomalies(rawValue: 1 << 9)
    /// An `extended` further than the law allows (`extensions.maxWorkingDays`): applied up to the limit.
    public static let extensionCapped = Anomalies(rawValue: 1 << 10)

    public var names: [String] {
        let all: [(Anomalies, String)] = [
            (.duplicateReceived, "duplicate_received"), (.eventBeforeReceived, "event_before_received"),
            (.eventAfterClosure, "event_after_closure"), (.conflictingOutcome, "conflicting_outcome"),
            (.secondReschedule, "second_reschedule"), (.unexpectedResume, "unexpected_resume"),
            (.mixedUnits, "mixed_units"), (.mixedProcedures, "mixed_procedures"),
            (.returnedBeforeResolved, "returned_before_resolved"), (.extensionRefused, "extension_refused"),
            (.extensionCapped, "extension_capped"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// Where a dossier stands after all its known events.
public enum DossierStatus: String, Sendable, Hashable {
    case notReceived = "not_received"
    case refused
    case running
    case paused  // fee requested
    case awaitingSupplement = "awaiting_supplement"
    case resolved
    case withdrawn
    case stopped
}

/// How a resolved (or withdrawn) dossier is judged (docs/rules.md §4.7).
public enum Classification: String, Sendable, Hashable {
    case early, onTime = "on_time", late
}

/// One run of the SLA clock: from `received` or a `supplement_received` to the next stop.
public struct Episode: Sendable, Hashable {
    /// 1 for the first `received`, then 2, 3 … for each restart.
    public var number: Int
    public var deadline: Deadline
    public var pauses: [Pause]
    /// `supplement_requested` that stopped this episode, if any.
    public var stoppedAt: Instant?
    /// `newDueAt` of the (last) reschedule of this episode.
    public var rescheduledTo: Instant?
    public var reschedules: Int
    /// The deadline before an `extended` moved `deadline` (nil when not extended).
    public var extendedFrom: Instant?
}

/// The end of a dossier: resolved, withdrawn or stopped.
public struct Closure: Sendable, Hashable {
    public var status: DossierStatus
    public var at: Instant
    public var outcome: Outcome?
}

/// A stretch of a dossier's life used by rollups: from `from`, running or paused until the next segment.
public struct Segment: Sendable, Hashable {
    public var from: Instant
    public var paused: Bool
    /// Index of the episode the segment belongs to.
    public var episode: Int
    /// Running segments: the deadline that judges lateness at that time (pauses so far included, reschedules not).
    public var due: Instant
    /// Stopped, or waiting for a supplement: the dossier leaves the paused stock as abandoned once no event came
    /// for `staleAfterDays` (docs/rules.md §4.8). Every event in such a state starts a new segment, so `from` is the
    /// last event so far.
    public var stale: Bool

    public init(from: Instant, paused: Bool, episode: Int, due: Instant, stale: Bool = false) {
        self.from = from
        self.paused = paused
        self.episode = episode
        self.due = due
        self.stale = stale
    }
}

/// Everything derived from a dossier's events (recomputed, never stored).
public struct DossierState: Sendable {
    public var status: DossierStatus = .notReceived
    public var unit: UnitID?
    public var procedure: ProcedureRef?
    public var channel: Channel?
    public var firstReceivedAt: Instant?
    /// The return date on the appointment slip of the first `received` (its `promisedAt`), when the unit sent one.
    public var promisedAt: Instant?
    /// The deadline the slip is held to: the first episode's as computed at reception, before any extension.
    public var dueAtReception: Instant? { episodes.first.map { $0.extendedFrom ?? $0.deadline.due } }
    /// The slip names another calendar day than `dueAtReception` (`received_promise_differs`, docs/rules.md §6.1).
    public var promiseDiffers: Bool {
        guard let promised = promisedAt, let due = dueAtReception else { return false }
        return LocalTime.day(of: promised) != LocalTime.day(of: due)
    }
    public var episodes: [Episode] = []
    public var closure: Closure?
    public var classification: Classification?
    /// The deadline that judges lateness (last episode, pauses included, reschedules not).
    public var judgingDue: Instant?
    public var anomalies: Anomalies = []
    public var segments: [Segment] = []
    /// Events in applied order: (type, occurredAt, seq, arrival).
    public var applied: [(type: EventType, at: Instant, seq: Int64?, arrival: Int)] = []
}

/// A single alert (docs/rules.md §5.5).
public struct Alert: Sendable, Hashable {
    public var alertId: String
    public var level: AlertLevel
    /// Dossier code (empty for `source_silent`).
    public var dossier: String
    public var unit: String
    public var block: Block
    /// Procedure code (empty for `source_silent`).
    public var procedure: String
    public var episode: Int
    /// The deadline the alert measures against (nil for `source_silent`).
    public var due: Instant?
    public var firedAt: Instant
    /// When the threshold was reached (≤ `firedAt`).
    public var thresholdAt: Instant
    /// Working minutes from `firedAt` (or resolution) to `due`, negative when late.
    public var minutesLeft: Int?
    public var recipients: [String]
    /// Fired later than its threshold (the worker was down, or the event arrived late).
    public var lateFired: Bool
    /// When the episode's dossier was received (its T0 before any move into a session): what the board shows.
    /// Absent from alerts written before it was added, and for `source_silent`.
    public var receivedAt: Instant? = nil
    /// `at_risk` only: the predicted completion and the dossiers of the unit's queue ahead of this one.
    public var predictedAt: Instant? = nil
    public var queueAhead: Int? = nil

    /// Convention: an alert fired more than this after its threshold is marked late-fired.
    public static let lateFireGraceSeconds: Int64 = 60

    /// Deterministic id: FNV-1a 64 of `subject|episode|level`, the same in every run and process.
    public static func id(subject: String, episode: Int, level: AlertLevel) -> String {
        // Hashing the parts in sequence equals hashing the joined text, without building it.
        var h = FNV1a.hash(subject)
        h = FNV1a.hash("|", into: h)
        h = FNV1a.hash(String(episode), into: h)
        h = FNV1a.hash("|", into: h)
        return FNV1a.hex(FNV1a.hash(level.name, into: h))
    }

    /// One JSON line, keys in a fixed order.
    public func jsonLine() -> String {
        // Keys as literals and times in place: rendered on the commit thread for every alert.
        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.field(literal: "alertId", alertId)
        w.field(literal: "level", level.name)
        w.field(literal: "dossier", dossier)
        w.field(literal: "unit", unit)
        w.field(literal: "block", block.rawValue)
        w.field(literal: "procedure", procedure)
        w.field(literal: "episode", episode)
        w.key(literal: "due")
        if let due { w.time(due) } else { w.null() }
        w.field(literal: "firedAt", time: firedAt)
        w.field(literal: "thresholdAt", time: thresholdAt)
        w.key(literal: "minutesLeft")
        if let minutesLeft { w.int(minutesLeft) } else { w.null() }
        w.key(literal: "recipients")
        w.beginArray()
        for r in recipients { w.string(r) }
        w.endArray()
        w.key(literal: "lateFired")
        w.bool(lateFired)
        if let receivedAt { w.field(literal: "receivedAt", time: receivedAt) }
        if let predictedAt { w.field(literal: "predictedAt", time: predictedAt) }
        if let queueAhead { w.field(literal: "queueAhead", queueAhead) }
        w.endObject()
        return w.text
    }
}

/// What the runtime must do after a dossier changed.
public enum DossierAction: Sendable, Hashable {
    /// Arm (or re-arm) the dossier's single timer; call `advance(to:)` when it fires.
    case scheduleTimer(at: Instant)
    /// The dossier needs no timer.
    case cancelTimer
    case emit(Alert)
}

/// Errors applying an event to a dossier.
public enum DossierError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongDossier(expected: String, got: String)
    case unknownUnit(String)

    public var description: String {
        switch self {
        case .wrongDossier(let e, let g): "event for dossier \"\(g)\" applied to dossier \"\(e)\""
        case .unknownUnit(let u): "field \"unit\": unit \"\(u)\" is not in units.csv"
        }
    }
}

/// One dossier: a small value holding its compact events (in order) and what it has alerted.
///
/// Every change re-derives the state from all events ordered by (occurredAt, seq, arrival), so arrival order and
/// duplicates do not change the answer. It is pure: time is passed in as `now`.
public struct Dossier: Sendable {
    public let code: String
    var events: [CompactEvent] = []
    /// The smallest procedure code not in the catalog seen on its events (order-independent choice).
    var unlistedProcedure: String?
    var nextArrival: UInt32 = 0
    /// Episode number the fired mask belongs to; the mask resets when a restart opens a new episode.
    var alertEpisode: UInt16 = 0
    var firedMask: UInt8 = 0
    var flags: UInt8 = 0

    static let hadAlertFlag: UInt8 = 1
    static let resolutionAlertedFlag: UInt8 = 2
    /// Set by `advance` when the dossier is closed and nothing is left to fire: its resolution alert handled (or it
    /// was stopped, which raises none). A closure depends only on the events, so while no event is added a later
    /// `advance` changes nothing and arms no timer; a restart skips it (`Replay.loadNew`). Stored in the row, so
    /// rows written before the flag existed are simply advanced.
    static let settledFlag: UInt8 = 4

    public init(code: String) { self.code = code }

    /// The units whose events the dossier holds, in event order, each once (almost always one).
    public var units: [UnitID] {
        var out: [UnitID] = []
        for e in events where !out.contains(e.unit) { out.append(e.unit) }
        return out
    }

    /// Number of distinct events kept.
    public var eventCount: Int { events.count }

    /// Applies one event (a duplicate `eventId` has no effect and returns no actions), then `advance(to: now)`.
    public mutating func apply(_ e: DossierEvent, now: Instant, config: Configuration) throws(DossierError)
        -> [DossierAction]
    {
        guard try insert(e, config: config) else { return [] }
        return advance(to: now, config: config)
    }

    /// Adds the event without firing anything; false for a duplicate.
    @discardableResult
    public mutating func insert(_ e: DossierEvent, config: Configuration) throws(DossierError) -> Bool {
        guard e.dossier == code else { throw .wrongDossier(expected: code, got: e.dossier) }
        guard let unit = config.unitID(e.unit) else { throw .unknownUnit(e.unit) }
        let h = FNV1a.hash(e.eventId)
        for x in events where x.idHash == h { return false }
        var proc = UInt32.max
        switch config.procedureRef(e.procedure, unit: unit) {
        case .catalog(let i): proc = i
        case .unlisted(let c): if unlistedProcedure.map({ c < $0 }) ?? true { unlistedProcedure = c }
        }
        let detail: UInt8 = e.channel?.rawValue ?? e.outcome?.rawValue ?? 0
        let c = CompactEvent(
            idHash: h, at: e.occurredAt, seq: e.seq ?? -1, newDueAt: e.newDueAt ?? e.promisedAt ?? 0,
            arrival: nextArrival, unit: unit,
            procedure: proc, type: e.type, detail: detail)
        nextArrival &+= 1
        var i = events.count
        while i > 0 && c.orderedBefore(events[i - 1]) { i -= 1 }
        events.insert(c, at: i)
        return true
    }

    // MARK: Derivation

    /// The state implied by all events (docs/rules.md §3–4).
    public func state(config: Configuration) -> DossierState { state(config: config, full: true) }

    /// `full: false` skips what only reports and explanations need (applied list, per-segment deadlines): the hot
    /// path of `advance` runs on every event.
    func state(config: Configuration, full: Bool) -> DossierState {
        var st = DossierState()
        guard let first = events.first else { return st }
        // Unit and procedure: those of the first `received` in order, else of the first event.
        let anchor = events.first { $0.type == .received } ?? first
        st.unit = anchor.unit
        st.procedure = anchor.procedure == UInt32.max ? .unlisted(unlistedProcedure ?? "") : .catalog(anchor.procedure)
        if events.contains(where: { $0.unit != anchor.unit }) { st.anomalies.insert(.mixedUnits) }
        if events.contains(where: { $0.procedure != anchor.procedure }) { st.anomalies.insert(.mixedProcedures) }
        let ref = st.procedure!
        let calendar = config.workingCalendar(unit: anchor.unit, procedure: ref)
        let sla = config.sla(ref)
        let cutoff = config.cutoff(ref)
        var received = false
        var resolvedOutcome: Outcome?
        let feesPause = config.alerting.feesPauseTheClock

        func openEpisode(at t: Instant) {
            let d = calendar.deadline(sla: sla, received: t, cutoff: cutoff)
            st.episodes.append(
                Episode(number: st.episodes.count + 1, deadline: d, pauses: [], reschedules: 0, extendedFrom: nil))
            if full { st.segments.append(Segment(from: t, paused: false, episode: st.episodes.count - 1, due: d.due)) }
            st.status = .running
        }

        for e in events {
            if full { st.applied.append((e.type, e.at, e.seq < 0 ? nil : e.seq, Int(e.arrival))) }
            if full, let c = st.closure, c.status == .stopped {
                // Any later event on a stopped dossier keeps it out of the abandoned column a while longer.
                st.segments.append(
                    Segment(from: e.at, paused: true, episode: st.episodes.count - 1, due: 0, stale: true))
            } else if full, st.status == .awaitingSupplement, e.type != .supplementReceived {
                st.segments.append(
                    Segment(from: e.at, paused: true, episode: st.episodes.count - 1, due: 0, stale: true))
            }
            if st.closure != nil && e.type != .returned {
                if e.type == .resolved, let o = resolvedOutcome, e.detail != 0, e.detail != o.rawValue {
                    st.anomalies.insert(.conflictingOutcome)
                } else {
                    st.anomalies.insert(.eventAfterClosure)
                }
                continue
            }
            switch e.type {
            case .submitted, .transferred:
                break
            case .refused:
                if received { st.anomalies.insert(.eventAfterClosure) } else { st.status = .refused }
            case .received:
                if received {
                    st.anomalies.insert(.duplicateReceived)
                } else {
                    received = true
                    st.firstReceivedAt = e.at
                    st.promisedAt = e.newDueAt != 0 ? e.newDueAt : nil
                    st.channel = Channel(rawValue: e.detail)
                    openEpisode(at: e.at)
                }
            case .supplementRequested:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                guard st.status == .running || st.status == .paused else {
                    st.anomalies.insert(.unexpectedResume); continue
                }
                let k = st.episodes.count - 1
                if let p = st.episodes[k].pauses.last, p.end == nil {
                    st.episodes[k].pauses[st.episodes[k].pauses.count - 1].end = e.at
                }
                st.episodes[k].stoppedAt = e.at
                st.status = .awaitingSupplement
                if full {
                    st.segments.append(
                        Segment(from: e.at, paused: true, episode: st.episodes.count - 1, due: 0, stale: true))
                }
            case .supplementReceived:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                guard st.status == .awaitingSupplement else { st.anomalies.insert(.unexpectedResume); continue }
                openEpisode(at: e.at)
            case .feeRequested:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                // The city counts the time to pay against the deadline: recorded, nothing changes.
                guard feesPause else { continue }
                guard st.status == .running else { st.anomalies.insert(.unexpectedResume); continue }
                st.episodes[st.episodes.count - 1].pauses.append(Pause(start: e.at, end: nil))
                st.status = .paused
                if full {
                    st.segments.append(Segment(from: e.at, paused: true, episode: st.episodes.count - 1, due: 0))
                }
            case .feePaid:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                guard feesPause else { continue }
                guard st.status == .paused else { st.anomalies.insert(.unexpectedResume); continue }
                let k = st.episodes.count - 1
                st.episodes[k].pauses[st.episodes[k].pauses.count - 1].end = e.at
                st.status = .running
                if full {
                    st.segments.append(Segment(from: e.at, paused: false, episode: st.episodes.count - 1, due: 0))
                }
            case .rescheduled:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                let k = st.episodes.count - 1
                if st.episodes[k].reschedules > 0 { st.anomalies.insert(.secondReschedule) }
                st.episodes[k].reschedules += 1
                if e.newDueAt != 0 { st.episodes[k].rescheduledTo = e.newDueAt }
            case .extended:
                guard received else { st.anomalies.insert(.eventBeforeReceived); continue }
                let k = st.episodes.count - 1
                let current = st.episodes[k].deadline
                // Decided while the clock runs, before the deadline it moves (pauses so far included), for a field
                // the law lets extend.
                let pausesSoFar = st.episodes[k].pauses.map { Pause(start: $0.start, end: $0.end ?? e.at) }
                let dueNow =
                    EpisodeClock(calendar: calendar, start: current.start, pauses: pausesSoFar)
                    .instant(atOffset: current.dueOffset) ?? current.due
                guard config.allowsExtension(ref), st.status == .running || st.status == .paused, e.at <= dueNow,
                    e.newDueAt > current.due
                else {
                    st.anomalies.insert(.extensionRefused)
                    continue
                }
                let original = st.episodes[k].extendedFrom ?? current.due
                let limit = calendar.add(
                    workingSeconds: Int64(config.alerting.extensionMaxWorkingDays) * SLA.workingDaySeconds,
                    to: original)
                if e.newDueAt > limit { st.anomalies.insert(.extensionCapped) }
                let due = min(e.newDueAt, limit)
                st.episodes[k].extendedFrom = original
                st.episodes[k].deadline.due = due
                st.episodes[k].deadline.dueOffset = calendar.workingSeconds(from: current.start, to: due)
            case .resolved, .withdrawn, .stopped:
                let status: DossierStatus =
                    e.type == .resolved ? .resolved : e.type == .withdrawn ? .withdrawn : .stopped
                guard received else {
                    // A closure before any `received` closes a dossier that was never received (docs/rules.md
                    // §3.4): it is never counted, and a later `received` is ignored as an event after closure. (Left
                    // open, it would run overdue and escalate for ever.)
                    st.anomalies.insert(.eventBeforeReceived)
                    st.closure = Closure(status: status, at: e.at, outcome: Outcome(rawValue: e.detail))
                    st.status = status
                    continue
                }
                if e.type == .resolved { resolvedOutcome = Outcome(rawValue: e.detail) }
                st.closure = Closure(status: status, at: e.at, outcome: resolvedOutcome)
                st.status = status
                if full && status == .stopped {
                    // Convention: a stopped dossier stays in the paused bucket of every later period (and so is
                    // carried over) until it is stale, which keeps daily rollups additive into any period.
                    st.segments.append(
                        Segment(from: e.at, paused: true, episode: st.episodes.count - 1, due: 0, stale: true))
                }
            case .returned:
                if st.closure?.status != .resolved { st.anomalies.insert(.returnedBeforeResolved) }
            }
        }
        guard received else { return st }

        // Deadlines that judge lateness: per running segment (pauses so far), and for the dossier (last episode).
        for k in st.segments.indices where full && !st.segments[k].paused {
            let s = st.segments[k]
            let ep = st.episodes[s.episode]
            let clock = EpisodeClock(
                calendar: calendar, start: ep.deadline.start, pauses: ep.pauses.filter { $0.start < s.from })
            st.segments[k].due = clock.instant(atOffset: ep.deadline.dueOffset) ?? WorkCalendar.never
        }
        // The judging deadline matters to `advance` only once the dossier is closed (its resolution alert).
        guard full || st.closure != nil else { return st }
        let last = st.episodes[st.episodes.count - 1]
        let endOfClock = last.stoppedAt ?? st.closure?.at
        let pauses = last.pauses.map { p in Pause(start: p.start, end: p.end ?? endOfClock) }
        let clock = EpisodeClock(calendar: calendar, start: last.deadline.start, pauses: pauses)
        st.judgingDue = clock.instant(atOffset: last.deadline.dueOffset)
        if let c = st.closure, c.status != .stopped, let due = st.judgingDue {
            if c.status == .withdrawn {
                st.classification = .onTime  // convention: withdrawn counts as resolved on time (docs/rules.md §4.7)
            } else {
                let judgedAt = min(last.stoppedAt ?? c.at, c.at)
                if judgedAt > due {
                    st.classification = .late
                } else if LocalTime.day(of: c.at) < LocalTime.day(of: due) {
                    st.classification = .early
                } else {
                    st.classification = .onTime
                }
            }
        }
        return st
    }

    /// The alert schedule of the current episode (nil when the clock is not running).
    public func alertSchedule(state st: DossierState, config: Configuration) -> AlertSchedule? {
        alertSchedule(state: st, config: config, skipping: 0)
    }

    func alertSchedule(state st: DossierState, config: Configuration, skipping: UInt8) -> AlertSchedule? {
        guard st.status == .running, let ep = st.episodes.last, let unit = st.unit, let ref = st.procedure else {
            return nil
        }
        let clock = EpisodeClock(
            calendar: config.workingCalendar(unit: unit, procedure: ref), start: ep.deadline.start, pauses: ep.pauses)
        let thresholds = config.thresholds(ref, sla: ep.deadline.sla)
        return AlertRules.schedule(
            deadline: ep.deadline, clock: clock, rescheduledTo: ep.rescheduledTo, thresholds: thresholds,
            skipping: skipping)
    }

    // MARK: Alerts

    /// Fires every threshold whose instant is ≤ `now` and has not fired in this episode, the resolution alert when
    /// due, and returns the timer to arm next.
    public mutating func advance(to now: Instant, config: Configuration) -> [DossierAction] {
        var view: QueueView?
        return advance(to: now, config: config, view: &view)
    }

    /// What the queue forecast needs of a dossier, from the state `advance` computes anyway: its unit, when its
    /// episode's clock started, and its deadline while it is a running same-day dossier (nil otherwise).
    struct QueueView {
        var unit: UnitID
        var start: Instant
        var due: Instant?
        var episode: Int
    }

    mutating func apply(_ e: DossierEvent, now: Instant, config: Configuration, view: inout QueueView?)
        throws(DossierError) -> [DossierAction]
    {
        guard try insert(e, config: config) else { return [] }
        return advance(to: now, config: config, view: &view)
    }

    mutating func advance(to now: Instant, config: Configuration, view: inout QueueView?) -> [DossierAction] {
        let st = state(config: config, full: false)
        var actions: [DossierAction] = []
        guard let unitID = st.unit, let ref = st.procedure, let ep = st.episodes.last else {
            return [.cancelTimer]
        }
        view = QueueView(unit: unitID, start: ep.deadline.start, due: nil, episode: ep.number)
        if alertEpisode != UInt16(truncatingIfNeeded: ep.number) {
            alertEpisode = UInt16(truncatingIfNeeded: ep.number)
            firedMask = 0
        }
        func alert(_ level: AlertLevel, due: Instant?, threshold: Instant, minutesFrom: Instant) -> Alert {
            // Unit and procedure are looked up only when an alert is built (most calls emit none).
            let unit = config.unit(unitID)
            let calendar = config.workingCalendar(unit: unitID, procedure: ref)
            let procedure = config.procedureCode(ref)
            return Alert(
                alertId: Alert.id(subject: code, episode: ep.number, level: level), level: level, dossier: code,
                unit: unit.code, block: unit.block, procedure: procedure, episode: ep.number, due: due, firedAt: now,
                thresholdAt: threshold,
                minutesLeft: due.map { Int(calendar.workingSeconds(from: minutesFrom, to: $0) / 60) },
                recipients: config.recipients(level, unit: unitID),
                lateFired: now - threshold > Alert.lateFireGraceSeconds, receivedAt: ep.deadline.received)
        }
        var next: Instant?
        if let schedule = alertSchedule(state: st, config: config, skipping: firedMask) {
            if ep.deadline.sla == .sameDay { view?.due = schedule.alertDue }
            for level in AlertLevel.clockLevels {
                let bit = UInt8(1) << level.rawValue
                guard firedMask & bit == 0, let at = schedule.instants[level] else { continue }
                if at <= now {
                    actions.append(.emit(alert(level, due: schedule.alertDue, threshold: at, minutesFrom: now)))
                    firedMask |= bit
                    flags |= Dossier.hadAlertFlag
                } else {
                    next = min(next ?? at, at)
                }
            }
        }
        if let c = st.closure, c.status != .stopped, c.at <= now, flags & Dossier.resolutionAlertedFlag == 0,
            let cls = st.classification
        {
            if cls == .late {
                actions.append(.emit(alert(.resolvedLate, due: st.judgingDue, threshold: c.at, minutesFrom: c.at)))
            } else if flags & Dossier.hadAlertFlag != 0 {
                actions.append(.emit(alert(.cleared, due: st.judgingDue, threshold: c.at, minutesFrom: c.at)))
            }
            flags |= Dossier.resolutionAlertedFlag
        }
        if let c = st.closure, c.at <= now, c.status == .stopped || flags & Dossier.resolutionAlertedFlag != 0,
            next == nil
        {
            flags |= Dossier.settledFlag
        } else {
            flags &= ~Dossier.settledFlag
        }
        actions.append(next.map { .scheduleTimer(at: $0) } ?? .cancelTimer)
        return actions
    }

    /// Records an `at_risk` of `episode` (the alert's own bit of `firedMask`); false when it already fired in it, or
    /// when the clock already warned (a forecast after the warning tells a supervisor nothing new).
    mutating func markAtRisk(episode: Int) -> Bool {
        let bit = UInt8(1) << AlertLevel.atRisk.rawValue
        if alertEpisode != UInt16(truncatingIfNeeded: episode) {
            alertEpisode = UInt16(truncatingIfNeeded: episode)
            firedMask = 0
        }
        let clockLevels = AlertLevel.clockLevels.reduce(UInt8(0)) { $0 | UInt8(1) << $1.rawValue }
        guard firedMask & (bit | clockLevels) == 0 else { return false }
        firedMask |= bit
        flags |= Dossier.hadAlertFlag
        return true
    }

    /// True once the dossier is closed (resolved, withdrawn or stopped) and its resolution alert, if any, has been
    /// emitted: no timer can fire any more. A worker may then keep only its `facts` and drop the events after a
    /// grace period; an event arriving after that would start the dossier afresh, so the grace period should cover
    /// the adapters' replay horizon.
    public func isSettled(config: Configuration) -> Bool {
        let st = state(config: config, full: false)
        guard let c = st.closure else { return st.status == .refused }
        return c.status == .stopped || st.firstReceivedAt == nil || flags & Dossier.resolutionAlertedFlag != 0
    }

    /// The facts rollups need, or nil when the dossier was never received.
    public func facts(config: Configuration) -> DossierFacts? {
        DossierFacts(state: state(config: config), config: config)
    }
}
