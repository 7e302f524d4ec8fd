/// How alerts reach one person: not one message per alert, but grouped the way a supervisor can bear them on a phone
/// (the idea of Prometheus Alertmanager's group windows, with the working calendar of the person's unit).
///
/// - The first alert of a new group waits `groupWait` for others; after a message, the next one waits at least
///   `groupInterval`. A level's windows apply when an alert of that level is in the group (the shortest wins).
/// - A message lists the dossiers at risk, worst first (escalated, overdue, critical, warning, then fewest working
///   minutes left). A dossier whose level rose inside one window is listed once, at its newest level.
/// - `cleared` and `resolved_late` never make a message by themselves: they fold into the next one ("2 dossiers
///   resolved since"). A dossier at risk that is resolved before its message goes out is not listed as at risk.
/// - An `escalated` dossier that stays open is listed again every `repeatInterval`, until it is cleared or resolved.
/// - Outside the person's working sessions a message is held until the next session starts, unless it holds a level
///   that pages at any hour (`anyHour`, by default `escalated`).
///
/// Pure: time is passed in, and the calendar is the one of the recipient's unit. The state of one person is bounded
/// by the dossiers at risk in her units, not by history (resolutions are counted, and only the latest few kept).
public struct DigestWindows: Sendable, Equatable {
    /// Seconds the first alert of a new group waits for others.
    public var groupWait: Int64
    /// The fewest seconds between two messages to the same person.
    public var groupInterval: Int64
    /// Seconds after which an escalation still open is sent again.
    public var repeatInterval: Int64

    public init(groupWait: Int64, groupInterval: Int64, repeatInterval: Int64) {
        self.groupWait = groupWait
        self.groupInterval = groupInterval
        self.repeatInterval = repeatInterval
    }

    /// Half a minute to gather, five minutes between messages, an hour between repeats.
    public static let standard = DigestWindows(groupWait: 30, groupInterval: 300, repeatInterval: 3600)
}

/// The windows per level and the levels that page at any hour.
public struct DigestPolicy: Sendable, Equatable {
    public var standard: DigestWindows
    /// Windows of particular levels (a level not listed uses `standard`).
    public var levels: [AlertLevel: DigestWindows]
    /// Levels sent at any hour; messages without one wait for the recipient's next working session.
    public var anyHour: Set<AlertLevel>
    /// The most dossiers one message lists; the rest are counted ("and 12 more").
    public var maxListed: Int

    public init(
        standard: DigestWindows = .standard, levels: [AlertLevel: DigestWindows] = [:],
        anyHour: Set<AlertLevel> = [.escalated], maxListed: Int = 30
    ) {
        self.standard = standard
        self.levels = levels
        self.anyHour = anyHour
        self.maxListed = maxListed
    }

    public func windows(_ level: AlertLevel) -> DigestWindows { levels[level] ?? standard }
}

/// One message to one person.
public struct Digest: Sendable, Equatable {
    /// The dossiers at risk, worst first (of this page: `pages(maxListed:)`).
    public var atRisk: [Alert]
    /// Ids of the escalations in `atRisk` that were sent before and are still open.
    public var repeated: Set<String>
    /// Dossiers resolved (`cleared`, `resolved_late`) since the last message, and the latest of them.
    public var resolvedCount: Int
    public var lateResolvedCount: Int
    public var resolvedLatest: [Alert]
    /// When the message was first due, if it was held for the working session that starts at `sentAt`.
    public var heldSince: Instant?
    public var sentAt: Instant
    /// Dossiers at risk in the whole window, and overdue or escalated among them (what the subject counts).
    public var totalAtRisk = 0
    public var totalLate = 0
    /// This message's page of the window's list (1-based), of how many.
    public var page = 1
    public var pages = 1
    /// The number of this page's first dossier in the whole list.
    public var firstNumber = 1

    /// The digest as messages of at most `maxListed` dossiers each, sent together: a long list does not make any
    /// dossier wait for a later message. The resolutions go with the first page.
    public func pages(maxListed: Int) -> [Digest] {
        guard atRisk.count > maxListed, maxListed > 0 else { return [self] }
        let starts = Array(stride(from: 0, to: atRisk.count, by: maxListed))
        return starts.enumerated().map { index, start in
            var page = self
            page.atRisk = Array(atRisk[start..<min(start + maxListed, atRisk.count)])
            page.repeated = repeated.intersection(page.atRisk.map(\.alertId))
            page.page = index + 1
            page.pages = starts.count
            page.firstNumber = start + 1
            if index > 0 {
                page.resolvedCount = 0
                page.lateResolvedCount = 0
                page.resolvedLatest = []
            }
            return page
        }
    }

    /// Every alert id the message carries (what a delivery log records as delivered).
    public var alertIDs: [String] { atRisk.map(\.alertId) + resolvedLatest.map(\.alertId) }
}

/// What one person is owed and when it goes out.
public struct DigestQueue: Sendable, Equatable {
    /// Alerts at risk not yet sent, one per dossier (its newest level).
    public private(set) var pending: [Alert] = []
    /// When the first of `pending` arrived.
    public private(set) var groupStartedAt: Instant?
    public private(set) var lastSentAt: Instant?
    /// Escalations sent and still open, by dossier, with when each was last sent.
    public private(set) var openEscalations: [String: OpenEscalation] = [:]
    public private(set) var resolvedCount = 0
    public private(set) var lateResolvedCount = 0
    /// The latest resolutions, for the message to name (bounded).
    public private(set) var resolvedLatest: [Alert] = []

