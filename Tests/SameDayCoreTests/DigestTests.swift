import Testing

@testable import SameDayCore

@Suite("Digests: alerts grouped per person, held outside working hours")
struct DigestTests {
    let calendar = Fixture.config.calendar(id: "hcmc-standard")!
    /// 30 s to gather, 5 min between messages, 1 h between repeats (the defaults).
    let policy = DigestPolicy()

    func alert(_ level: AlertLevel, _ dossier: String, minutesLeft: Int? = 60, at: String = "2022-05-18 14:00")
        -> Alert
    {
        Alert(
            alertId: Alert.id(subject: dossier, episode: 1, level: level), level: level, dossier: dossier, unit: "760",
            block: .district, procedure: Fixture.sameDay, episode: 1, due: t("2022-05-18 17:00"), firedAt: t(at),
            thresholdAt: t(at), minutesLeft: minutesLeft, recipients: [], lateFired: false)
    }

    /// Takes every message due from `from` to `to`, minute by minute.
    func messages(_ queue: inout DigestQueue, from: String, to: String) -> [Digest] {
        var out: [Digest] = []
        var now = t(from)
        while now <= t(to) {
            if let d = queue.take(at: now, policy: policy, calendar: calendar) { out.append(d) }
            now += 1
        }
        return out
    }

    @Test("alerts within the group wait make one message, worst first; a dossier whose level rose is listed once")
    func grouped() {
        var q = DigestQueue()
        q.add(alert(.warning, "D1", minutesLeft: 80), at: t("2022-05-18 14:00"))
        q.add(alert(.warning, "D2", minutesLeft: 70), at: t("2022-05-18 14:00") + 10)
        q.add(alert(.critical, "D1", minutesLeft: 25), at: t("2022-05-18 14:00") + 20)
        q.add(alert(.overdue, "D3", minutesLeft: -5), at: t("2022-05-18 14:00") + 25)
        #expect(q.take(at: t("2022-05-18 14:00") + 29, policy: policy, calendar: calendar) == nil)
        let d = q.take(at: t("2022-05-18 14:00") + 30, policy: policy, calendar: calendar)
        #expect(d?.atRisk.map(\.dossier) == ["D3", "D1", "D2"])
        #expect(d?.atRisk.map(\.level) == [.overdue, .critical, .warning])
        #expect(d?.heldSince == nil)
        #expect(q.take(at: t("2022-05-18 15:00"), policy: policy, calendar: calendar) == nil)
    }

    @Test("after a message the next waits the group interval")
    func interval() {
        var q = DigestQueue()
        q.add(alert(.warning, "D1"), at: t("2022-05-18 14:00"))
        let first = messages(&q, from: "2022-05-18 14:00", to: "2022-05-18 14:01")
        #expect(first.map(\.sentAt) == [t("2022-05-18 14:00") + 30])
        q.add(alert(.warning, "D2"), at: t("2022-05-18 14:01"))
        let second = messages(&q, from: "2022-05-18 14:01", to: "2022-05-18 14:10")
        #expect(second.map(\.sentAt) == [t("2022-05-18 14:00") + 30 + 300])
        #expect(second.first?.atRisk.map(\.dossier) == ["D2"])
    }

    @Test("resolutions fold into the next message; a dossier resolved before its message is not listed at risk")
    func resolutionsFold() {
        var q = DigestQueue()
        q.add(alert(.cleared, "D0"), at: t("2022-05-18 13:00"))
        q.add(alert(.resolvedLate, "D9"), at: t("2022-05-18 13:01"))
        #expect(q.dueAt(policy: policy, calendar: calendar) == nil, "resolutions alone send nothing")
        q.add(alert(.warning, "D1"), at: t("2022-05-18 14:00"))
        q.add(alert(.warning, "D2"), at: t("2022-05-18 14:00") + 5)
        q.add(alert(.cleared, "D1"), at: t("2022-05-18 14:00") + 10)
        let d = messages(&q, from: "2022-05-18 14:00", to: "2022-05-18 14:05")
        #expect(d.count == 1)
        #expect(d.first?.atRisk.map(\.dossier) == ["D2"])
        #expect(d.first?.resolvedCount == 3)
        #expect(d.first?.lateResolvedCount == 1)
        #expect(d.first?.resolvedLatest.map(\.dossier) == ["D0", "D9", "D1"])
        #expect(q.isEmpty)
    }

