import Foundation
import SameDayCore

/// An e-mail as an MTA takes it (RFC 5322 with MIME): UTF-8 subject as RFC 2047 encoded words, a
/// `multipart/alternative` body with a plain-text part and an HTML part, each base64 (Vietnamese text is mostly
/// non-ASCII, where base64 is shorter than quoted-printable), CRLF line ends, no line over 78 characters.
///
/// The `Message-ID` is derived from the recipient and the alerts the message carries, so a message sent again after a
/// crash has the same id (mail systems and our test sink see it as the same message), and `X-SameDay-Alerts` lists
/// the alert ids, for audits and for the tests that count deliveries.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var subject: String
    public var plain: String
    public var html: String
    public var sentAt: Instant
    public var alertIDs: [String]
    /// A Message-ID of the caller's (a daily summary's: one per person and day); nil: derived from the alerts.
    public var fixedMessageID: String?

    public init(
        from: String, to: String, subject: String, plain: String, html: String, sentAt: Instant, alertIDs: [String]
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.plain = plain
        self.html = html
        self.sentAt = sentAt
        self.alertIDs = alertIDs
    }

    /// A stable id for this message: the same recipient and alerts give the same id.
    public var messageID: String {
        if let fixedMessageID { return fixedMessageID }
        let key = ([to] + alertIDs).joined(separator: "\n")
        var h = FNV1a.hash(key)
        let first = FNV1a.hex(h)
        h = FNV1a.hash("\u{1F}", into: h)
        return "<\(first)\(FNV1a.hex(h)).\(sentAt)@sameday>"
    }

    /// The whole message, CRLF line ends, ready for SMTP `DATA` (without dot-stuffing, which SMTP adds);
    /// `SendmailChannel` hands it to sendmail with LF line ends and the recipient as an argument, never `-t`.
    public func rendered() -> String {
        let boundary = "sameday-" + String(messageID.dropFirst().prefix(16))
        var lines: [String] = []
        lines.append("From: \(Self.headerSafe(from))")
        lines.append("To: \(Self.headerSafe(to))")
        lines += Self.encodedHeader("Subject", subject)
        lines.append("Date: \(Self.rfc5322Date(sentAt))")
        lines.append("Message-ID: \(messageID)")
        lines += Self.foldedList("X-SameDay-Alerts", alertIDs)
        lines.append("Auto-Submitted: auto-generated")
        lines.append("MIME-Version: 1.0")
        lines.append("Content-Type: multipart/alternative; boundary=\"\(boundary)\"")
        lines.append("")
        for (type, body) in [("text/plain", plain), ("text/html", html)] {
            lines.append("--\(boundary)")
            lines.append("Content-Type: \(type); charset=UTF-8")
            lines.append("Content-Transfer-Encoding: base64")
            lines.append("")
            lines += Self.base64Lines(body)
        }
        lines.append("--\(boundary)--")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// An address or name with no line breaks (a header injection would start a new header).
    static func headerSafe(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }.map(Character.init))
    }

    /// `Name: =?UTF-8?B?…?=` folded so that no line passes 76 characters: each encoded word holds whole characters.
    static func encodedHeader(_ name: String, _ value: String) -> [String] {
        if value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 }) && value.count + name.count < 76 {
            return ["\(name): \(value)"]
        }
        // 39 bytes of text encode to 52 characters: with "=?UTF-8?B?", "?=" and "Subject: " a line stays within 78.
        var chunks: [[UInt8]] = []
        var chunk: [UInt8] = []
        for c in value {
            let bytes = Array(String(c).utf8).filter { $0 != 0x0D && $0 != 0x0A }
            if chunk.count + bytes.count > 39 {
                chunks.append(chunk)
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { chunks.append(chunk) }
        guard !chunks.isEmpty else { return ["\(name): "] }
        let encoded = chunks.map { "=?UTF-8?B?\(Data($0).base64EncodedString())?=" }
        var lines = ["\(name): \(encoded[0])"]
        for word in encoded.dropFirst() { lines.append(" \(word)") }
        return lines
    }

    /// A header holding a list, folded at commas.
    static func foldedList(_ name: String, _ items: [String]) -> [String] {
        var lines: [String] = []
        var line = "\(name):"
        for (i, item) in items.enumerated() {
            let piece = " " + headerSafe(item) + (i < items.count - 1 ? "," : "")
            if line.count + piece.count > 76 && line != "\(name):" {
                lines.append(line)
                line = ""
            }
            line += piece
        }
        lines.append(line)
        return lines
    }

    static func base64Lines(_ text: String) -> [String] {
        let encoded = Data(text.utf8).base64EncodedString()
        var lines: [String] = []
        var start = encoded.startIndex
        while start < encoded.endIndex {
            let end = encoded.index(start, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[start..<end]))
            start = end
        }
        return lines
    }

    /// "Wed, 18 May 2022 14:00:30 +0700": Ho Chi Minh City time.
    static func rfc5322Date(_ t: Instant) -> String {
        let day = LocalTime.day(of: t)
        let date = LocalDate(dayNumber: day).components
        let seconds = t - LocalTime.start(ofDay: day)
        let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = weekdays[LocalTime.weekday(ofDay: day)]
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(date.day) \(months[date.month - 1]) \(date.year) "
            + "\(two(seconds / 3600)):\(two(seconds % 3600 / 60)):\(two(seconds % 60)) +0700"
    }
}
