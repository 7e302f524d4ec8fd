import Foundation
import SameDayCore
import SameDayReport
import Synchronization

/// The board's state shared by the alert intake and the HTTP clients: the `BoardView`, each unit's figures of the
/// day, and the live clients, each scoped to its units. An alert taken is pushed at once to the clients whose units
/// it concerns; a client that falls `BoardSubscription.maxPending` changes behind is sent a fresh snapshot instead.
public final class BoardHub: Sendable {
    public let domain: Configuration
    public let maxClients: Int
    private let now: @Sendable () -> Instant
    private let state: Mutex<State>

    struct State: @unchecked Sendable {
        var view: BoardView
        var figures: [String: RollupFigures] = [:]
        var figuresDay: Int64?
        var clients: [ObjectIdentifier: BoardSubscription] = [:]
        /// Counts the changes.
        var generation = 0
        /// The alerts taken since the service last wrote them to its state file.
        var unsaved: [Alert] = []
        var closed = false
    }

    public init(
        domain: Configuration, view: BoardView = BoardView(), maxClients: Int = 2_000,
        now: @escaping @Sendable () -> Instant
    ) {
        self.domain = domain
        self.maxClients = maxClients
        self.now = now
        state = Mutex(State(view: view))
    }

    public var clock: Instant { now() }

    /// Takes alerts in order and pushes what changed; returns how many changes there were.
    @discardableResult
    public func apply(_ alerts: [Alert]) -> Int {
        state.withLock { s in
            var changed = 0
            s.unsaved += alerts
            for alert in alerts {
                guard let change = s.view.apply(alert) else { continue }
                changed += 1
                s.generation += 1
                guard !s.clients.isEmpty else { continue }
                let event = render(change)
                for client in s.clients.values { client.push(event) }
            }
            return changed
        }
    }

    /// Drops stale entries and forgets old closings (`BoardView.expire`).
    public func expire() {
        let at = now()
        state.withLock { s in
            for change in s.view.expire(now: at) {
                s.generation += 1
                let event = render(change)
                for client in s.clients.values { client.push(event) }
            }
        }
    }

    /// Today's figures per unit, from the rollup files; clients are told to refresh their summary.
    public func setFigures(_ figures: [String: RollupFigures], day: Int64) {
        state.withLock { s in
            guard s.figures != figures || s.figuresDay != day else { return }
            s.figures = figures
            s.figuresDay = day
            for client in s.clients.values { client.requestSnapshot() }
        }
    }

    /// A live client for `scope` (unit codes; nil: every unit); nil when `maxClients` are connected.
    public func subscribe(scope: Set<String>?) -> BoardSubscription? {
        state.withLock { s in
            guard !s.closed, s.clients.count < maxClients else { return nil }
            let client = BoardSubscription(scope: scope)
            s.clients[ObjectIdentifier(client)] = client
            return client
        }
    }

    public func unsubscribe(_ client: BoardSubscription) {
        _ = state.withLock { $0.clients.removeValue(forKey: ObjectIdentifier(client)) }
        client.finish()
    }

    /// Wakes every client: one with nothing to send writes a keep-alive comment (a gone client is noticed).
    public func wakeAll() {
        state.withLock { s in for client in s.clients.values { client.wake() } }
    }

    /// Ends every stream and takes no new client: the service is stopping.
    public func closeAll() {
        let clients = state.withLock { s in
            s.closed = true
            defer { s.clients.removeAll() }
            return Array(s.clients.values)
        }
        for client in clients { client.finish() }
    }

    public var generation: Int { state.withLock { $0.generation } }

    public var clientCount: Int { state.withLock { $0.clients.count } }
    public var entryCount: Int { state.withLock { $0.view.entries.count } }
    public var droppedCount: Int { state.withLock { $0.view.dropped } }

