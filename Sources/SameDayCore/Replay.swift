/// Watches units for silence (`source_silent`, docs/rules.md §5.4): a unit that has sent events and then sends none for
/// its silence threshold (`Configuration.silenceWorkingMinutes(of:)`: the unit's own, its block's or the default)
/// of working time on its calendar. A unit that never sent an event is never reported. Pure: the caller passes
/// times in.
public struct SourceSilenceMonitor: Sendable {
    /// Per unit id (dense, grown on demand): its newest event time, `none` before any. Arrays, not a dictionary and a
    /// set: every event and every dossier a restart loads records its unit, and three hashes each were a tenth of
    /// the restart's loading thread.
    private var lastEventAt: [Instant] = []
    private var alerted: [Bool] = []
    private static let none = Instant.min

    public init() {}

    /// Records an event from `unit`; returns the instant at which the unit becomes silent (for a timer).
    public mutating func observe(unit: UnitID, at t: Instant, config: Configuration) -> Instant {
        record(unit: unit, at: t)
        return silentAt(unit: unit, config: config)!
    }

    /// Records an event from `unit` without computing its silence instant (the hot path: most events need none).
    public mutating func record(unit: UnitID, at t: Instant) {
        let u = Int(unit)
        if u >= lastEventAt.count { grow(to: u + 1) }
        if t >= lastEventAt[u] {
            lastEventAt[u] = t
            alerted[u] = false
        }
    }

    private mutating func grow(to count: Int) {
        lastEventAt.append(contentsOf: repeatElement(Self.none, count: count - lastEventAt.count))
        alerted.append(contentsOf: repeatElement(false, count: count - alerted.count))
    }

    private func last(_ unit: UnitID) -> Instant? {
        let u = Int(unit)
        return u < lastEventAt.count && lastEventAt[u] != Self.none ? lastEventAt[u] : nil
    }

    public func silentAt(unit: UnitID, config: Configuration) -> Instant? {
        guard let last = last(unit) else { return nil }
        let minutes = Int64(config.silenceWorkingMinutes(of: unit))
        return config.calendar(of: unit).add(workingSeconds: minutes * 60, to: last)
    }

    /// The newest event time recorded for `unit`, and whether its silence since then was already reported: what a
    /// service that watches units durably stores, and gives back to `restore` at its next start.
    public func state(of unit: UnitID) -> (lastEventAt: Instant, alerted: Bool)? {
        last(unit).map { ($0, alerted[Int(unit)]) }
    }

    /// Units with an event recorded, in id order.
    public var units: [UnitID] { lastEventAt.indices.filter { lastEventAt[$0] != Self.none }.map { UnitID($0) } }

    /// Puts back a unit's stored state (see `state(of:)`).
    public mutating func restore(unit: UnitID, lastEventAt t: Instant, alerted wasAlerted: Bool) {
        let u = Int(unit)
        if u >= lastEventAt.count { grow(to: u + 1) }
        lastEventAt[u] = t
        alerted[u] = wasAlerted
    }

    /// Alerts for units silent at `now` that have not been reported since their last event.
    public mutating func check(now: Instant, config: Configuration) -> [Alert] {
        units.compactMap { check(unit: $0, now: now, config: config) }
    }

    /// The alert for one unit if it is silent at `now` and was not reported since its last event.
    public mutating func check(unit unitID: UnitID, now: Instant, config: Configuration) -> Alert? {
        guard let last = last(unitID), !alerted[Int(unitID)], let at = silentAt(unit: unitID, config: config),
            at <= now
        else { return nil }
        let unit = config.unit(unitID)
        alerted[Int(unitID)] = true
        return Alert(
            alertId: Alert.id(subject: unit.code + "@" + RFC3339.format(last), episode: 0, level: .sourceSilent),
            level: .sourceSilent, dossier: "", unit: unit.code, block: unit.block, procedure: "", episode: 0,
            due: nil, firedAt: now, thresholdAt: at, minutesLeft: nil,
            recipients: config.recipients(.sourceSilent, unit: unitID),
            lateFired: now - at > Alert.lateFireGraceSeconds)
    }
}

