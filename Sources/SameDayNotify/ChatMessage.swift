import SameDayCore

/// The chat APIs a digest can be posted to, each with the body its API takes (docs/notify.md):
///
/// - `generic`: SameDay's own JSON (`recipient`, `subject`, `text`, `alerts`, `resolved`), for a team's own bot or
///   bridge;
/// - `telegram`: the Bot API's `sendMessage` (`chat_id`, `text`), plain text, cut to Telegram's 4,096 characters;
/// - `zalo`: a Zalo Official Account-style message API (`recipient.user_id`, `message.text`), cut to 2,000
///   characters.
///
/// The text is the digest's plain text; a text that had to be cut says so in its last line.
public enum ChatKind: String, Sendable, CaseIterable {
    case generic
    case telegram
    case zalo

    /// The longest text the API takes, in characters.
    public var maxText: Int {
        switch self {
        case .generic: 16_000
        case .telegram: 4096
        case .zalo: 2000
        }
    }
}

public struct ChatMessage: Sendable, Equatable {
    public var kind: ChatKind
    /// Where the API sends it: a Telegram chat id, a Zalo user id, or SameDay's recipient name for `generic`.
    public var chatID: String
    public var digestText: DigestText
    public var alerts: [Alert]
    public var resolvedCount: Int
    public var alertIDs: [String]

    public init(kind: ChatKind, chatID: String, text: DigestText, digest: Digest) {
        self.kind = kind
        self.chatID = chatID
        self.digestText = text
        self.alerts = digest.atRisk
        self.resolvedCount = digest.resolvedCount
        self.alertIDs = digest.alertIDs
    }

    /// A message of text alone (a daily summary), carrying no alert.
    public init(kind: ChatKind, chatID: String, text: DigestText) {
        self.kind = kind
        self.chatID = chatID
        self.digestText = text
        self.alerts = []
        self.resolvedCount = 0
        self.alertIDs = []
    }

    /// The message text, cut to the API's length with a last line that says so.
    public var text: String {
        let full = digestText.plain
        guard full.count > kind.maxText else { return full }
        let note = "\n… (cắt bớt; xem thư điện tử hoặc trang theo dõi)"
        return String(full.prefix(kind.maxText - note.count)) + note
    }

    /// The request body, JSON.
    public func body() -> String {
        var w = JSONWriter()
        w.beginObject()
        switch kind {
        case .telegram:
            w.field("chat_id", chatID)
            w.field("text", text)
            w.key("disable_web_page_preview")
            w.bool(true)
        case .zalo:
            w.key("recipient")
            w.beginObject()
            w.field("user_id", chatID)
            w.endObject()
            w.key("message")
            w.beginObject()
            w.field("text", text)
            w.endObject()
        case .generic:
            w.field("recipient", chatID)
            w.field("subject", digestText.subject)
            w.field("text", text)
            w.key("alerts")
            w.beginArray()
            for alert in alerts {
                w.beginObject()
                w.field("alertId", alert.alertId)
                w.field("level", alert.level.name)
                w.field("dossier", alert.dossier)
                w.field("unit", alert.unit)
                w.field("procedure", alert.procedure)
                w.key("due")
                if let due = alert.due { w.string(RFC3339.format(due)) } else { w.null() }
                w.key("minutesLeft")
                if let m = alert.minutesLeft { w.int(m) } else { w.null() }
                w.endObject()
            }
            w.endArray()
            w.field("resolved", resolvedCount)
            w.key("alertIds")
            w.beginArray()
            for id in alertIDs { w.string(id) }
            w.endArray()
        }
        w.endObject()
        return w.text
    }
}
