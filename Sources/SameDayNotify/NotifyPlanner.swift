import SameDayCore
import SameDayReport
import SameDayStore

/// The notifier's decisions, apart from the broker, the threads and the clock (docs/notify.md): who is owed an alert
/// (`alerting.json`'s levels and recipients, up the unit tree), each person's `DigestQueue`, and the messages of a
/// digest when it is due, rendered for every channel of that person. Time is passed in; the store is the caller's.
///
/// Its state is one queue per person who is owed something or has an escalation open: it follows the dossiers at
/// risk, not the days the service has run.
public struct NotifyPlanner: Sendable {
    public let settings: NotifySettings
    public let domain: Configuration
    private var queues: [String: DigestQueue] = [:]
    /// The newest owed arrival (store seq) each queue holds: a digest clears what its person was owed up to it.
    private var throughSeq: [String: Int64] = [:]
    private var profiles: [String: Profile] = [:]
    /// The units whose alerts reach each person (any level): her daily summary's units.
    private var personUnits: [String: [UnitID]] = [:]
    /// The local day of each person's last daily summary taken.
    private var summarizedDay: [String: Int64] = [:]

    /// How a person is reached and whose calendar holds her messages.
    public struct Profile: Sendable, Equatable {
        public var scope: String
        public var calendar: WorkCalendar
        public var email: Bool
        public var chats: [(webhook: String, kind: ChatKind, chatID: String)]

        public static func == (a: Profile, b: Profile) -> Bool {
            a.scope == b.scope && a.calendar.id == b.calendar.id && a.email == b.email
                && a.chats.map(\.chatID) == b.chats.map(\.chatID) && a.chats.map(\.webhook) == b.chats.map(\.webhook)
        }

        /// Whether any channel reaches her.
        public var isReachable: Bool { email || !chats.isEmpty }
    }

    /// A digest taken for one person, ready to be stored in one transaction (`NotifyStore.commitDigest`).
    public struct Planned: Sendable {
        public var recipient: String
        public var throughSeq: Int64
        public var digest: Digest
        public var messages: [NotifyMessage]
        public var lastSentAt: Instant?
        /// `recipient_state.open_escalations`: one line per escalation, `<lastSentAt> <alert JSON>`.
        public var openEscalations: String
    }

    public init(settings: NotifySettings, domain: Configuration) {
        self.settings = settings
        self.domain = domain
        var profiles: [String: Profile] = [:]
        for person in Self.everyone(in: domain) { profiles[person] = Self.profile(person, settings, domain) }
        self.profiles = profiles
        personUnits = domain.unitsByPerson()
    }

    /// The units whose alerts reach `person`, in units.csv order.
    public func units(of person: String) -> [Unit] { (personUnits[person] ?? []).map(domain.unit) }

    /// The people whose daily summary is due at `now`: today is a working day of their calendar, the configured
    /// time has passed, and today's was not taken yet (after a restart it is taken again; its Message-ID, one per
    /// person and day, keeps it from being stored twice).
    public mutating func summariesDue(at now: Instant) -> [String] {
        guard let summary = settings.dailySummary else { return [] }
        let day = LocalTime.day(of: now)
        guard now >= LocalTime.start(ofDay: day) + Int64(summary.secondsOfDay) else { return [] }
        var due: [String] = []
        for person in personUnits.keys.sorted() where summarizedDay[person] != day {
            let profile = profile(of: person)
            guard profile.isReachable else { continue }
            summarizedDay[person] = day
            if profile.calendar.schedule(ofDay: day).isWorkingDay { due.append(person) }
        }
        return due
    }

    /// A daily summary's messages: an e-mail and a chat message per chat channel, with one Message-ID per person
    /// and day.
    public func summaryMessages(_ summary: DailySummary, to person: String) -> [NotifyMessage] {
        let profile = profile(of: person)
        let text = SummaryText(summary, scope: profile.scope, configuration: domain)
        var mail = MailMessage(
            from: settings.from, to: person, subject: text.subject, plain: text.plain, html: text.html,
            sentAt: summary.sentAt, alertIDs: [])
        mail.fixedMessageID = "<summary.\(summary.day).\(FNV1a.hex(FNV1a.hash(person)))@sameday>"
        var out: [NotifyMessage] = []
        if profile.email {
            out.append(
                NotifyMessage(
                    messageID: mail.messageID, recipient: person, channel: NotifySettings.emailChannel,
                    destination: person, body: mail.rendered(), alertIDs: [], createdAt: summary.sentAt,
                    nextAttemptAt: summary.sentAt))
        }
        for chat in profile.chats {
            let message = ChatMessage(
                kind: chat.kind, chatID: chat.chatID,
                text: DigestText(subject: text.subject, plain: text.plain, html: text.html))
            out.append(
                NotifyMessage(
                    messageID: mail.messageID, recipient: person, channel: NotifySettings.webhookChannel(chat.webhook),
                    destination: chat.chatID, body: message.body(), alertIDs: [], createdAt: summary.sentAt,
                    nextAttemptAt: summary.sentAt))
        }
        return out
    }