    /// The entry of `dossier` if it is on the board and in `scope`; else the alert that closed it, if remembered.
    public func dossier(_ code: String, scope: Set<String>?) -> (entry: BoardEntry?, closing: Alert?)? {
        state.withLock { s in
            if let entry = s.view.entries[code], scope?.contains(entry.unit) ?? true { return (entry, nil) }
            if let closing = s.view.closing(of: code), scope?.contains(closing.unit) ?? true { return (nil, closing) }
            return nil
        }
    }

    /// The alerts taken since the last call, in order: what the service appends to its state file.
    public func takeUnsaved() -> [Alert] {
        state.withLock { s in
            defer { s.unsaved.removeAll() }
            return s.unsaved
        }
    }

    /// What must survive a restart (`BoardView.persistentAlerts`).
    public func persistentAlerts() -> [Alert] { state.withLock { $0.view.persistentAlerts } }

    // MARK: JSON for the page

    /// Everything a client in `scope` shows: per unit, the day's figures and the dossiers at risk by level; then
    /// the dossiers at risk, fewest working minutes left first.
    public func snapshotJSON(scope: Set<String>?) -> String {
        let at = now()
        let (entries, figures) = state.withLock { s in
            (Array(s.view.entries.values.filter { scope?.contains($0.unit) ?? true }), s.figures)
        }
        var rows = entries.map { (entry: $0, left: minutesLeft($0.alert, at: at)) }
        rows.sort { ($0.left ?? Int.max, $0.entry.dossier) < ($1.left ?? Int.max, $1.entry.dossier) }
        var atRisk: [String: [Int]] = [:]
        for row in rows {
            atRisk[row.entry.unit, default: BoardView.openLevels.map { _ in 0 }][BoardView.rank(row.entry.level) - 1] +=
                1
        }
        // The units shown: every unit of a small scope; for a wide one (a block, the city), those with something
        // at risk or received today, so a city supervisor's page is not hundreds of empty cards.
        let scopeUnits = scope.map { Array($0) } ?? domain.units.map(\.code)
        let shown = scopeUnits.filter { code in
            scopeUnits.count <= 24 || atRisk[code] != nil || (figures[code]?.sameDayReceived ?? 0) > 0
        }
        var w = JSONWriter()
        w.beginObject()
        w.field("now", RFC3339.format(at))
        w.key("units")
        w.beginArray()
        let ordered = shown.compactMap { code in domain.unitID(code).map { (code, domain.unit($0)) } }
            .sorted { a, b in
                let ra = atRisk[a.0]?.reduce(0, +) ?? 0
                let rb = atRisk[b.0]?.reduce(0, +) ?? 0
                return ra != rb ? ra > rb : a.0 < b.0
            }
        for (code, unit) in ordered {
            let f = figures[code]
            w.beginObject()
            w.field("code", code)
            w.field("name", unit.name)
            w.key("receivedToday")
            if let f { w.int(f.sameDayReceived) } else { w.null() }
            w.key("openToday")
            if let f { w.int(max(0, f.sameDayReceived - f.sameDayResolvedSameDay)) } else { w.null() }
            w.key("resolvedOnTimeToday")
            if let f { w.int(f.sameDayResolvedInTime) } else { w.null() }
            let counts = atRisk[code] ?? BoardView.openLevels.map { _ in 0 }
            w.key("atRisk")
            w.beginObject()
            for (i, level) in BoardView.openLevels.enumerated() { w.field(level.name, counts[i]) }
            w.endObject()
            w.endObject()
        }
        w.endArray()
        w.key("entries")
        w.beginArray()
        for row in rows { writeEntry(row.entry, left: row.left, into: &w) }
        w.endArray()
        w.endObject()
        return w.text
    }