    public struct OpenEscalation: Sendable, Equatable {
        public var alert: Alert
        public var lastSentAt: Instant

        public init(alert: Alert, lastSentAt: Instant) {
            self.alert = alert
            self.lastSentAt = lastSentAt
        }
    }

    /// How many resolutions a message names; the rest are counted.
    public static let resolvedNamed = 10

    public init() {}

    /// A queue as a restart finds it: when its last message went out and the escalations still open. The alerts
    /// owed are then added again with `add`, in the order they arrived, at the instants they arrived.
    public init(lastSentAt: Instant?, openEscalations: [String: OpenEscalation]) {
        self.lastSentAt = lastSentAt
        self.openEscalations = openEscalations
    }

    /// Whether nothing is owed.
    public var isEmpty: Bool { pending.isEmpty && openEscalations.isEmpty && resolvedCount == 0 }

    /// Takes an alert for this person, arrived at `now`.
    public mutating func add(_ alert: Alert, at now: Instant) {
        switch alert.level {
        case .cleared, .resolvedLate:
            pending.removeAll { $0.dossier == alert.dossier && !alert.dossier.isEmpty }
            if pending.isEmpty { groupStartedAt = nil }
            openEscalations[alert.dossier] = nil
            resolvedCount += 1
            if alert.level == .resolvedLate { lateResolvedCount += 1 }
            resolvedLatest.append(alert)
            if resolvedLatest.count > Self.resolvedNamed { resolvedLatest.removeFirst() }
        case .atRisk, .warning, .critical, .overdue, .escalated, .sourceSilent:
            if let i = pending.firstIndex(where: { $0.dossier == alert.dossier && $0.unit == alert.unit }) {
                if Self.rank(alert.level) >= Self.rank(pending[i].level) { pending[i] = alert }
            } else {
                pending.append(alert)
            }
            if groupStartedAt == nil { groupStartedAt = now }
        }
    }

    /// When the next message is due (nil: nothing to send; resolutions alone wait for the next message), on the
    /// recipient's calendar.
    public func dueAt(policy: DigestPolicy, calendar: WorkCalendar) -> (at: Instant, heldSince: Instant?)? {
        // A time that does not page moves to the next working instant (and says since when it was held).
        func placed(_ t: Instant, pages: Bool) -> (at: Instant, heldSince: Instant?) {
            if pages { return (t, nil) }
            let working = calendar.nextWorkingInstant(atOrAfter: t)
            return working == t ? (t, nil) : (working, t)
        }
        var candidates: [(at: Instant, heldSince: Instant?)] = []
        if let started = groupStartedAt, !pending.isEmpty {
            let wait = pending.map { policy.windows($0.level).groupWait }.min()!
            let interval = pending.map { policy.windows($0.level).groupInterval }.min()!
            let due = max(started + wait, (lastSentAt ?? Int64.min / 2) + interval)
            candidates.append(placed(due, pages: pending.contains { policy.anyHour.contains($0.level) }))
        }
        let repeatWindow = policy.windows(.escalated).repeatInterval
        if let nextRepeat = openEscalations.values.map({ $0.lastSentAt + repeatWindow }).min() {
            candidates.append(placed(nextRepeat, pages: policy.anyHour.contains(.escalated)))
        }
        return candidates.min { $0.at < $1.at }
    }

    /// The message due at `now`, if any; the queue then starts a new group.
    public mutating func take(at now: Instant, policy: DigestPolicy, calendar: WorkCalendar) -> Digest? {
        guard let due = dueAt(policy: policy, calendar: calendar), due.at <= now else { return nil }
        let repeatWindow = policy.windows(.escalated).repeatInterval
        var listed = pending
        var repeated = Set<String>()
        for (dossier, open) in openEscalations where !pending.contains(where: { $0.dossier == dossier }) {
            if open.lastSentAt + repeatWindow <= now {
                listed.append(open.alert)
                repeated.insert(open.alert.alertId)
            }
        }
        listed.sort(by: Self.worseFirst)
        for alert in listed where alert.level == .escalated {
            openEscalations[alert.dossier] = OpenEscalation(alert: alert, lastSentAt: now)
        }
        let digest = Digest(
            atRisk: listed, repeated: repeated, resolvedCount: resolvedCount, lateResolvedCount: lateResolvedCount,
            resolvedLatest: resolvedLatest, heldSince: due.heldSince, sentAt: now, totalAtRisk: listed.count,
            totalLate: listed.filter { $0.level == .overdue || $0.level == .escalated }.count)
        pending.removeAll()
        groupStartedAt = nil
        lastSentAt = now
        resolvedCount = 0
        lateResolvedCount = 0
        resolvedLatest.removeAll()
        return digest
    }

    /// Escalated, overdue, critical, warning, at risk (a forecast); a silent source beside a warning.
    static func rank(_ level: AlertLevel) -> Int {
        switch level {
        case .escalated: 5
        case .overdue: 4
        case .critical: 3
        case .warning, .sourceSilent: 2
        case .atRisk: 1
        case .cleared, .resolvedLate: 0
        }
    }

    /// Worse level first, then fewer working minutes left, then the dossier code (a stable order).
    static func worseFirst(_ a: Alert, _ b: Alert) -> Bool {
        if rank(a.level) != rank(b.level) { return rank(a.level) > rank(b.level) }
        let ma = a.minutesLeft ?? Int.max
        let mb = b.minutesLeft ?? Int.max
        if ma != mb { return ma < mb }
        return (a.unit, a.dossier) < (b.unit, b.dossier)
    }
}