    /// Everybody `alerting.json` names, in a stable order.
    public static func everyone(in domain: Configuration) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        let policy = domain.alerting
        let lists =
            policy.unitPeople.keys.sorted().flatMap { u in Role.allCases.compactMap { policy.unitPeople[u]?[$0] } }
            + Block.allCases.flatMap { b in Role.allCases.compactMap { policy.blockPeople[b]?[$0] } }
        for person in lists.joined() where seen.insert(person).inserted { out.append(person) }
        return out
    }

    /// The people named in `alerting.json` whom no channel reaches (a chat name without a `people` entry, say):
    /// the service says so when it starts.
    public var unreachable: [String] {
        profiles.filter { !$0.value.isReachable }.map(\.key).sorted()
    }

    public func profile(of person: String) -> Profile {
        profiles[person] ?? Self.profile(person, settings, domain)
    }

    /// Who is owed `alert` and reachable; nil when its unit is not in the configuration (the alert is refused).
    public func recipients(of alert: Alert) -> [String]? {
        guard let unit = domain.unitID(alert.unit) else { return nil }
        return domain.recipients(alert.level, unit: unit).filter { profile(of: $0).isReachable }
    }

    /// Rebuilds the queues after a start: each person's state as stored, then what she is owed, in arrival order.
    /// Returns the owed rows whose JSON could not be read back (they are cleared by her next digest).
    @discardableResult
    public mutating func restore(
        states: [(recipient: String, lastSentAt: Instant?, openEscalations: String)], owed: [OwedAlert]
    ) -> Int {
        for state in states {
            let open = Self.decodeEscalations(state.openEscalations)
            guard state.lastSentAt != nil || !open.isEmpty else { continue }
            queues[state.recipient] = DigestQueue(lastSentAt: state.lastSentAt, openEscalations: open)
        }
        var unreadable = 0
        for row in owed {
            guard let alert = try? Alert.decode(json: Array(row.json.utf8), source: "owed alert \(row.seq)") else {
                unreadable += 1
                throughSeq[row.recipient] = max(throughSeq[row.recipient] ?? 0, row.seq)
                continue
            }
            add(row, alert: alert)
        }
        return unreadable
    }

    /// Adds an alert newly owed to `owed.recipient` (as the store recorded it).
    public mutating func add(_ owed: OwedAlert, alert: Alert) {
        queues[owed.recipient, default: DigestQueue()].add(alert, at: owed.receivedAt)
        throughSeq[owed.recipient] = max(throughSeq[owed.recipient] ?? 0, owed.seq)
    }

    /// People with a queue (owed something, or an escalation open).
    public var queueCount: Int { queues.count }
    /// Alerts at risk waiting in a queue.
    public var pendingCount: Int { queues.values.reduce(0) { $0 + $1.pending.count } }

    /// When the next digest is due (nil: nothing is).
    public func nextDueAt() -> Instant? {
        var next: Instant?
        for (person, queue) in queues {
            guard let due = queue.dueAt(policy: settings.digest, calendar: profile(of: person).calendar) else {
                continue
            }
            next = min(next ?? due.at, due.at)
        }
        return next
    }

    /// Every digest due at `now`, with its messages; the queues start their next groups. The caller stores each
    /// (`NotifyStore.commitDigest`) before it sends anything.
    public mutating func takeDue(at now: Instant) -> [Planned] {
        var out: [Planned] = []
        for person in queues.keys.sorted() {
            let profile = profile(of: person)
            guard var queue = queues[person],
                let digest = queue.take(at: now, policy: settings.digest, calendar: profile.calendar)
            else { continue }
            out.append(
                Planned(
                    recipient: person, throughSeq: throughSeq[person] ?? 0, digest: digest,
                    messages: messages(digest, to: person, profile: profile, at: now), lastSentAt: queue.lastSentAt,
                    openEscalations: Self.encodeEscalations(queue.openEscalations)))
            throughSeq[person] = nil
            // Kept while idle for its group interval (`dropIdle`): the next message still waits for it.
            queues[person] = queue
        }
        return out
    }

    /// Forgets the queues that are idle and whose group interval has passed (bounded memory between digests).
    public mutating func dropIdle(at now: Instant) {
        let interval = max(
            settings.digest.standard.groupInterval, settings.digest.levels.values.map(\.groupInterval).max() ?? 0)
        queues = queues.filter { _, q in !q.isEmpty || (q.lastSentAt.map { now - $0 < interval } ?? false) }
    }

    /// The messages of one digest: for each page of at most `maxListed` dossiers (sent together), an e-mail and one
    /// chat message per chat channel, all with the e-mail's `Message-ID` (the same page taken again gives the same
    /// id).
    public func messages(_ digest: Digest, to person: String, profile: Profile, at now: Instant) -> [NotifyMessage] {
        digest.pages(maxListed: settings.digest.maxListed).flatMap { page in
            messages(page: page, to: person, profile: profile, at: now)
        }
    }

    private func messages(page digest: Digest, to person: String, profile: Profile, at now: Instant)
        -> [NotifyMessage]
    {
        let text = DigestText(digest, scope: profile.scope, configuration: domain)
        let mail = MailMessage(
            from: settings.from, to: person, subject: text.subject, plain: text.plain, html: text.html, sentAt: now,
            alertIDs: digest.alertIDs)
        let id = mail.messageID
        var out: [NotifyMessage] = []
        if profile.email {
            out.append(
                NotifyMessage(
                    messageID: id, recipient: person, channel: NotifySettings.emailChannel, destination: person,
                    body: mail.rendered(), alertIDs: digest.alertIDs, createdAt: now, nextAttemptAt: now))
        }
        for chat in profile.chats {
            let body = ChatMessage(kind: chat.kind, chatID: chat.chatID, text: text, digest: digest).body()
            out.append(
                NotifyMessage(
                    messageID: id, recipient: person, channel: NotifySettings.webhookChannel(chat.webhook),
                    destination: chat.chatID, body: body, alertIDs: digest.alertIDs, createdAt: now,
                    nextAttemptAt: now))
        }
        return out
    }

    // MARK: Profiles

    /// Her home unit is the highest unit that names her (a district's head, not its wards'); a person named for a
    /// block has the block's first unit's calendar and the block's name.
    static func profile(_ person: String, _ settings: NotifySettings, _ domain: Configuration) -> Profile {
        let configured = settings.people[person]
        var home: Unit?
        var homeDepth = Int.max
        for (code, roles) in domain.alerting.unitPeople where roles.values.contains(where: { $0.contains(person) }) {
            guard let id = domain.unitID(code) else { continue }
            let unit = domain.unit(id)
            let depth = depthOf(unit, domain)
            if depth < homeDepth || (depth == homeDepth && unit.code < (home?.code ?? "~")) {
                home = unit
                homeDepth = depth
            }
        }
        var scope = home?.name
        var calendar = home.map { domain.calendars[$0.calendar] }
        if home == nil,
            let block = Block.allCases.first(where: { b in
                domain.alerting.blockPeople[b]?.values.contains { $0.contains(person) } ?? false
            })
        {
            scope = ReportLabels.block(block)
            if let first = domain.units.first(where: { $0.block == block }) {
                calendar = domain.calendars[first.calendar]
            }
        }
        if let id = configured?.calendar, let named = domain.calendar(id: id) { calendar = named }
        let chats = (configured?.chats ?? []).compactMap { chat -> (String, ChatKind, String)? in
            guard let hook = settings.webhooks[chat.webhook] else { return nil }
            return (chat.webhook, hook.kind, chat.chatID)
        }
        let emailable = settings.mail != nil && SendmailChannel.envelopeAddress(person) != nil
        return Profile(
            scope: configured?.scope ?? scope ?? "SameDay", calendar: calendar ?? domain.calendars[0],
            email: emailable && (configured?.email ?? true), chats: chats)
    }

    private static func depthOf(_ unit: Unit, _ domain: Configuration) -> Int {
        var depth = 0
        var next = unit.parent
        while let code = next, depth < 16, let id = domain.unitID(code) {
            depth += 1
            next = domain.unit(id).parent
        }
        return depth
    }

    // MARK: Stored escalations

    static func encodeEscalations(_ open: [String: DigestQueue.OpenEscalation]) -> String {
        open.keys.sorted().map { "\(open[$0]!.lastSentAt) \(open[$0]!.alert.jsonLine())" }.joined(separator: "\n")
    }

    static func decodeEscalations(_ text: String) -> [String: DigestQueue.OpenEscalation] {
        var out: [String: DigestQueue.OpenEscalation] = [:]
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " "), let at = Int64(line[..<space]),
                let alert = try? Alert.decode(json: Array(line[line.index(after: space)...].utf8))
            else { continue }
            out[alert.dossier] = DigestQueue.OpenEscalation(alert: alert, lastSentAt: at)
        }
        return out
    }
}

extension WebhookChannel.Settings {
    /// The chat API this hook speaks.
    public var kind: ChatKind {
        switch endpoint {
        case .generic: .generic
        case .telegram: .telegram
        case .zalo: .zalo
        }
    }
}
