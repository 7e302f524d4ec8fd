import Foundation
import SameDayFormats
import SameDayStore
import Testing

@testable import SameDayCore
@testable import SameDayNotify

/// District 1 (760) with its ward Bến Nghé (26740), the HCMC 2022 configuration with `parentRoles: ["unit_head"]`:
/// the district's head also receives her wards' alerts of the levels that go to `unit_head`.
enum PlannerFixture {
    static let base = ChannelFixture.configuration
    static let domain: Configuration = {
        var policy = base.alerting
        policy.parentRoles = [.unitHead]
        return Configuration(
            units: base.units, catalog: base.catalog, calendars: base.calendarDefinitions, alerting: policy,
            interlevel: base.interlevel)
    }()
    static let districtHead = "lanhdao.donvi@quan1.hcmc.example"
    static let wardSpecialist = "chuyenvien.tthc@phuong-bennghe.quan1.hcmc.example"

    static var settings: NotifySettings {
        var s = NotifySettings(from: "SameDay <sameday@hcmc.example>")
        s.webhooks["tg"] = .init(.telegram(tokenFile: "/nonexistent", base: "http://127.0.0.1:9"))
        s.people[districtHead] = .init(chats: [.init(webhook: "tg", chatID: "4242")])
        return s
    }

    static func alert(
        _ level: AlertLevel, _ dossier: String, unit: String = "26740", firedAt: String = "2022-05-18T15:30:00",
        minutesLeft: Int? = 20
    ) -> Alert {
        let block: Block = unit == "760" ? .district : .commune
        return Alert(
            alertId: Alert.id(subject: dossier, episode: 1, level: level), level: level, dossier: dossier, unit: unit,
            block: block, procedure: "2.000815.000.00.00.H29", episode: 1,
            due: ChannelFixture.at("2022-05-18T17:00:00"),
            firedAt: ChannelFixture.at(firedAt), thresholdAt: ChannelFixture.at(firedAt), minutesLeft: minutesLeft,
            recipients: [], lateFired: false)
    }

    static func owed(_ seq: Int64, _ recipient: String, _ alert: Alert, at: Instant) -> OwedAlert {
        OwedAlert(seq: seq, recipient: recipient, alertID: alert.alertId, receivedAt: at, json: alert.jsonLine())
    }
}

@Suite("Notify planner: who is owed what, and the messages of a digest")
struct NotifyPlannerTests {
    typealias F = PlannerFixture
    let at = ChannelFixture.at

    @Test("recipients follow alerting.json's levels and roles, up the unit tree where parentRoles says so")
    func recipients() throws {
        let planner = NotifyPlanner(settings: F.settings, domain: F.domain)
        let overdue = try #require(planner.recipients(of: F.alert(.overdue, "26740-1")))
        #expect(overdue.contains(F.districtHead), "the district's head gets her ward's overdue dossiers")
        #expect(overdue.contains(F.wardSpecialist))
        let warning = try #require(planner.recipients(of: F.alert(.warning, "26740-2")))
        #expect(warning == [F.wardSpecialist], "a warning goes to the ward's specialist only")
        #expect(planner.recipients(of: F.alert(.warning, "x", unit: "99999")) == nil, "an unknown unit is refused")
        // Without parentRoles the district head gets nothing of the ward.
        let plain = NotifyPlanner(settings: F.settings, domain: F.base)
        #expect(try #require(plain.recipients(of: F.alert(.overdue, "26740-1"))).contains(F.districtHead) == false)
    }