/// Source silence for a service that sees every unit's events (`sameday sources`): the monitor plus one timer per
/// unit, so each check costs only the units that are due. Pure, like the replay: the caller passes every instant in
/// (the event's `occurredAt`, its own clock's "now") and takes the alerts out.
public struct SourceSilenceWatch: Sendable {
    public private(set) var monitor = SourceSilenceMonitor()
    private var timers = InstantHeap<Int>()
    /// Units with a timer in the heap (one each: a unit's silence only moves later as events come).
    private var armed: Set<UnitID> = []
    /// Units whose state changed since the last `takeChangedUnits()` (what to store).
    private var changed: Set<UnitID> = []
    /// The newest instant seen; nil before the first.
    public private(set) var clock: Instant?

    public init() {}

    /// Moves the clock to `t`, never back; returns where it stands.
    @discardableResult
    private mutating func move(to t: Instant) -> Instant {
        let now = max(clock ?? t, t)
        clock = now
        return now
    }

    /// Puts back a unit's stored state and arms its timer unless its silence was already reported.
    public mutating func restore(unit: UnitID, lastEventAt: Instant, alerted: Bool, config: Configuration) {
        monitor.restore(unit: unit, lastEventAt: lastEventAt, alerted: alerted)
        if !alerted { arm(unit, config: config) }
    }

    /// An event of `unit` that occurred at `occurredAt`, seen when the clock reads `now`: first fires every unit
    /// silent before the event (as the replay does before applying an event; a silence the event itself ends is
    /// not one), then records the event and moves the clock to `now`.
    public mutating func observe(unit: UnitID, occurredAt: Instant, now: Instant, config: Configuration) -> [Alert] {
        let fired = fire(before: min(now, occurredAt), inclusive: false, config: config)
        move(to: now)
        record(unit: unit, occurredAt: occurredAt, config: config)
        return fired
    }

    /// Records an event without firing anything (a service reading a backlog: it judges silence once it has read
    /// up to now, by `jump`). The unit's timer moves later when it comes due.
    public mutating func record(unit: UnitID, occurredAt: Instant, config: Configuration) {
        let before = monitor.state(of: unit)
        monitor.record(unit: unit, at: occurredAt)
        let after = monitor.state(of: unit)
        if before?.lastEventAt != after?.lastEventAt || before?.alerted != after?.alerted { changed.insert(unit) }
        arm(unit, config: config)
    }

    /// Moves the clock to `now` (never back) and returns the alerts of units silent by then.
    public mutating func advance(to now: Instant, config: Configuration) -> [Alert] {
        let fired = fire(before: now, inclusive: true, config: config)
        move(to: now)
        return fired
    }

    /// Moves the clock straight to `now` and fires everything due by then *at* `now`, as a service that was down
    /// does when it starts: such alerts carry `firedAt = now` and are marked late-fired.
    public mutating func jump(to now: Instant, config: Configuration) -> [Alert] {
        move(to: now)
        return fire(before: now, inclusive: true, config: config)
    }

    /// The earliest armed timer: how long a live service may wait for the next event.
    public var nextTimerAt: Instant? { timers.peek?.at }

    /// Units whose last event or alerted flag changed since the last call.
    public mutating func takeChangedUnits() -> [UnitID] {
        defer { changed.removeAll(keepingCapacity: true) }
        return changed.sorted()
    }

    private mutating func arm(_ unit: UnitID, config: Configuration) {
        guard armed.insert(unit).inserted, let at = monitor.silentAt(unit: unit, config: config) else { return }
        timers.push(at, Int(unit))
    }

    private mutating func fire(before t: Instant, inclusive: Bool, config: Configuration) -> [Alert] {
        var fired: [Alert] = []
        while let top = timers.peek, inclusive ? top.at <= t : top.at < t {
            _ = timers.pop()
            let unit = UnitID(top.value)
            let clock = move(to: top.at)
            armed.remove(unit)
            if let alert = monitor.check(unit: unit, now: clock, config: config) {
                fired.append(alert)
                changed.insert(unit)
            } else if monitor.state(of: unit)?.alerted == false,
                let later = monitor.silentAt(unit: unit, config: config),
                later > clock
            {
                // Events came since the timer was armed: wait for the unit's new silence instant.
                armed.insert(unit)
                timers.push(later, top.value)
            }
        }
        return fired
    }
}

