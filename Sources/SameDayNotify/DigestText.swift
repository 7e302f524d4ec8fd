import SameDayCore
import SameDayReport

/// A digest as a supervisor reads it, in Vietnamese: a subject line, a plain text and an HTML body that name every
/// dossier to chase (code, procedure, unit, deadline, working time left, level), worst first, so the message is enough
/// without opening anything else.
public struct DigestText: Sendable, Equatable {
    public var subject: String
    public var plain: String
    public var html: String

    /// A text made elsewhere (a daily summary's), for the channels that take a `DigestText`.
    public init(subject: String, plain: String, html: String) {
        self.subject = subject
        self.plain = plain
        self.html = html
    }

    /// - Parameters:
    ///   - scope: whom the message is for, as a heading ("Quận 1"; the recipient's unit, or her units' parent).
    public init(_ digest: Digest, scope: String, configuration: Configuration) {
        let rows = digest.atRisk.map { Row($0, configuration: configuration) }
        subject = Self.subject(digest, scope: scope)

        var p: [String] = []
        p.append("SameDay — \(scope)")
        p.append("")
        if rows.isEmpty {
            p.append("Không có hồ sơ nào có nguy cơ trễ hạn trong thông báo này.")
        } else {
            p.append("Hồ sơ cần xử lý ngay (nghiêm trọng nhất trước)\(Self.pagePart(digest)):")
            p.append("")
            for (i, row) in rows.enumerated() {
                p.append(
                    "\(digest.firstNumber + i). [\(row.level)] \(row.dossier)\(row.repeated(digest) ? " (nhắc lại)" : "")"
                )
                p.append("   \(row.procedure)")
                p.append("   Đơn vị: \(row.unit) · Hạn: \(row.due) · \(row.left)")
                if let forecast = row.forecast { p.append("   \(forecast)") }
            }
        }
        if let resolved = Self.resolvedLine(digest) {
            p.append("")
            p.append(resolved)
        }
        if let held = digest.heldSince {
            p.append("")
            p.append("Thông báo được giữ lại ngoài giờ làm việc từ \(VietnameseFormat.dateTime(held)).")
        }
        p.append("")
        p.append("-- ")
        p.append("SameDay, gửi lúc \(VietnameseFormat.dateTime(digest.sentAt)). Thư tự động, vui lòng không trả lời.")
        plain = p.joined(separator: "\n") + "\n"

        var h = ""
        h += "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
        h +=
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>\(Self.escape(subject))</title></head>"
        h +=
            "<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:15px;color:#1a1a1a;margin:0;padding:12px\">"
        h += "<h1 style=\"font-size:18px;margin:0 0 12px\">\(Self.escape(scope))</h1>"
        if rows.isEmpty {
            h += "<p>Không có hồ sơ nào có nguy cơ trễ hạn trong thông báo này.</p>"
        } else {
            h +=
                "<p style=\"margin:0 0 8px\">Hồ sơ cần xử lý ngay (nghiêm trọng nhất trước)\(Self.pagePart(digest)):</p>"
            for row in rows {
                h +=
                    "<div style=\"border-left:4px solid \(row.colour);padding:6px 10px;margin:0 0 8px;background:#f7f7f7\">"
                h +=
                    "<div style=\"font-weight:bold\">\(Self.escape(row.level))\(row.repeated(digest) ? " (nhắc lại)" : "")"
                h += " · \(Self.escape(row.dossier))</div>"
                h += "<div>\(Self.escape(row.procedure))</div>"
                h += "<div style=\"color:#444\">\(Self.escape(row.unit)) · Hạn: \(Self.escape(row.due)) · "
                h += "\(Self.escape(row.left))</div>"
                if let forecast = row.forecast { h += "<div style=\"color:#444\">\(Self.escape(forecast))</div>" }
                h += "</div>"
            }
        }
        if let resolved = Self.resolvedLine(digest) { h += "<p>\(Self.escape(resolved))</p>" }
        if let held = digest.heldSince {
            h += "<p style=\"color:#444\">Thông báo được giữ lại ngoài giờ làm việc từ "
            h += "\(VietnameseFormat.dateTime(held)).</p>"
        }
        h += "<p style=\"color:#777;font-size:13px\">SameDay, gửi lúc \(VietnameseFormat.dateTime(digest.sentAt)). "
        h += "Thư tự động, vui lòng không trả lời.</p></body></html>\n"
        html = h
    }

