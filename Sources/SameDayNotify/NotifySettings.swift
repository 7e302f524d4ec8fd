import Foundation
import SameDayCore

/// `notify.json`: how `sameday notify` reaches people (docs/notify.md, "Configuration"). Who receives which alerts
/// is `alerting.json`'s (`levels`, `recipients`); this file says by which channels each of them is reached, how
/// messages are grouped, and where the notifier keeps its state. The broker, the name prefix and the domain
/// configuration come from the workers' file, as for `sameday sources`.
///
/// Every recipient that `alerting.json` names is reached by e-mail when her address is an e-mail address, unless
/// `people` says otherwise; `people` adds chat channels.
public struct NotifySettings: Sendable, Equatable {
    /// The sender of every e-mail: `SameDay <sameday@…>` or a bare address.
    public var from: String
    /// Its state (`notify.sqlite`, `notify.lock`).
    public var stateDirectory = "/var/lib/sameday/notify"
    /// The shared store (`postgres://…`): a notifier and its standby share it, the one holding the lease serves;
    /// nil: SQLite in `stateDirectory`, one notifier.
    public var store: String?
    public var storePasswordFile: String?
    /// How long the lease lasts without renewal (a frozen notifier's standby takes over after this).
    public var leaseSeconds = 10
    /// The broker user's credentials, when not the workers' (`credentialsFile` of worker.json).
    public var credentialsFile: String?
    /// `/metrics`, `/healthz` and `/readyz`; empty for none.
    public var metricsListen = "127.0.0.1:9462"
    /// E-mail through the host's MTA; nil: no e-mail at all.
    public var mail: SendmailChannel.Settings? = SendmailChannel.Settings()
    /// Chat webhooks by name.
    public var webhooks: [String: WebhookChannel.Settings] = [:]
    /// Per person (her address in alerting.json): e-mail on or off, chat channels, calendar, heading.
    public var people: [String: Person] = [:]
    public var digest = DigestPolicy()
    public var retry = RetryPolicy.standard
    /// Days the notification log and delivered messages are kept (an alert redelivered later is recognised).
    public var retentionDays = 30
    /// Alerts in hand before they are committed and acked, and how long the first waits.
    public var batchSize = 500
    public var batchDelayMilliseconds = 200
    /// A summary per person each working day at a time of day; nil: none.
    public var dailySummary: DailySummary?

    /// `dailySummary`: at `at` (local time) on each working day of a person's calendar, her units' same-day
    /// figures so far (the workers' daily rollup files in `rollups`, one folder per shard) and what is overdue.
    public struct DailySummary: Sendable, Equatable {
        /// Seconds after local midnight.
        public var secondsOfDay: Int
        public var rollups: [String]

        public init(secondsOfDay: Int, rollups: [String]) {
            self.secondsOfDay = secondsOfDay
            self.rollups = rollups
        }
    }

    public struct Person: Sendable, Equatable {
        /// Whether she gets e-mail (nil: when her address is an e-mail address).
        public var email: Bool?
        public var chats: [Chat] = []
        /// Her working calendar's id (nil: her units' calendar).
        public var calendar: String?
        /// The heading of her messages (nil: her unit's name).
        public var scope: String?

        public init(email: Bool? = nil, chats: [Chat] = [], calendar: String? = nil, scope: String? = nil) {
            self.email = email
            self.chats = chats
            self.calendar = calendar
            self.scope = scope
        }
    }

    public struct Chat: Sendable, Equatable {
        /// A key of `webhooks`.
        public var webhook: String
        /// The Telegram chat id, the Zalo user id; for a generic hook, what it is told as `recipient`.
        public var chatID: String

        public init(webhook: String, chatID: String) {
            self.webhook = webhook
            self.chatID = chatID
        }
    }

    public init(from: String) { self.from = from }

    public static let file = "notify.json"

    public var databasePath: String { stateDirectory + "/notify.sqlite" }

    /// The channel name a message travels by: `email`, or `webhook:<name>`.
    public static let emailChannel = "email"
    public static func webhookChannel(_ name: String) -> String { "webhook:" + name }

    /// Every channel name of these settings (one delivery thread each).
    public var channelNames: [String] {
        (mail == nil ? [] : [Self.emailChannel]) + webhooks.keys.sorted().map(Self.webhookChannel)
    }