/// Options of a replay on a virtual clock.
public struct ReplayOptions: Sendable {
    /// Take the events in the given (arrival) order; the clock never goes back.
    public var arrivalOrder = false
    /// Advance the clock to this instant at the end (default: the end of the last event's local day).
    public var until: Instant?
    /// Raise `source_silent` alerts.
    public var detectSilence = false
    /// Raise `at_risk` alerts from the queue forecast with these settings (nil: as the configuration says).
    public var forecast: QueueForecast.Settings?
    public init(
        arrivalOrder: Bool = false, until: Instant? = nil, detectSilence: Bool = false,
        forecast: QueueForecast.Settings? = nil
    ) {
        self.arrivalOrder = arrivalOrder
        self.until = until
        self.detectSilence = detectSilence
        self.forecast = forecast
    }
}

/// A bad event in a replay: which one (0-based index in the input) and why.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
    public var index: Int
    public var message: String
    public var description: String { message }
}

/// Runs the dossier state machine over a list of events on a virtual clock, firing alerts as a wall clock would
/// have, with one timer per dossier in a binary heap. The same engine a live worker runs, minus I/O.
public struct Replay: Sendable {
    public let config: Configuration
    public private(set) var dossiers: [Dossier] = []
    /// Slots by code, compared as bytes.
    private var index = CodeSlotIndex()
    /// Slots of retired dossiers, reused by new ones.
    private var freeSlots: [Int] = []
    private var timerAt: [Instant?] = []
    /// Per slot: the key the worker's store gives the dossier's row (0: none yet). See `storageKey(ofSlot:assigning:)`.
    private var storageKeys: [Int64] = []
    /// Per slot: whether the worker has the dossier in its retirement queue (`markQueued(slot:)`). Kept here, beside
    /// the dossier, so the worker needs no set of codes of its own (a string hash per event and per dossier loaded).
    private var queued: [Bool] = []
    private var heap = TimerHeap()
    /// The held dossier the last `heldUnitCheck` found, and its slot: the worker checks each event, then receives
    /// it, and the second lookup of the code is the first's. Cleared when a dossier is removed (its slot is reused).
    private var checkedSlot: (code: String, slot: Int)?
    private var silence = SourceSilenceMonitor()
    private var silenceTimers = TimerHeap()
    /// Units with a silence timer in the heap (one each: a unit's silence only moves later as events come).
    private var silenceArmed: Set<UnitID> = []
    public private(set) var alerts: [Alert] = []
    /// The queue forecast behind `at_risk` alerts (nil: off). See `QueueForecast`.
    public var forecast: QueueForecast?
    private var forecastTimers = TimerHeap()
    /// Per unit: the instant its forecast check is armed at in `forecastTimers`.
    private var forecastArmed: [Instant?] = []
    /// The newest instant the engine has reached (an event's, a timer's, an advance's); nil before the first.
    public private(set) var clock: Instant?
    public var detectSilence = false

    /// Moves the clock to `t`, never back; returns where it stands.
    @discardableResult
    private mutating func move(to t: Instant) -> Instant {
        let now = max(clock ?? t, t)
        clock = now
        return now
    }

    public init(config: Configuration) {
        self.config = config
        forecast = config.forecast.map { QueueForecast(unitCount: config.units.count, settings: $0) }
        heldPerUnit = Array(repeating: 0, count: config.units.count)
    }

    /// Dossiers held per unit (the unit of the event that created each, or of its first event when loaded), and
    /// the unit each slot was counted for (`UInt32.max`: none).
    private var heldPerUnit: [Int]
    private var slotUnit: [UnitID] = []

    /// How many dossiers the unit holds.
    public func heldDossiers(of unit: UnitID) -> Int { heldPerUnit[Int(unit)] }

    private mutating func count(slot k: Int, unit: UnitID?) {
        slotUnit[k] = unit ?? UInt32.max
        if let unit, Int(unit) < heldPerUnit.count { heldPerUnit[Int(unit)] += 1 }
    }

    /// Runs a whole replay and returns the alerts and the final dossiers.
    public static func run(events: [DossierEvent], config: Configuration, options: ReplayOptions) throws(ReplayError)
        -> Replay
    {
        var r = Replay(config: config)
        r.detectSilence = options.detectSilence
        if let settings = options.forecast {
            r.forecast = QueueForecast(unitCount: config.units.count, settings: settings)
        }
        var order = Array(events.indices)
        if !options.arrivalOrder {
            order.sort { a, b in
                let x = events[a], y = events[b]
                if x.occurredAt != y.occurredAt { return x.occurredAt < y.occurredAt }
                if (x.seq ?? -1) != (y.seq ?? -1) { return (x.seq ?? -1) < (y.seq ?? -1) }
                return a < b
            }
        }
        for i in order {
            let e = events[i]
            do {
                try r.receive(e, at: max(r.clock ?? e.occurredAt, e.occurredAt))
            } catch {
                throw ReplayError(index: i, message: error.description)
            }
        }
        let lastAt = events.map(\.occurredAt).max() ?? 0
        let until = options.until ?? LocalDate(dayNumber: LocalTime.day(of: lastAt)).adding(days: 1).startInstant - 1
        r.advance(to: max(until, r.clock ?? until))
        return r
    }

