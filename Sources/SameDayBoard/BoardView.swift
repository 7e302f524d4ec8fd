import SameDayCore

/// The board's view of the dossiers at risk, built from alerts alone (docs/board.md): `warning`, `critical`,
/// `overdue` and `escalated` open an entry (or raise it), `cleared` and `resolved_late` close it. Pure: the caller
/// passes every alert and every instant in.
///
/// Alerts may come twice and out of order (the alert files read at start, then the board's queue, which may hold
/// the same alerts again): an alert older than what the view holds for its dossier changes nothing, so a
/// redelivered `warning` never reopens a dossier already cleared. Its state follows the dossiers at risk: a closed
/// dossier is remembered for `closedMemorySeconds` (to recognise a late duplicate), an entry with no new alert for
/// `staleSeconds` is dropped (a dossier stopped for a supplement raises no resolution alert), and at most
/// `maxEntries` are held.
public struct BoardView: Sendable {
    /// What a client must change after an alert.
    public enum Change: Sendable, Equatable {
        /// A dossier appears, or its level changed.
        case upsert(BoardEntry)
        /// A dossier leaves the board: its resolution alert (`alertId`), or dropped as stale (nil).
        case remove(dossier: String, unit: String, alertId: String?)
    }

    /// The order of alerts of one dossier: a later episode, then a later firing, then the level (a resolution
    /// fired in the same second as a threshold comes after it), then the id, so that any order of arrival ends in
    /// the same view.
    struct Version: Comparable, Sendable {
        var episode: Int
        var firedAt: Instant
        var rank: Int
        var alertID: String

        init(_ alert: Alert) {
            episode = alert.episode
            firedAt = alert.firedAt
            rank = BoardView.rank(alert.level)
            alertID = alert.alertId
        }

        static func < (a: Version, b: Version) -> Bool {
            (a.episode, a.firedAt, a.rank, a.alertID) < (b.episode, b.firedAt, b.rank, b.alertID)
        }
    }

    struct Closed: Sendable {
        var version: Version
        var unit: String
        var closing: Alert
    }

    public static let openLevels: [AlertLevel] = [.atRisk, .warning, .critical, .overdue, .escalated]
    static func rank(_ level: AlertLevel) -> Int {
        switch level {
        case .atRisk: 1
        case .warning: 2
        case .critical: 3
        case .overdue: 4
        case .escalated: 5
        case .cleared, .resolvedLate: 6
        default: 0
        }
    }

    public private(set) var entries: [String: BoardEntry] = [:]
    private var closed: [String: Closed] = [:]
    public let closedMemorySeconds: Int64
    public let staleSeconds: Int64
    public let maxEntries: Int
    /// Alerts the view could not take because it held `maxEntries` (the metric `sameday_board_dropped_total`).
    public private(set) var dropped = 0

    public init(closedMemorySeconds: Int64 = 2 * 86_400, staleSeconds: Int64 = 14 * 86_400, maxEntries: Int = 200_000) {
        self.closedMemorySeconds = closedMemorySeconds
        self.staleSeconds = staleSeconds
        self.maxEntries = maxEntries
    }

    /// Takes one alert; returns what changed for the clients, or nil (a duplicate, an older alert, a level the board
    /// does not show).
    public mutating func apply(_ alert: Alert) -> Change? {
        let level = alert.level
        guard !alert.dossier.isEmpty, Self.rank(level) > 0 else { return nil }
        let version = Version(alert)
        if let gone = closed[alert.dossier], version <= gone.version { return nil }
        if level == .cleared || level == .resolvedLate {
            let existing = entries[alert.dossier]
            if let existing, version <= Version(existing.alert) { return nil }
            closed[alert.dossier] = Closed(version: version, unit: alert.unit, closing: alert)
            guard existing != nil else { return nil }
            entries[alert.dossier] = nil
            return .remove(dossier: alert.dossier, unit: alert.unit, alertId: alert.alertId)
        }
        if var entry = entries[alert.dossier] {
            let current = Version(entry.alert)
            guard version > current else {
                // An older alert of the same episode still belongs in the timeline.
                if version.episode == current.episode, !entry.history.contains(where: { $0.alertId == alert.alertId }) {
                    entry.history.append(alert)
                    entry.history.sort { Version($0) < Version($1) }
                    entries[alert.dossier] = entry
                }
                return nil
            }
            if version.episode != current.episode { entry.history = [] }
            entry.history.append(alert)
            entry.history = Array(entry.history.suffix(BoardEntry.maxHistory))
            entry.alert = alert
            entries[alert.dossier] = entry
            return .upsert(entry)
        }
        guard entries.count < maxEntries else {
            dropped += 1
            return nil
        }
        closed[alert.dossier] = nil
        let entry = BoardEntry(alert: alert, history: [alert])
        entries[alert.dossier] = entry
        return .upsert(entry)
    }

    /// Forgets closed dossiers past their memory and drops entries with no new alert for `staleSeconds`; returns the
    /// entries dropped (for the clients).
    public mutating func expire(now: Instant) -> [Change] {
        closed = closed.filter { now - $0.value.version.firedAt < closedMemorySeconds }
        var changes: [Change] = []
        for (code, entry) in entries where now - entry.alert.firedAt >= staleSeconds {
            entries[code] = nil
            changes.append(.remove(dossier: code, unit: entry.alert.unit, alertId: nil))
        }
        return changes
    }

    /// The alert that closed `dossier`, while it is remembered.
    public func closing(of dossier: String) -> Alert? { closed[dossier]?.closing }

    /// What the view must keep across a restart: each entry's alerts and each remembered closing alert. Applying
    /// them to an empty view rebuilds it.
    public var persistentAlerts: [Alert] {
        entries.values.flatMap(\.history) + closed.values.map(\.closing)
    }
}

/// One dossier at risk: its newest alert (which sets its level) and the alerts of its current episode.
public struct BoardEntry: Sendable, Equatable {
    public static let maxHistory = 8
    public var alert: Alert
    public var history: [Alert]

    public init(alert: Alert, history: [Alert]) {
        self.alert = alert
        self.history = history
    }

    public var dossier: String { alert.dossier }
    public var unit: String { alert.unit }
    public var level: AlertLevel { alert.level }
}