    /// "Quận 1: 3 hồ sơ có nguy cơ trễ hạn (1 quá hạn)", or the resolutions when nothing is at risk.
    static func subject(_ digest: Digest, scope: String) -> String {
        let total = max(digest.totalAtRisk, digest.atRisk.count)
        if total == 0 {
            return "[SameDay] \(scope): \(VietnameseFormat.integer(digest.resolvedCount)) hồ sơ đã giải quyết"
        }
        let late = max(
            digest.totalLate, digest.atRisk.filter { $0.level == .overdue || $0.level == .escalated }.count)
        let lateText = late > 0 ? " (\(VietnameseFormat.integer(late)) quá hạn)" : ""
        let pageText = digest.pages > 1 ? ", phần \(digest.page)/\(digest.pages)" : ""
        return "[SameDay] \(scope): \(VietnameseFormat.integer(total)) hồ sơ có nguy cơ trễ hạn\(lateText)\(pageText)"
    }

    /// ", phần 2/4 (hồ sơ 31–60 của 120)" for a long list sent as several messages at once.
    static func pagePart(_ digest: Digest) -> String {
        guard digest.pages > 1 else { return "" }
        let last = digest.firstNumber + digest.atRisk.count - 1
        return ", phần \(digest.page)/\(digest.pages) (hồ sơ \(digest.firstNumber)–\(last) của "
            + "\(VietnameseFormat.integer(digest.totalAtRisk)))"
    }

    static func resolvedLine(_ digest: Digest) -> String? {
        guard digest.resolvedCount > 0 else { return nil }
        var line = "Đã giải quyết kể từ thông báo trước: \(VietnameseFormat.integer(digest.resolvedCount)) hồ sơ"
        if digest.lateResolvedCount > 0 {
            line += " (\(VietnameseFormat.integer(digest.lateResolvedCount)) trễ hạn)"
        }
        let named = digest.resolvedLatest.map(\.dossier).filter { !$0.isEmpty }
        if !named.isEmpty {
            line += ": " + named.joined(separator: ", ")
            if digest.resolvedCount > named.count { line += ", …" }
        }
        return line + "."
    }

    /// Working minutes as a person says them: "còn 1 giờ 20 phút làm việc", "quá hạn 5 phút làm việc".
    static func timeLeft(_ minutes: Int?) -> String {
        guard let minutes else { return "không có hạn" }
        if minutes == 0 { return "đến hạn" }
        let m = Int(minutes.magnitude)
        let amount = m >= 60 ? "\(m / 60) giờ" + (m % 60 > 0 ? " \(m % 60) phút" : "") : "\(m) phút"
        return minutes > 0 ? "còn \(amount) làm việc" : "quá hạn \(amount) làm việc"
    }

    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    /// One dossier's line, in words.
    struct Row {
        var alertID: String
        var level: String
        var colour: String
        var dossier: String
        var procedure: String
        var unit: String
        var due: String
        var left: String
        /// `at_risk`: why it is flagged, the predicted completion and the queue ahead (docs/rules.md §5.6).
        var forecast: String?

        init(_ alert: Alert, configuration: Configuration) {
            alertID = alert.alertId
            level = ReportLabels.level(alert.level.name)
            colour =
                switch alert.level {
                case .escalated, .overdue: "#b00020"
                case .critical: "#d35400"
                case .atRisk: "#5b4a8a"
                default: "#b8860b"
                }
            let unitID = configuration.unitID(alert.unit)
            unit = unitID.map { configuration.unit($0).name } ?? alert.unit
            if alert.level == .sourceSilent {
                dossier = "Hệ thống một cửa của đơn vị không gửi dữ liệu"
                procedure = "Kiểm tra kết nối của đơn vị"
            } else {
                dossier = "Hồ sơ \(alert.dossier)"
                let name = unitID.flatMap {
                    configuration.catalogEntry(configuration.procedureRef(alert.procedure, unit: $0))?.name
                }
                procedure = name.map { "\($0) (\(alert.procedure))" } ?? alert.procedure
            }
            due = alert.due.map(VietnameseFormat.dateTime) ?? "—"
            // As of the alert: a message held overnight, or a replayed month, goes out later than it fired.
            left = DigestText.timeLeft(alert.minutesLeft) + " (lúc \(VietnameseFormat.dateTime(alert.firedAt)))"
            if let predicted = alert.predictedAt {
                forecast =
                    "Dự kiến xong: \(VietnameseFormat.dateTime(predicted)), sau hạn (còn \(alert.queueAhead ?? 0) hồ sơ "
                    + "tiếp nhận trước đang chờ xử lý)"
            }
        }

        func repeated(_ digest: Digest) -> Bool { digest.repeated.contains(alertID) }
    }
}