    /// Moves the clock to `t` (firing every timer due before it), then applies the event at `t`.
    /// Returns false for a duplicate (its `eventId` was already applied to the dossier).
    @discardableResult
    public mutating func receive(_ e: DossierEvent, at t: Instant) throws(DossierError) -> Bool {
        try receiveIntoSlot(e, at: t) != nil
    }

    /// `receive`, returning the dossier's slot (nil for a duplicate): the worker keys its per-event marks by slot,
    /// an array index, instead of hashing the code again for each.
    public mutating func receiveIntoSlot(_ e: DossierEvent, at t: Instant) throws(DossierError) -> Int? {
        fireTimers(before: t, inclusive: false)
        let now = move(to: t)
        let k: Int
        if let checked = checkedSlot, checked.code.hasSameBytes(as: e.dossier) {  // bytes, as the index
            k = checked.slot
        } else if let held = heldSlot(e.dossier) {
            k = held
        } else {
            k = slot(for: Dossier(code: e.dossier))
            count(slot: k, unit: config.unitID(e.unit))
        }
        var view: Dossier.QueueView?
        let actions = try dossiers[k].apply(e, now: now, config: config, view: &view)
        perform(actions, dossier: k)
        if forecast != nil, let view, !actions.isEmpty {
            observeForecast(slot: k, view: view, resolved: e.type == .resolved)
        }
        if detectSilence, let u = config.unitID(e.unit) {
            silence.record(unit: u, at: e.occurredAt)
            if silenceArmed.insert(u).inserted {
                silenceTimers.push(silence.silentAt(unit: u, config: config)!, Int(u))
            }
        }
        // A new event always leaves an action (at least the timer to arm or cancel); a duplicate none.
        return actions.isEmpty ? nil : k
    }

    /// The slot of the held dossier whose code has exactly the bytes of `code`.
    private func heldSlot(_ code: String) -> Int? {
        Self.withBytes(of: code) { bytes in
            index.find(hash: CodeSlotIndex.hash(bytes)) { CodeSlotIndex.sameBytes(dossiers[$0].code, bytes) }
        }
    }

    /// Indexes slot `k` under `code`, unless the code is held: then returns its slot and changes nothing.
    private mutating func indexSlot(_ k: Int, for code: String) -> Int? {
        // The index reads codes while it changes: a second reference to the array (no copy of its elements),
        // released when this returns, before anything writes to `dossiers`.
        let dossiers = self.dossiers
        return Self.withBytes(of: code) { bytes in
            index.insert(hash: CodeSlotIndex.hash(bytes), slot: k) { CodeSlotIndex.sameBytes(dossiers[$0].code, bytes) }
        }
    }

    /// Takes `code` out of the index; returns the slot it was held at.
    private mutating func unindex(_ code: String) -> Int? {
        let dossiers = self.dossiers  // as in `indexSlot`
        return Self.withBytes(of: code) { bytes in
            index.remove(hash: CodeSlotIndex.hash(bytes)) { CodeSlotIndex.sameBytes(dossiers[$0].code, bytes) }
        }
    }

    /// Runs `body` on the code's UTF-8 in place (a copy only for a string that is not contiguous).
    private static func withBytes<R>(of code: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = code.utf8.withContiguousStorageIfAvailable(body) { return r }
        var copy = code
        return copy.withUTF8(body)
    }

    /// Whether the dossier is held (without copying it).
    public func holds(_ code: String) -> Bool { heldSlot(code) != nil }

    /// The units whose events the held dossier has (`Dossier.units`); empty when it is not held.
    public func heldUnits(of code: String) -> [UnitID] { heldSlot(code).map { dossiers[$0].units } ?? [] }

