import Foundation
import SameDayFormats
import Testing

@testable import SameDayCore
@testable import SameDayNotify

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite("Notification messages: what a supervisor reads, in Vietnamese")
struct NotifyRenderingTests {
    let configuration = try! ConfigurationFolder.load(
        repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022").path)
    static let certifiedCopy = "2.000815.000.00.00.H29"

    func at(_ text: String) -> Instant { RFC3339.parse(text + "+07:00")! }

    func alert(_ level: AlertLevel, _ dossier: String, unit: String = "26734", minutesLeft: Int?) -> Alert {
        Alert(
            alertId: Alert.id(subject: dossier, episode: 1, level: level), level: level, dossier: dossier, unit: unit,
            block: .commune, procedure: Self.certifiedCopy, episode: 1, due: at("2022-05-18T17:00:00"),
            firedAt: at("2022-05-18T15:30:00"), thresholdAt: at("2022-05-18T15:30:00"), minutesLeft: minutesLeft,
            recipients: [], lateFired: false)
    }

    var digest: Digest {
        Digest(
            atRisk: [
                alert(.overdue, "26734-220518-0007", minutesLeft: -5),
                alert(.critical, "26734-220518-0003", minutesLeft: 25),
                alert(.warning, "26734-220518-0011", minutesLeft: 80),
            ], repeated: [], resolvedCount: 3, lateResolvedCount: 1,
            resolvedLatest: [alert(.cleared, "26734-220518-0001", minutesLeft: 40)], heldSince: nil,
            sentAt: at("2022-05-18T15:30:30"), totalAtRisk: 5, totalLate: 1, page: 1, pages: 2)
    }

    @Test("the text names each dossier's code, procedure, unit, deadline, time left and level, worst first")
    func text() {
        let text = DigestText(digest, scope: "Quận 1", configuration: configuration)
        #expect(text.subject == "[SameDay] Quận 1: 5 hồ sơ có nguy cơ trễ hạn (1 quá hạn), phần 1/2")
        let lines = text.plain.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("1. [Quá hạn] Hồ sơ 26734-220518-0007"))
        #expect(
            lines.contains(
                "   Chứng thực bản sao từ bản chính giấy tờ, văn bản do cơ quan tổ chức có thẩm quyền của Việt Nam cấp hoặc chứng nhận (2.000815.000.00.00.H29)"
            ))
        #expect(
            lines.contains(
                "   Đơn vị: Phường Tân Định · Hạn: 18/05/2022 17:00 · quá hạn 5 phút làm việc (lúc 18/05/2022 15:30)"))
        #expect(lines.contains("2. [Sắp quá hạn (khẩn)] Hồ sơ 26734-220518-0003"))
        #expect(
            lines.contains(
                "   Đơn vị: Phường Tân Định · Hạn: 18/05/2022 17:00 · còn 1 giờ 20 phút làm việc (lúc 18/05/2022 15:30)"
            ))
        #expect(lines.contains("Hồ sơ cần xử lý ngay (nghiêm trọng nhất trước), phần 1/2 (hồ sơ 1–3 của 5):"))
        #expect(lines.contains("Đã giải quyết kể từ thông báo trước: 3 hồ sơ (1 trễ hạn): 26734-220518-0001, …."))
        #expect(text.html.contains("Hồ sơ 26734-220518-0003"))
        #expect(text.html.contains("<html lang=\"vi\">"))
    }

    @Test("an at_risk dossier says when the unit's queue says it will be done, and how many are ahead of it")
    func forecastLine() {
        var flagged = alert(.atRisk, "26734-220518-0021", minutesLeft: 180)
        flagged.predictedAt = at("2022-05-19T08:10:00")
        flagged.queueAhead = 12
        var d = digest
        d.atRisk.append(flagged)
        let text = DigestText(d, scope: "Quận 1", configuration: configuration)
        let lines = text.plain.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("4. [Có nguy cơ trễ hạn] Hồ sơ 26734-220518-0021"))
        #expect(
            lines.contains(
                "   Dự kiến xong: 19/05/2022 08:10, sau hạn (còn 12 hồ sơ tiếp nhận trước đang chờ xử lý)"))
        #expect(text.html.contains("Dự kiến xong: 19/05/2022 08:10"))
        // The other levels carry no forecast line.
        #expect(lines.filter { $0.contains("Dự kiến xong") }.count == 1)
        // Worst first: a forecast comes after every clock level.
        #expect(DigestQueue.rank(.atRisk) < DigestQueue.rank(.warning))
    }

    @Test("working time left as a person says it")
    func timeLeft() {
        #expect(DigestText.timeLeft(25) == "còn 25 phút làm việc")
        #expect(DigestText.timeLeft(60) == "còn 1 giờ làm việc")
        #expect(DigestText.timeLeft(-125) == "quá hạn 2 giờ 5 phút làm việc")
        #expect(DigestText.timeLeft(0) == "đến hạn")
        #expect(DigestText.timeLeft(nil) == "không có hạn")
    }

    @Test("HTML escapes what comes from outside")
    func escaping() {
        var hostile = digest
        hostile.atRisk = [alert(.warning, "<script>alert(1)</script>", minutesLeft: 10)]
        let html = DigestText(hostile, scope: "Quận <1>", configuration: configuration).html
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;"))
        #expect(html.contains("Quận &lt;1&gt;"))
    }

    @Test("the e-mail is MIME an MTA takes: encoded UTF-8 subject, both parts, short CRLF lines, a stable id")
    func mail() throws {
        let text = DigestText(digest, scope: "Quận 1", configuration: configuration)
        let mail = MailMessage(
            from: "SameDay <sameday@hcmc.example>", to: "lanhdao.phong@quan1.hcmc.example\r\nBcc: x@evil.example",
            subject: text.subject, plain: text.plain, html: text.html, sentAt: digest.sentAt, alertIDs: digest.alertIDs)
        let raw = mail.rendered()
        let lines = raw.components(separatedBy: "\r\n")
        #expect(lines.filter { $0.utf8.count > 78 } == [], "lines over 78 characters")
        #expect(!raw.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "a bare LF")
        #expect(!lines.contains { $0.hasPrefix("Bcc:") }, "a header injected through an address")
        #expect(lines.contains("Date: Wed, 18 May 2022 15:30:30 +0700"))
        #expect(lines.contains("Content-Type: text/plain; charset=UTF-8"))
        #expect(lines.contains("Content-Type: text/html; charset=UTF-8"))
        #expect(lines.contains { $0.hasPrefix("X-SameDay-Alerts: ") })

        // The subject's encoded words decode to the subject.
        let headerEnd = try #require(lines.firstIndex(of: ""))
        var subjectLines: [String] = []
        for line in lines[..<headerEnd] {
            if line.hasPrefix("Subject: ") {
                subjectLines.append(String(line.dropFirst(9)))
            } else if !subjectLines.isEmpty && line.hasPrefix(" ") {
                subjectLines.append(String(line.dropFirst()))
            } else if !subjectLines.isEmpty {
                break
            }
        }
        let decoded = try subjectLines.map { word -> [UInt8] in
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = String(word.dropFirst(10).dropLast(2))
            return [UInt8](try #require(Data(base64Encoded: payload)))
        }
        #expect(String(decoding: decoded.joined(), as: UTF8.self) == text.subject)

        // The plain part decodes to the text.
        let plainStart = try #require(lines.firstIndex(of: "Content-Type: text/plain; charset=UTF-8")) + 3
        let plainBase64 = lines[plainStart...].prefix { !$0.hasPrefix("--") }.joined()
        #expect(Data(base64Encoded: plainBase64).map { String(decoding: $0, as: UTF8.self) } == text.plain)

        // The same recipient and alerts give the same id; other alerts another.
        #expect(
            mail.messageID
                == MailMessage(
                    from: "", to: mail.to, subject: "", plain: "", html: "", sentAt: mail.sentAt,
                    alertIDs: mail.alertIDs
                ).messageID)
        var other = mail
        other.alertIDs.removeLast()
        #expect(other.messageID != mail.messageID)
    }

    @Test("chat bodies: Telegram sendMessage, Zalo's message API and SameDay's own JSON, cut to each API's length")
    func chat() throws {
        let text = DigestText(digest, scope: "Quận 1", configuration: configuration)
        func json(_ kind: ChatKind) throws -> [String: Any] {
            let body = ChatMessage(kind: kind, chatID: "12345", text: text, digest: digest).body()
            return try #require(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        }
        let telegram = try json(.telegram)
        #expect(telegram["chat_id"] as? String == "12345")
        #expect(telegram["text"] as? String == text.plain)
        let zalo = try json(.zalo)
        #expect((zalo["recipient"] as? [String: Any])?["user_id"] as? String == "12345")
        #expect(((zalo["message"] as? [String: Any])?["text"] as? String)?.hasPrefix("SameDay — Quận 1") == true)
        let generic = try json(.generic)
        #expect(
            (generic["alerts"] as? [[String: Any]])?.map { $0["dossier"] as? String } == [
                "26734-220518-0007", "26734-220518-0003", "26734-220518-0011",
            ])
        #expect(generic["alertIds"] as? [String] == digest.alertIDs)

        var long = digest
        long.atRisk = (0..<60).map { (i: Int) in alert(.warning, "26734-220518-\(i)", minutesLeft: i) }
        let zaloText = ChatMessage(
            kind: .zalo, chatID: "1", text: DigestText(long, scope: "Quận 1", configuration: configuration),
            digest: long
        ).text
        #expect(zaloText.count <= 2000)
        #expect(zaloText.hasSuffix("(cắt bớt; xem thư điện tử hoặc trang theo dõi)"))
    }
}