    @Test("a digest is one e-mail and one chat message per chat, with the same Message-ID, carrying her alerts")
    func messages() throws {
        var planner = NotifyPlanner(settings: F.settings, domain: F.domain)
        let received = at("2022-05-18T15:30:00")
        let a = F.alert(.overdue, "26740-220518-0001", minutesLeft: -5)
        let b = F.alert(.overdue, "26740-220518-0002", minutesLeft: -1)
        planner.add(F.owed(1, F.districtHead, a, at: received), alert: a)
        planner.add(F.owed(2, F.districtHead, b, at: received), alert: b)
        #expect(planner.nextDueAt() == received + 30, "the standard group wait")
        #expect(planner.takeDue(at: received + 29).isEmpty)
        let planned = planner.takeDue(at: received + 30)
        let digest = try #require(planned.first)
        #expect(planned.count == 1)
        #expect(digest.recipient == F.districtHead && digest.throughSeq == 2)
        #expect(digest.messages.map(\.channel) == ["email", "webhook:tg"])
        #expect(Set(digest.messages.map(\.messageID)).count == 1)
        #expect(digest.messages[0].destination == F.districtHead && digest.messages[1].destination == "4242")
        #expect(Set(digest.messages[0].alertIDs) == [a.alertId, b.alertId])
        #expect(digest.messages[0].body.contains("X-SameDay-Alerts:"))
        #expect(digest.messages[1].body.contains("\"chat_id\":\"4242\""))
        #expect(planner.nextDueAt() == nil, "nothing more is owed")
    }

    @Test("a restart rebuilds the queues from the store: what was sent is not sent again, what is owed goes out")
    func restart() throws {
        let folder = NSTemporaryDirectory() + "sameday-planner-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try NotifyStore(path: folder + "/notify.sqlite")
        var planner = NotifyPlanner(settings: F.settings, domain: F.domain)
        let t0 = at("2022-05-18T09:00:00")
        let escalated = F.alert(.escalated, "26740-220518-0009", firedAt: "2022-05-18T09:00:00", minutesLeft: -70)
        let recipients = try #require(planner.recipients(of: escalated))
        for row in try store.recordOwed(
            alertID: escalated.alertId, json: escalated.jsonLine(), recipients: recipients, at: t0)
        {
            planner.add(row, alert: escalated)
        }
        for p in planner.takeDue(at: t0 + 30) {
            try store.commitDigest(
                recipient: p.recipient, throughSeq: p.throughSeq, at: t0 + 30, messages: p.messages,
                lastSentAt: p.lastSentAt, openEscalations: p.openEscalations)
        }
        let warning = F.alert(.warning, "26740-220518-0010", firedAt: "2022-05-18T09:01:00")
        for row in try store.recordOwed(
            alertID: warning.alertId, json: warning.jsonLine(),
            recipients: try #require(planner.recipients(of: warning)),
            at: t0 + 60)
        {
            planner.add(row, alert: warning)
        }

        // The process dies here; a new one reads the store.
        var restarted = NotifyPlanner(settings: F.settings, domain: F.domain)
        restarted.restore(states: try store.recipientStates(), owed: try store.owed())
        #expect(restarted.nextDueAt() == planner.nextDueAt())
        let again = restarted.takeDue(at: t0 + 90)
        #expect(again.map(\.recipient) == [F.wardSpecialist], "only the warning is owed, to the ward's specialist")
        #expect(again.first?.digest.atRisk.map(\.alertId) == [warning.alertId])
        // The escalation repeats after an hour for those it went to, from the stored state.
        let repeats = restarted.takeDue(at: t0 + 30 + 3600)
        #expect(Set(repeats.map(\.recipient)) == Set(recipients))
        #expect(repeats.allSatisfy { $0.digest.repeated == [escalated.alertId] })
    }

    @Test("a warning after hours is held for the recipient's next working session; an escalation goes out at once")
    func heldForWorkingHours() throws {
        var planner = NotifyPlanner(settings: F.settings, domain: F.domain)
        let friday = at("2022-05-20T18:00:00")
        let warning = F.alert(.warning, "26740-220520-0001", firedAt: "2022-05-20T18:00:00")
        planner.add(F.owed(1, F.wardSpecialist, warning, at: friday), alert: warning)
        let due = try #require(planner.nextDueAt())
        #expect(due > at("2022-05-22T23:59:00"), "held over the weekend")
        #expect(due < at("2022-05-23T09:00:00"), "sent when Monday's session starts")
        #expect(planner.takeDue(at: at("2022-05-21T10:00:00")).isEmpty)
        let held = try #require(planner.takeDue(at: due).first)
        #expect(held.digest.heldSince == friday + 30)

        let escalated = F.alert(.escalated, "26740-220520-0002", firedAt: "2022-05-20T18:00:00", minutesLeft: -61)
        planner.add(F.owed(2, F.districtHead, escalated, at: friday), alert: escalated)
        #expect(planner.nextDueAt() == friday + 30, "escalated pages at any hour")
    }