    /// Whether the dossier is held and, if so, why an event of `unit` may not join it
    /// (`Configuration.heldUnitRefusal`), checked on its events in place: every event asks, so this allocates
    /// nothing and looks the code up once.
    /// The slot found is remembered for the `receive` that follows the check (`checkedSlot`).
    public mutating func heldUnitCheck(of code: String, unit: UnitID) -> (held: Bool, refusal: EventRefusal?) {
        guard let k = heldSlot(code) else { return (false, nil) }
        checkedSlot = (code, k)
        for e in dossiers[k].events where e.unit != unit {
            if let refusal = config.heldUnitRefusal(dossier: code, held: [e.unit], unit: unit) {
                return (true, refusal)
            }
        }
        return (true, nil)
    }

    /// Moves the clock to `t`, firing every timer due at or before it.
    public mutating func advance(to t: Instant) {
        fireTimers(before: t, inclusive: true)
        move(to: t)
    }

    /// Moves the clock straight to `t` and fires everything due by then *at* `t`, as a worker that was down does
    /// when it starts: such alerts carry `firedAt = t` and are marked late-fired.
    public mutating func jump(to t: Instant) {
        move(to: t)
        fireTimers(before: t, inclusive: true)
    }

    public func dossier(_ code: String) -> Dossier? { heldSlot(code).map { dossiers[$0] } }

    /// The slot of a held dossier. A slot stays the dossier's until it is removed; then a new dossier reuses it.
    public func slot(of code: String) -> Int? { heldSlot(code) }

    /// The dossier held in a slot; nil for a free one.
    public func dossier(inSlot k: Int) -> Dossier? { holds(slot: k) ? dossiers[k] : nil }

    /// Reads the dossier in slot `k` in place (nil for a free slot): `dossier(inSlot:)` copies it, a retain and a
    /// release of each of its buffers, and saving rows reads every dossier changed.
    public func withDossier<R>(inSlot k: Int, _ body: (borrowing Dossier) -> R) -> R? {
        // Through the buffer: the array's subscript getter copies the element first.
        holds(slot: k) ? dossiers.withUnsafeBufferPointer { body($0[k]) } : nil
    }

    /// Whether slot `k` holds a dossier (a removed one leaves an empty code behind).
    private func holds(slot k: Int) -> Bool { k >= 0 && k < dossiers.count && !dossiers[k].code.isEmpty }

    /// Dossiers held (retired ones excluded).
    public var liveDossierCount: Int { dossiers.count - freeSlots.count }

    private mutating func slot(for dossier: consuming Dossier) -> Int {
        let k = nextSlot
        let held = indexSlot(k, for: dossier.code)
        precondition(held == nil, "a new dossier's code is held already")
        occupy(k, with: dossier)
        return k
    }

    /// The slot the next new dossier takes.
    private var nextSlot: Int { freeSlots.last ?? dossiers.count }

    /// Puts a new dossier in slot `nextSlot` (its code is already in `index`).
    private mutating func occupy(_ k: Int, with dossier: consuming Dossier) {
        if k == dossiers.count {
            dossiers.append(dossier)
            timerAt.append(nil)
            storageKeys.append(0)
            slotUnit.append(UInt32.max)
            queued.append(false)
        } else {
            freeSlots.removeLast()
            dossiers[k] = dossier
            timerAt[k] = nil
            storageKeys[k] = 0
            queued[k] = false
        }
    }

    /// Room for `count` dossiers without regrowing (a restart knows how many rows it will load).
    public mutating func reserveCapacity(_ count: Int) {
        index.reserveCapacity(count)
        dossiers.reserveCapacity(count)
        timerAt.reserveCapacity(count)
        storageKeys.reserveCapacity(count)
        slotUnit.reserveCapacity(count)
        queued.reserveCapacity(count)
    }