    /// One change as a client receives it, rendered once for every client.
    public func render(_ change: BoardView.Change) -> BoardEvent {
        switch change {
        case .upsert(let entry):
            var w = JSONWriter()
            writeEntry(entry, left: minutesLeft(entry.alert, at: now()), into: &w)
            return BoardEvent(name: "upsert", data: w.text, unit: entry.unit)
        case .remove(let dossier, let unit, let alertId):
            var w = JSONWriter()
            w.beginObject()
            w.field("dossier", dossier)
            w.field("unit", unit)
            w.key("alertId")
            if let alertId { w.string(alertId) } else { w.null() }
            w.endObject()
            return BoardEvent(name: "remove", data: w.text, unit: unit)
        }
    }

    /// Working minutes from `at` to the alert's deadline on the dossier's calendar, negative when late.
    public func minutesLeft(_ alert: Alert, at: Instant) -> Int? {
        guard let due = alert.due, let unit = domain.unitID(alert.unit) else { return nil }
        let calendar = domain.workingCalendar(unit: unit, procedure: domain.procedureRef(alert.procedure, unit: unit))
        return Int(calendar.workingSeconds(from: at, to: due) / 60)
    }

    private func writeEntry(_ entry: BoardEntry, left: Int?, into w: inout JSONWriter) {
        let a = entry.alert
        let unitID = domain.unitID(a.unit)
        w.beginObject()
        w.field("dossier", a.dossier)
        w.field("alertId", a.alertId)
        w.field("unit", a.unit)
        w.field("unitName", unitID.map { domain.unit($0).name } ?? a.unit)
        w.field("procedure", a.procedure)
        let name = unitID.flatMap { domain.catalogEntry(domain.procedureRef(a.procedure, unit: $0))?.name }
        w.field("procedureName", name ?? "")
        w.field("level", a.level.name)
        w.field("levelName", ReportLabels.level(a.level.name))
        w.key("receivedAt")
        if let r = a.receivedAt { w.string(VietnameseFormat.dateTime(r)) } else { w.null() }
        w.key("due")
        if let d = a.due { w.string(VietnameseFormat.dateTime(d)) } else { w.null() }
        w.field("firedAt", VietnameseFormat.dateTime(a.firedAt))
        w.key("minutesLeft")
        if let left { w.int(left) } else { w.null() }
        // `at_risk`: the predicted completion and the queue ahead (docs/rules.md §5.6).
        if let p = a.predictedAt { w.field("predictedAt", VietnameseFormat.dateTime(p)) }
        if let q = a.queueAhead { w.field("queueAhead", q) }
        w.endObject()
    }
}

/// One live client's pending changes. The intake pushes under the hub's lock; the client's stream takes them.
public final class BoardSubscription: Sendable {
    /// Past this many changes not yet sent, the client gets a snapshot instead (it fell behind).
    public static let maxPending = 2_000
    public let scope: Set<String>?
    public let wakes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let pending = Mutex<(changes: [BoardEvent], snapshot: Bool)>(([], false))

    init(scope: Set<String>?) {
        self.scope = scope
        (wakes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ change: BoardEvent) {
        guard scope?.contains(change.unit) ?? true else { return }
        pending.withLock { p in
            if p.snapshot { return }
            if p.changes.count >= Self.maxPending {
                p.changes.removeAll()
                p.snapshot = true
            } else {
                p.changes.append(change)
            }
        }
        continuation.yield()
    }

    func requestSnapshot() {
        pending.withLock { p in
            p.changes.removeAll()
            p.snapshot = true
        }
        continuation.yield()
    }

    /// What to send now: a snapshot (and nothing else), or the changes in order.
    public func take() -> (changes: [BoardEvent], snapshot: Bool) {
        pending.withLock { p in
            defer { p = ([], false) }
            return p
        }
    }

    func wake() { continuation.yield() }

    func finish() { continuation.finish() }
}

/// A change as the event stream carries it: `event: <name>` and `data: <JSON>`, for the clients of `unit`.
public struct BoardEvent: Sendable, Equatable {
    public var name: String
    public var data: String
    public var unit: String
}