    @Test("people no channel reaches are listed, and not owed anything")
    func unreachable() throws {
        var settings = F.settings
        settings.people[F.wardSpecialist] = .init(email: false)
        let planner = NotifyPlanner(settings: settings, domain: F.domain)
        #expect(planner.unreachable.contains(F.wardSpecialist))
        #expect(try #require(planner.recipients(of: F.alert(.warning, "26740-3"))).isEmpty)
    }
}

extension NotifyPlannerTests {
    @Test("a daily summary per person on her working days at the configured time: her units' figures, what is overdue")
    func dailySummary() throws {
        var settings = F.settings
        settings.dailySummary = .init(secondsOfDay: 16 * 3600 + 30 * 60, rollups: [])
        var planner = NotifyPlanner(settings: settings, domain: F.domain)
        #expect(planner.summariesDue(at: at("2022-05-18T16:29:00")).isEmpty, "not before 16:30")
        let due = planner.summariesDue(at: at("2022-05-18T16:30:00"))
        #expect(due.contains(F.districtHead) && due.contains(F.wardSpecialist))
        #expect(planner.summariesDue(at: at("2022-05-18T17:00:00")).isEmpty, "once a day")
        #expect(planner.summariesDue(at: at("2022-05-21T16:30:00")).isEmpty, "Saturday is no working day")
        #expect(planner.units(of: F.wardSpecialist).map(\.code) == ["26740"])
        let headUnits = planner.units(of: F.districtHead).map(\.code)
        #expect(headUnits.contains("760") && headUnits.contains("26740"), "her district and its wards")

        var ward = RollupFigures()
        ward.sameDayReceived = 12
        ward.sameDayResolvedSameDay = 9
        ward.inProgressOverdue = 1
        let overdue = F.alert(.overdue, "26740-220518-0004", minutesLeft: -40)
        let summary = DailySummary(
            day: LocalDate(year: 2022, month: 5, day: 18)!, sentAt: at("2022-05-18T16:30:00"),
            units: planner.units(of: F.districtHead).map { ($0, $0.code == "26740" ? ward : nil) }, overdue: [overdue])
        let text = SummaryText(summary, scope: "Quận 1", configuration: F.domain)
        #expect(text.subject == "[SameDay] Quận 1: tổng hợp ngày 18/05/2022")
        #expect(
            text.plain.contains(
                "- Phường Bến Nghé: tiếp nhận 12 hồ sơ giải quyết trong ngày, đã giải quyết trong ngày 9; đang giải quyết quá hạn 1"
            ))
        #expect(text.plain.contains("Hồ sơ quá hạn chưa giải quyết (1):"))
        #expect(text.plain.contains("Hồ sơ 26740-220518-0004"))
        let messages = planner.summaryMessages(summary, to: F.districtHead)
        #expect(messages.map(\.channel) == ["email", "webhook:tg"])
        #expect(messages[0].messageID == planner.summaryMessages(summary, to: F.districtHead)[0].messageID)
        #expect(messages[0].messageID.hasPrefix("<summary.2022-05-18."))
        let empty = SummaryText(
            DailySummary(day: summary.day, sentAt: summary.sentAt, units: [], overdue: []), scope: "Quận 1",
            configuration: F.domain)
        #expect(empty.plain.contains("Chưa có số liệu trong ngày.") && empty.plain.contains("Không có hồ sơ quá hạn"))
    }

    @Test("the store keeps the open overdue dossiers, and a summary's messages once per Message-ID")
    func overdueAndSummaryStore() throws {
        let folder = NSTemporaryDirectory() + "sameday-summary-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try NotifyStore(path: folder + "/notify.sqlite")
        let t = at("2022-05-18T15:00:00")
        try store.trackOverdue(
            opened: [("26740", "A", "{a}"), ("26740", "B", "{b}"), ("760", "C", "{c}")], closed: [], at: t)
        try store.trackOverdue(opened: [], closed: [("26740", "A")], at: t + 60)
        #expect(try store.openOverdue(units: ["26740"]) == ["{b}"])
        #expect(try store.openOverdue(units: ["26740", "760"]).count == 2)
        let message = NotifyMessage(
            messageID: "<summary.x@sameday>", recipient: "p@x.example", channel: "email", destination: "p@x.example",
            body: "b", alertIDs: [], createdAt: t, nextAttemptAt: t)
        #expect(try store.storeMessages([message]) == 1)
        #expect(try store.storeMessages([message]) == 0, "taken again after a restart: stored once")
        try store.prune(before: t + 1)
        #expect(try store.openOverdue(units: ["26740", "760"]).isEmpty, "pruned with the retention window")
    }
}