    /// Adds a dossier read back from a worker's store (with the key of its row there, 0 if the store has none) and
    /// arms its timer, unless one with its code is held already: then it returns false and changes nothing.
    /// Thresholds due by the clock fire into `alerts` (a caller restoring committed state discards them: they were
    /// committed with the clock). `queued` marks it as in the worker's retirement queue
    /// (`markQueued`). One hash of the code per dossier: a restart loads a million of them.
    public mutating func loadNew(_ dossier: consuming Dossier, storageKey: Int64, queued isQueued: Bool) -> Bool {
        let k = nextSlot
        if indexSlot(k, for: dossier.code) != nil { return false }
        let firstUnit = dossier.events.first?.unit
        if detectSilence { recordSilence(of: dossier) }
        occupy(k, with: dossier)  // handed on, not copied: its last use here
        count(slot: k, unit: firstUnit)
        storageKeys[k] = storageKey
        queued[k] = isQueued
        // A settled dossier (closed, nothing left to fire) would advance to no change and no timer: most of those a
        // restart loads are, and working out their state was a third of the loading thread's time.
        if dossiers[k].flags & Dossier.settledFlag != 0 { return true }
        var view: Dossier.QueueView?
        perform(dossiers[k].advance(to: clock ?? .min, config: config, view: &view), dossier: k)
        if forecast != nil, let view, let due = view.due, config.forecastsUnit(view.unit) {
            // Its place in the unit's queue; `at_risk` already fired in this episode is not raised again.
            let bit = UInt8(1) << AlertLevel.atRisk.rawValue
            forecast!.restoreQueued(
                unit: view.unit, slot: k, code: dossiers[k].code, receivedAt: view.start, due: due,
                atRisk: dossiers[k].firedMask & bit != 0)
        }
        return true
    }

    /// Marks the dossier in slot `k` as in the worker's retirement queue; false when it already was.
    public mutating func markQueued(slot k: Int) -> Bool {
        guard !queued[k] else { return false }
        queued[k] = true
        return true
    }

    /// The worker took the dossier out of its retirement queue (it stays held).
    public mutating func unmarkQueued(_ code: String) {
        if let k = heldSlot(code) { queued[k] = false }
    }

    /// The key of the dossier's row in the worker's store, or, if it has none yet, `next` (which then moves on):
    /// nil if the dossier is not held. The store gives keys in order of first commit, so the rows a commit
    /// rewrites (dossiers still in play) sit together at the end of its table instead of all over it.
    public mutating func storageKey(ofSlot k: Int, assigning next: inout Int64) -> Int64? {
        guard holds(slot: k) else { return nil }
        if storageKeys[k] == 0 {
            storageKeys[k] = next
            next += 1
        }
        return storageKeys[k]
    }

    /// The key of the dossier's row in the worker's store (0: none yet), nil if the dossier is not held.
    public func storageKey(of code: String) -> Int64? { heldSlot(code).map { storageKeys[$0] } }

    /// A restart loads dossiers, not events: each unit's last event (what its silence counts from) is taken from
    /// them and its silence timer armed, so a unit that sends nothing after the restart is still reported. Without
    /// this a restart forgot every unit until its next event (a crash test missed a `source_silent` alert).
    private mutating func recordSilence(of dossier: Dossier) {
        for event in dossier.events where Int(event.unit) < config.units.count {
            silence.record(unit: event.unit, at: event.at)
            if silenceArmed.insert(event.unit).inserted, let at = silence.silentAt(unit: event.unit, config: config) {
                silenceTimers.push(at, Int(event.unit))
            }
        }
    }

    /// Removes a dossier from the state (the worker retires it); its slot is reused.
    @discardableResult
    public mutating func remove(_ code: String) -> Dossier? {
        guard let k = unindex(code) else { return nil }
        checkedSlot = nil
        let removed = dossiers[k]
        if forecast != nil, Int(slotUnit[k]) < config.units.count {
            // Queued under the unit of its episode, which is the unit it was counted for unless it moved.
            for u in Set(removed.units) { forecast!.forget(unit: u, slot: k) }
        }
        if Int(slotUnit[k]) < heldPerUnit.count { heldPerUnit[Int(slotUnit[k])] -= 1 }
        slotUnit[k] = UInt32.max
        dossiers[k] = Dossier(code: "")
        timerAt[k] = nil
        storageKeys[k] = 0
        queued[k] = false
        freeSlots.append(k)
        return removed
    }

    /// Fires what is due on one dossier at the clock (before retiring it: its resolution alert must be out).
    public mutating func settle(_ code: String) {
        guard let k = heldSlot(code), let clock else { return }
        perform(dossiers[k].advance(to: clock, config: config), dossier: k)
    }

    /// Hands over the alerts fired since the last call (a live worker writes them to its outbox).
    public mutating func takeAlerts() -> [Alert] {
        defer { alerts.removeAll(keepingCapacity: true) }
        return alerts
    }