    @Test("an escalation that stays open is sent again every repeat interval, until it is cleared")
    func escalationRepeats() {
        var q = DigestQueue()
        q.add(alert(.escalated, "D1", minutesLeft: -60), at: t("2022-05-18 14:00"))
        let sent = messages(&q, from: "2022-05-18 14:00", to: "2022-05-18 16:30")
        #expect(
            sent.map(\.sentAt) == [t("2022-05-18 14:00") + 30, t("2022-05-18 15:00") + 30, t("2022-05-18 16:00") + 30])
        #expect(sent.map { $0.repeated.count } == [0, 1, 1])
        q.add(alert(.cleared, "D1"), at: t("2022-05-18 16:40"))
        #expect(q.dueAt(policy: policy, calendar: calendar) == nil)
    }

    @Test("outside working hours a message waits for the next session; an escalation pages at once")
    func workingHours() {
        // Friday 17:30: the desk is closed until Monday 07:30.
        var q = DigestQueue()
        q.add(alert(.critical, "D1", at: "2022-05-20 17:30"), at: t("2022-05-20 17:30"))
        let due = q.dueAt(policy: policy, calendar: calendar)
        #expect(due?.at == t("2022-05-23 07:30"))
        #expect(due?.heldSince == t("2022-05-20 17:30") + 30)
        #expect(q.take(at: t("2022-05-22 20:00"), policy: policy, calendar: calendar) == nil)
        let held = q.take(at: t("2022-05-23 07:30"), policy: policy, calendar: calendar)
        #expect(held?.heldSince == t("2022-05-20 17:30") + 30)

        var night = DigestQueue()
        night.add(alert(.warning, "D2", at: "2022-05-20 18:00"), at: t("2022-05-20 18:00"))
        night.add(alert(.escalated, "D3", at: "2022-05-20 18:00"), at: t("2022-05-20 18:00"))
        let page = night.take(at: t("2022-05-20 18:00") + 30, policy: policy, calendar: calendar)
        #expect(page?.atRisk.map(\.dossier) == ["D3", "D2"], "a page carries everything owed")
        #expect(page?.heldSince == nil)
        // Its repeat an hour later pages too; a warning alone would have waited until Monday.
        #expect(night.dueAt(policy: policy, calendar: calendar)?.at == t("2022-05-20 19:00") + 30)
    }

    @Test("windows per level: the shortest wait of the levels in the group applies")
    func levelWindows() {
        let fast = DigestPolicy(levels: [.overdue: DigestWindows(groupWait: 0, groupInterval: 60, repeatInterval: 600)])
        var q = DigestQueue()
        q.add(alert(.warning, "D1"), at: t("2022-05-18 14:00"))
        #expect(q.dueAt(policy: fast, calendar: calendar)?.at == t("2022-05-18 14:00") + 30)
        q.add(alert(.overdue, "D2"), at: t("2022-05-18 14:00") + 5)
        #expect(q.dueAt(policy: fast, calendar: calendar)?.at == t("2022-05-18 14:00"))
    }

    @Test("a long list goes out at once as pages of maxListed; the resolutions, named the latest ten, with the first")
    func bounded() throws {
        var q = DigestQueue()
        for i in 0..<45 { q.add(alert(.warning, "D\(i)", minutesLeft: i), at: t("2022-05-18 14:00")) }
        for i in 0..<25 { q.add(alert(.cleared, "R\(i)"), at: t("2022-05-18 14:00")) }
        let taken = q.take(at: t("2022-05-18 14:01"), policy: policy, calendar: calendar)
        let d = try #require(taken)
        #expect(d.atRisk.count == 45 && d.totalAtRisk == 45)
        #expect(q.pending.isEmpty, "nothing waits for a later message")
        let pages = d.pages(maxListed: policy.maxListed)
        #expect(pages.map(\.atRisk.count) == [30, 15])
        #expect(pages.map(\.page) == [1, 2] && pages.allSatisfy { $0.pages == 2 })
        #expect(pages[1].firstNumber == 31 && pages[1].atRisk.first?.dossier == "D30")
        #expect(pages[0].atRisk.first?.dossier == "D0")
        #expect(pages[0].resolvedCount == 25 && pages[1].resolvedCount == 0)
        #expect(pages[0].resolvedLatest.map(\.dossier) == (15..<25).map { "R\($0)" })
        #expect(Set(pages.flatMap(\.alertIDs)) == Set(d.alertIDs), "the pages carry every alert of the digest")
    }
}

extension DigestTests {
    @Test("a queue rebuilt from its last message time, open escalations and owed alerts decides as the original")
    func restored() {
        var original = DigestQueue()
        original.add(alert(.escalated, "D1", minutesLeft: -60), at: t("2022-05-18 14:00"))
        _ = original.take(at: t("2022-05-18 14:00") + 30, policy: policy, calendar: calendar)
        original.add(alert(.warning, "D2"), at: t("2022-05-18 14:02"))
        original.add(alert(.cleared, "D3"), at: t("2022-05-18 14:03"))

        var rebuilt = DigestQueue(lastSentAt: original.lastSentAt, openEscalations: original.openEscalations)
        rebuilt.add(alert(.warning, "D2"), at: t("2022-05-18 14:02"))
        rebuilt.add(alert(.cleared, "D3"), at: t("2022-05-18 14:03"))
        #expect(rebuilt == original)
        #expect(
            rebuilt.dueAt(policy: policy, calendar: calendar)?.at == t("2022-05-18 14:00") + 30 + 300,
            "the group interval still counts from the message sent before the restart")
    }
}