@Suite("notify.json: every error names the file, line and key")
struct NotifySettingsTests {
    func parse(_ text: String) throws -> NotifySettings { try NotifySettings.parse(Array(text.utf8)) }

    @Test("a full file is read")
    func full() throws {
        let s = try parse(
            """
            {"from": "SameDay <sameday@hcmc.example>", "stateDirectory": "/var/lib/sameday/notify",
             "mail": {"program": "/usr/bin/msmtp", "arguments": ["-C", "/etc/sameday/msmtp.conf"], "timeoutSeconds": 30},
             "webhooks": {"tg": {"kind": "telegram", "tokenFile": "/etc/sameday/telegram.token"},
                          "hook": {"kind": "generic", "url": "https://chat.example/hook"}},
             "people": {"lanhdao.donvi@quan1.hcmc.example": {"chat": [{"webhook": "tg", "chatId": "-100123"}]}},
             "windows": {"groupWaitSeconds": 10, "groupIntervalSeconds": 120},
             "levels": {"escalated": {"groupWaitSeconds": 0}},
             "anyHour": ["escalated", "overdue"], "maxListed": 20,
             "retry": {"maxAttempts": 5, "baseDelaySeconds": 10, "maxDelaySeconds": 600}, "retentionDays": 14,
             "dailySummary": {"at": "16:30", "rollups": ["/var/lib/sameday/shard-0/rollups"]}}
            """)
        #expect(s.mail?.program == "/usr/bin/msmtp" && s.mail?.timeout == .seconds(30))
        #expect(s.webhooks["tg"]?.kind == .telegram && s.webhooks["hook"]?.kind == .generic)
        #expect(s.people["lanhdao.donvi@quan1.hcmc.example"]?.chats == [.init(webhook: "tg", chatID: "-100123")])
        #expect(s.digest.standard == DigestWindows(groupWait: 10, groupInterval: 120, repeatInterval: 3600))
        #expect(s.digest.levels[.escalated]?.groupWait == 0)
        #expect(s.digest.anyHour == [.escalated, .overdue] && s.digest.maxListed == 20)
        #expect(s.retry == RetryPolicy(maxAttempts: 5, baseDelay: 10, maxDelay: 600, maxRetryAfter: 3600))
        #expect(s.channelNames == ["email", "webhook:hook", "webhook:tg"])
        #expect(s.dailySummary == .init(secondsOfDay: 59_400, rollups: ["/var/lib/sameday/shard-0/rollups"]))
    }

    @Test(
        "mistakes are refused with the line and the key",
        arguments: [
            (#"{"from": "SameDay"}"#, "from"),
            (#"{"from": "a@b.example", "mail": {"program": "sendmail"}}"#, "absolute path"),
            (#"{"from": "a@b.example", "webhooks": {"tg": {"kind": "signal"}}}"#, "unknown webhook kind"),
            (
                #"{"from": "a@b.example", "people": {"x@y.example": {"chat": [{"webhook": "nope", "chatId": "1"}]}}}"#,
                "no webhook \"nope\""
            ),
            (#"{"from": "a@b.example", "anyHour": ["urgent"]}"#, "unknown alert level"),
            (#"{"from": "a@b.example", "windows": {"groupWait": 5}}"#, "groupWait"),
            (#"{"from": "a@b.example", "retry": {"baseDelaySeconds": 100, "maxDelaySeconds": 10}}"#, "at least"),
            (#"{"from": "a@b.example", "form": 1}"#, "form"),
            (#"{"from": "a@b.example", "dailySummary": {"at": "4pm"}}"#, "is not HH:MM"),
        ])
    func refused(text: String, says: String) throws {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(says), "\(error)")
            #expect("\(error)".hasPrefix("notify.json:1:"), "\(error)")
        }
    }
}