    /// The earliest armed timer (possibly one that was re-armed since; firing it early is harmless): how long a
    /// live worker may wait for the next event.
    public var nextTimerAt: Instant? {
        [heap.peek?.at, detectSilence ? silenceTimers.peek?.at : nil, forecastTimers.peek?.at].compactMap { $0 }.min()
    }

    /// Whether the dossier is open (received and not closed), for the worker's dossier table.
    public func isOpen(_ code: String) -> Bool {
        guard let k = heldSlot(code) else { return false }
        return !dossiers[k].isSettled(config: config)
    }

    /// The instant of the dossier's armed timer, if any.
    public func timer(of code: String) -> Instant? { heldSlot(code).flatMap { timerAt[$0] } }

    private mutating func perform(_ actions: [DossierAction], dossier k: Int) {
        for a in actions {
            switch a {
            case .emit(let alert): alerts.append(alert)
            case .cancelTimer: timerAt[k] = nil
            case .scheduleTimer(let at):
                if timerAt[k] != at {
                    timerAt[k] = at
                    heap.push(at, k)
                }
            }
        }
    }

    private mutating func fireTimers(before t: Instant, inclusive: Bool) {
        func due(_ at: Instant?) -> Instant? {
            guard let at, inclusive ? at <= t : at < t else { return nil }
            return at
        }
        while true {
            // The earliest of the three heaps; at one instant, dossiers first, then silence, then the forecast.
            let d = due(heap.peek?.at)
            let s = due(silenceTimers.peek?.at)
            let f = due(forecastTimers.peek?.at)
            if let d, s.map({ d <= $0 }) ?? true, f.map({ d <= $0 }) ?? true {
                let (at, k) = heap.pop()!
                guard timerAt[k] == at else { continue }  // re-armed or cancelled since
                timerAt[k] = nil
                let clock = move(to: at)
                perform(dossiers[k].advance(to: clock, config: config), dossier: k)
            } else if let s, f.map({ s <= $0 }) ?? true {
                let (at, id) = silenceTimers.pop()!
                _ = s
                let unit = UnitID(id)
                let clock = move(to: at)
                silenceArmed.remove(unit)
                if let alert = silence.check(unit: unit, now: clock, config: config) {
                    alerts.append(alert)
                } else if let later = silence.silentAt(unit: unit, config: config), later > clock {
                    // Events came since the timer was armed: wait for the unit's new silence instant.
                    silenceArmed.insert(unit)
                    silenceTimers.push(later, id)
                }
            } else if f != nil {
                let (at, id) = forecastTimers.pop()!
                guard forecastArmed[id] == at else { continue }
                forecastArmed[id] = nil
                let clock = move(to: at)
                let unit = UnitID(id)
                let flags = forecast!.recheck(unit: unit, at: clock, calendar: config.calendar(of: unit))
                raise(flags)
                armForecast(unit)
            } else {
                return
            }
        }
    }

    // MARK: The queue forecast (at_risk)

    /// Tells the forecast what became of the dossier in `slot`: queued while it is a running same-day dossier of a
    /// unit whose block has the forecast on.
    private mutating func observeForecast(slot k: Int, view: Dossier.QueueView, resolved: Bool) {
        guard let clock else { return }
        let due = config.forecastsUnit(view.unit) ? view.due : nil
        let flags = forecast!.observe(
            unit: view.unit, slot: k, code: dossiers[k].code, receivedAt: view.start, due: due, resolved: resolved,
            at: clock, calendar: config.calendar(of: view.unit))
        raise(flags)
        armForecast(view.unit)
    }

    private mutating func armForecast(_ unit: UnitID) {
        if forecastArmed.count < config.units.count {
            forecastArmed = Array(repeating: nil, count: config.units.count)
        }
        let next = forecast!.nextCheckAt(unit)
        guard next != forecastArmed[Int(unit)] else { return }
        forecastArmed[Int(unit)] = next
        if let next { forecastTimers.push(next, Int(unit)) }
    }

    /// At a restart, before the dossiers are loaded: the forecast's stored part of each unit (by unit code; a unit
    /// no longer in the registry is passed over). Returns the units whose stored part did not read back (they start
    /// afresh).
    public mutating func restoreForecast(_ stored: [(unit: String, state: [UInt8])]) -> [String] {
        guard forecast != nil else { return [] }
        var unreadable: [String] = []
        for (code, bytes) in stored {
            guard let unit = config.unitID(code) else { continue }
            do {
                try forecast!.restore(unit: unit, from: bytes)
            } catch {
                unreadable.append(code)
            }
        }
        return unreadable
    }