    public static func load(path: String) throws -> NotifySettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, message: "cannot read the file")
        }
        return try parse(Array(data), file: path)
    }

    /// Reads `notify.json`; every error names the file, line, column and key.
    public static func parse(_ bytes: [UInt8], file: String = NotifySettings.file) throws(ConfigurationError)
        -> NotifySettings
    {
        let reader = JSONReader(file: file)
        let root = try reader.root(
            bytes,
            allowed: [
                "from", "stateDirectory", "credentialsFile", "metricsListen", "mail", "webhooks", "people",
                "windows", "levels", "anyHour", "maxListed", "retry", "retentionDays", "batchSize",
                "batchDelayMilliseconds", "dailySummary", "store", "storePasswordFile", "leaseSeconds",
            ])
        guard let from = try root.string("from") else {
            throw root.error("from", "missing: the sender of the e-mails, e.g. \"SameDay <sameday@example.gov.vn>\"")
        }
        guard SendmailChannel.envelopeAddress(from) != nil else {
            throw root.error("from", "not an e-mail address SameDay can send from: \(from)")
        }
        var s = NotifySettings(from: from)
        if let v = try root.string("stateDirectory") { s.stateDirectory = try absolute(v, root, "stateDirectory") }
        if let v = try root.string("store") {
            guard v.hasPrefix("postgres://") || v.hasPrefix("postgresql://") else {
                throw root.error("store", "expected a postgres:// URL (the shared store), found \"\(v)\"")
            }
            s.store = v
        }
        if let v = try root.string("storePasswordFile") {
            s.storePasswordFile = try absolute(v, root, "storePasswordFile")
        }
        if let v = try root.int("leaseSeconds", in: 2...300) { s.leaseSeconds = v }
        if let v = try root.string("credentialsFile") { s.credentialsFile = try absolute(v, root, "credentialsFile") }
        if let v = try root.string("metricsListen") { s.metricsListen = v }
        if let mail = root["mail"] {
            if case .bool(false) = mail.value {
                s.mail = nil
            } else {
                let m = try JSONObject(reader: reader, node: mail, path: "mail")
                try m.only(["program", "arguments", "timeoutSeconds"])
                var settings = SendmailChannel.Settings()
                if let p = try m.string("program") { settings.program = p }
                if let a = try m.strings("arguments") { settings.arguments = a }
                if let t = try m.int("timeoutSeconds", in: 1...3600) { settings.timeout = .seconds(t) }
                do {
                    _ = try SendmailChannel(settings)
                } catch {
                    throw m.error(error.description)
                }
                s.mail = settings
            }
        }
        if let hooks = try root.object("webhooks") {
            for (name, node) in hooks.members {
                let h = try JSONObject(reader: reader, node: node, path: hooks.path(name))
                guard !name.isEmpty, name.count <= 64, name.unicodeScalars.allSatisfy(Self.nameCharacter) else {
                    throw h.error("a webhook's name is letters, digits, '-' and '_', at most 64")
                }
                s.webhooks[name] = try webhook(h)
            }
        }
        if let people = try root.object("people") {
            for (address, node) in people.members {
                let p = try JSONObject(reader: reader, node: node, path: people.path(address))
                try p.only(["email", "chat", "calendar", "scope"])
                var person = Person(email: try p.bool("email"), calendar: try p.string("calendar"))
                person.scope = try p.string("scope")
                if person.email == true, SendmailChannel.envelopeAddress(address) == nil {
                    throw p.error("email", "\(address) is not an e-mail address")
                }
                for (i, c) in (try p.array("chat") ?? []).enumerated() {
                    let chat = try JSONObject(reader: reader, node: c, path: p.path("chat") + "[\(i)]")
                    try chat.only(["webhook", "chatId"])
                    guard let hook = try chat.string("webhook") else { throw chat.error("webhook", "missing") }
                    guard s.webhooks[hook] != nil else {
                        throw chat.error("webhook", "no webhook \"\(hook)\" in \"webhooks\"")
                    }
                    guard let id = try chat.string("chatId"), !id.isEmpty, id.count <= 200 else {
                        throw chat.error("chatId", "missing: the chat or user id, at most 200 characters")
                    }
                    person.chats.append(Chat(webhook: hook, chatID: id))
                }
                s.people[address] = person
            }
        }
        if let w = try root.object("windows") { s.digest.standard = try windows(w, base: .standard) }
        if let levels = try root.object("levels") {
            for (name, node) in levels.members {
                let l = try JSONObject(reader: reader, node: node, path: levels.path(name))
                guard let level = AlertLevel(name: name) else { throw l.error("unknown alert level \"\(name)\"") }
                s.digest.levels[level] = try windows(l, base: s.digest.standard)
            }
        }
        if let names = try root.strings("anyHour") {
            var levels = Set<AlertLevel>()
            for name in names {
                guard let level = AlertLevel(name: name) else {
                    throw root.error("anyHour", "unknown alert level \"\(name)\"")
                }
                levels.insert(level)
            }
            s.digest.anyHour = levels
        }
        if let v = try root.int("maxListed", in: 1...500) { s.digest.maxListed = v }
        if let r = try root.object("retry") {
            try r.only(["maxAttempts", "baseDelaySeconds", "maxDelaySeconds", "maxRetryAfterSeconds"])
            let attempts = try r.int("maxAttempts", in: 1...100) ?? s.retry.maxAttempts
            let base = Int64(try r.int("baseDelaySeconds", in: 1...86_400) ?? Int(s.retry.baseDelay))
            let most = Int64(try r.int("maxDelaySeconds", in: 1...86_400) ?? Int(max(s.retry.maxDelay, base)))
            guard most >= base else { throw r.error("maxDelaySeconds", "must be at least baseDelaySeconds (\(base))") }
            let after = Int64(try r.int("maxRetryAfterSeconds", in: 1...86_400) ?? Int(s.retry.maxRetryAfter))
            s.retry = RetryPolicy(maxAttempts: attempts, baseDelay: base, maxDelay: most, maxRetryAfter: after)
        }
        if let v = try root.int("retentionDays", in: 1...3660) { s.retentionDays = v }
        if let v = try root.int("batchSize", in: 1...10_000) { s.batchSize = v }
        if let v = try root.int("batchDelayMilliseconds", in: 1...10_000) { s.batchDelayMilliseconds = v }
        if let d = try root.object("dailySummary") {
            try d.only(["at", "rollups"])
            guard let at = try d.string("at") else { throw d.error("at", "missing: the local time, HH:MM") }
            let parts = at.split(separator: ":")
            guard at.count == 5, parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h),
                (0..<60).contains(m)
            else { throw d.error("at", "\"\(at)\" is not HH:MM") }
            let rollups = try d.strings("rollups") ?? []
            for path in rollups where !(path.hasPrefix("/") || path.hasPrefix(".")) {
                throw d.error("rollups", "expected paths starting with / or ., found \"\(path)\"")
            }
            s.dailySummary = DailySummary(secondsOfDay: (h * 60 + m) * 60, rollups: rollups)
        }
        return s
    }

    private static func nameCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (CharacterSet.alphanumerics.contains(c) || c == "-" || c == "_")
    }

    private static func absolute(_ path: String, _ o: JSONObject, _ key: String) throws(ConfigurationError) -> String {
        guard path.hasPrefix("/") || path.hasPrefix(".") else {
            throw o.error(key, "expected a path starting with / or ., found \"\(path)\"")
        }
        return path
    }

    private static func windows(_ o: JSONObject, base: DigestWindows) throws(ConfigurationError) -> DigestWindows {
        try o.only(["groupWaitSeconds", "groupIntervalSeconds", "repeatIntervalSeconds"])
        var w = base
        if let v = try o.int("groupWaitSeconds", in: 0...86_400) { w.groupWait = Int64(v) }
        if let v = try o.int("groupIntervalSeconds", in: 0...86_400) { w.groupInterval = Int64(v) }
        if let v = try o.int("repeatIntervalSeconds", in: 60...604_800) { w.repeatInterval = Int64(v) }
        return w
    }

    private static func webhook(_ h: JSONObject) throws(ConfigurationError) -> WebhookChannel.Settings {
        try h.only(["kind", "url", "tokenFile", "base", "timeoutSeconds"])
        let kindName = try h.string("kind") ?? "generic"
        guard let kind = ChatKind(rawValue: kindName) else {
            throw h.error("kind", "unknown webhook kind \"\(kindName)\" (generic, telegram, zalo)")
        }
        let timeout = Duration.seconds(try h.int("timeoutSeconds", in: 1...300) ?? 15)
        let token = try h.string("tokenFile")
        let url = try h.string("url")
        switch kind {
        case .generic:
            guard let url else { throw h.error("url", "missing: where the hook posts") }
            return .init(.generic(url: url, bearerTokenFile: token), timeout: timeout)
        case .telegram:
            guard let token else { throw h.error("tokenFile", "missing: the file that holds the bot token") }
            return .init(
                .telegram(tokenFile: token, base: try h.string("base") ?? "https://api.telegram.org"),
                timeout: timeout)
        case .zalo:
            guard let url else { throw h.error("url", "missing: the message API's URL") }
            guard let token else { throw h.error("tokenFile", "missing: the file that holds the access token") }
            return .init(.zalo(url: url, accessTokenFile: token), timeout: timeout)
        }
    }
}