    /// After the dossiers are loaded: puts each unit's queue in receipt order and arms its stored check.
    public mutating func armRestoredForecast() {
        guard forecast != nil else { return }
        forecast!.finishRestore()
        for u in config.units.indices { armForecast(UnitID(u)) }
    }

    /// The forecast's stored part of each unit that changed since the last call, for the worker's next commit.
    public mutating func takeForecastChanges() -> [(unit: String, state: [UInt8])] {
        guard forecast != nil else { return [] }
        return forecast!.takeChangedUnits().map { (config.units[Int($0)].code, forecast!.encode(unit: $0)) }
    }

    /// Emits `at_risk` for the dossiers the forecast newly flags, once per episode.
    private mutating func raise(_ flags: [QueueForecast.Flag]) {
        for flag in flags where flag.atRisk {
            let k = flag.slot
            let st = dossiers[k].state(config: config, full: false)
            guard let ep = st.episodes.last, let ref = st.procedure,
                dossiers[k].markAtRisk(episode: ep.number)
            else { continue }
            let unit = config.unit(flag.unit)
            let calendar = config.calendar(of: flag.unit)
            alerts.append(
                Alert(
                    alertId: Alert.id(subject: dossiers[k].code, episode: ep.number, level: .atRisk), level: .atRisk,
                    dossier: dossiers[k].code, unit: unit.code, block: unit.block,
                    procedure: config.procedureCode(ref), episode: ep.number, due: flag.due, firedAt: flag.at,
                    thresholdAt: flag.at,
                    minutesLeft: Int(calendar.workingSeconds(from: flag.at, to: flag.due) / 60),
                    recipients: config.recipients(.atRisk, unit: flag.unit), lateFired: false,
                    receivedAt: ep.deadline.received, predictedAt: flag.predictedAt, queueAhead: flag.queueAhead))
        }
    }

    /// What the forecast says of a held dossier now (nil when off, or the dossier is not queued).
    public func prediction(of code: String) -> QueueForecast.Prediction? {
        guard let forecast, let k = heldSlot(code), let clock,
            let unit = dossiers[k].state(config: config, full: false).unit
        else { return nil }
        return forecast.prediction(unit: unit, slot: k, at: clock, calendar: config.calendar(of: unit))
    }

    /// Facts of every received dossier, in first-seen order.
    public func facts() -> [DossierFacts] { dossiers.compactMap { $0.facts(config: config) } }
}

/// The replay's timers: (instant, dossier or unit index), earliest first, ties by index (a deterministic order).
typealias TimerHeap = InstantHeap<Int>

/// A binary min-heap of (instant, value), earliest first and ties by value, so the order never depends on insertion
/// history: the replay's timers and the worker's retirement queue.
/// Inlinable, so a heap of another module's type is specialized where it is used (the generic code copies each entry
/// through value witnesses: a restart's million entries took half a second).
public struct InstantHeap<Value: Comparable & Sendable>: Sendable {
    @usableFromInline var items: [(at: Instant, value: Value)] = []

    @inlinable public init() {}

    @inlinable public var count: Int { items.count }
    @inlinable public var peek: (at: Instant, value: Value)? { items.first }

    /// Compares two entries in place (copying them would retain a value that holds references at each step).
    @inlinable @inline(__always) func less(_ i: Int, _ j: Int) -> Bool {
        let a = items[i].at, b = items[j].at
        return a != b ? a < b : items[i].value < items[j].value
    }

    @inlinable public mutating func push(_ at: Instant, _ value: Value) {
        items.append((at, value))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(i, p) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    @inlinable public mutating func pop() -> (at: Instant, value: Value)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        siftDown(from: 0)
        return top
    }

    /// Adds many entries at once, rebuilding the heap in O(n) (a restart queues every dossier it loads). Into an
    /// empty heap the array itself is taken, not copied entry by entry (a retain of each value's references).
    @inlinable public mutating func push(contentsOf entries: consuming [(at: Instant, value: Value)]) {
        guard !entries.isEmpty else { return }
        if items.isEmpty { items = entries } else { items.append(contentsOf: entries) }
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(from: i)
        }
    }

    @inlinable mutating func siftDown(from start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && less(l, m) { m = l }
            if r < items.count && less(r, m) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
    }
}
