import Testing

@testable import SameDayCore

@Suite("Dossier state machine and alerts")
struct DossierTests {
    let config = Fixture.config

    func run(_ events: [DossierEvent], now: Instant? = nil, dossier: String = "760-220518-0001") throws -> (
        Dossier, [DossierAction]
    ) {
        var d = Dossier(code: dossier)
        var actions: [DossierAction] = []
        for e in events { actions += try d.apply(e, now: now ?? e.occurredAt, config: config) }
        return (d, actions)
    }

    @Test("same-day received 14:00: timer, warning at 15:30 with recipients, cleared on resolution")
    func sameDayFlow() throws {
        var b = EventBuilder()
        var (d, actions) = try run([b(.received, "2022-05-20 14:00")])
        #expect(actions == [.scheduleTimer(at: t("2022-05-20 15:30"))])
        let a1 = d.advance(to: t("2022-05-20 15:30"), config: config)
        #expect(a1.alerts.map(\.level) == [.warning])
        let w = a1.alerts[0]
        #expect(w.minutesLeft == 90)
        #expect(w.due == t("2022-05-20 17:00"))
        #expect(w.recipients == ["motcua@quan1.example.vn"])
        #expect(w.lateFired == false)
        #expect(w.block == .district)
        #expect(w.alertId == Alert.id(subject: "760-220518-0001", episode: 1, level: .warning))
        #expect(a1.last == .scheduleTimer(at: t("2022-05-20 16:30")))
        // Firing again at the same instant does nothing new.
        #expect(d.advance(to: t("2022-05-20 15:31"), config: config).alerts.isEmpty)
        let a2 = try d.apply(
            b(.resolved, "2022-05-20 16:10", outcome: .approved), now: t("2022-05-20 16:10"), config: config)
        #expect(a2.alerts.map(\.level) == [.cleared])
        #expect(a2.last == .cancelTimer)
        let st = d.state(config: config)
        #expect(st.status == .resolved)
        #expect(st.classification == .onTime)
        #expect(d.isSettled(config: config))
    }

    @Test("a quiet dossier: a worker back on Monday fires all missed levels once, late-fired; resolved_late after")
    func missedAlertsAndLateResolution() throws {
        var b = EventBuilder()
        var (d, _) = try run([b(.received, "2022-05-20 14:00")])
        let a = d.advance(to: t("2022-05-23 09:00"), config: config)
        #expect(a.alerts.map(\.level) == [.warning, .critical, .overdue, .escalated])
        #expect(a.alerts.allSatisfy { $0.lateFired && $0.firedAt == t("2022-05-23 09:00") })
        #expect(a.alerts[2].minutesLeft == -90)
        #expect(a.last == .cancelTimer)
        let r = try d.apply(b(.resolved, "2022-05-23 10:00"), now: t("2022-05-23 10:00"), config: config)
        #expect(r.alerts.map(\.level) == [.resolvedLate])
        #expect(r.alerts[0].recipients == ["truongphong@quan1.example.vn", "chutich@quan1.example.vn"])
        #expect(d.state(config: config).classification == .late)
    }

    @Test("duplicates have no effect")
    func duplicates() throws {
        var b = EventBuilder()
        let e = b(.received, "2022-05-18 09:00")
        var (d, _) = try run([e])
        #expect(try d.apply(e, now: e.occurredAt, config: config).isEmpty)
        #expect(d.eventCount == 1)
    }

    @Test("out of order: resolved before received gives the same state as in order")
    func outOfOrder() throws {
        var b = EventBuilder()
        let rec = b(.received, "2022-05-18 09:00")
        let res = b(.resolved, "2022-05-18 10:00", outcome: .approved)
        let (inOrder, _) = try run([rec, res])
        let (reversed, _) = try run([res, rec], now: t("2022-05-18 10:00"))
        let s1 = inOrder.state(config: config), s2 = reversed.state(config: config)
        #expect(s1.status == s2.status && s2.status == .resolved)
        #expect(s1.classification == .early || s1.classification == .onTime)
        #expect(s1.classification == s2.classification)
        #expect(inOrder.facts(config: config) == reversed.facts(config: config))
    }

    @Test("early: resolved on a calendar day before the deadline's day")
    func early() throws {
        var b = EventBuilder()
        b.procedure = Fixture.days3
        let (d, _) = try run([b(.received, "2022-05-18 09:00"), b(.resolved, "2022-05-19 09:00")])
        #expect(d.state(config: config).classification == .early)
    }

    @Test("supplement restart: new episode, new T0 and deadline; reports keep the first received")
    func supplementRestart() throws {
        var b = EventBuilder()
        var (d, _) = try run([
            b(.received, "2022-05-18 09:00"), b(.supplementRequested, "2022-05-18 10:00"),
        ])
        #expect(d.advance(to: t("2022-05-18 18:00"), config: config).alerts.isEmpty)  // clock stopped
        _ = try d.apply(b(.supplementReceived, "2022-05-19 14:00"), now: t("2022-05-19 14:00"), config: config)
        let st = d.state(config: config)
        #expect(st.episodes.count == 2)
        #expect(fmt(st.episodes[1].deadline.due) == "2022-05-19 17:00")
        #expect(st.firstReceivedAt == t("2022-05-18 09:00"))
        let a = d.advance(to: t("2022-05-19 15:30"), config: config)
        #expect(a.alerts.map(\.level) == [.warning])
        #expect(a.alerts[0].episode == 2)
        #expect(a.alerts[0].alertId == Alert.id(subject: "760-220518-0001", episode: 2, level: .warning))
    }

    @Test("fee pause stops the clock and moves the deadline; no alerts while paused")
    func feePause() throws {
        var b = EventBuilder()
        b.procedure = Fixture.days1
        var (d, actions) = try run([b(.received, "2022-05-20 10:00"), b(.feeRequested, "2022-05-20 16:00")])
        #expect(actions.last == .cancelTimer)
        // Revision 2: days:1 critical is at 90 % used, so a dossier with its whole time ahead raises nothing.
        #expect(actions.alerts.isEmpty)
        #expect(d.advance(to: t("2022-05-23 08:59"), config: config).alerts.isEmpty)
        _ = try d.apply(b(.feePaid, "2022-05-23 09:00"), now: t("2022-05-23 09:00"), config: config)
        let st = d.state(config: config)
        #expect(fmt(st.judgingDue) == "2022-05-23 14:00")
        let a = d.advance(to: t("2022-05-23 14:00"), config: config)
        // warning override for this procedure: 120 working minutes before 14:00 → 10:30; critical at 90 % of 480
        // minutes: 270 used on Friday, 162 more from Monday 09:00 → 13:12.
        #expect(a.alerts.map(\.level) == [.warning, .critical, .overdue])
        #expect(a.alerts[0].thresholdAt == t("2022-05-23 10:30"))
        #expect(a.alerts[1].thresholdAt == t("2022-05-23 13:12"))
    }

    @Test("feesPauseTheClock false: the fee events are recorded and change nothing; the time to pay counts")
    func feesDoNotPauseWhenTheCitySaysSo() throws {
        let text = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self)
        let withoutPause = try Configuration.parse(
            Fixture.files(
                replacing: "alerting.json",
                with: text.replacingOccurrences(
                    of: "\"defaultSla\"", with: "\"feesPauseTheClock\": false, \"defaultSla\"")))
        #expect(withoutPause.alerting.feesPauseTheClock == false && config.alerting.feesPauseTheClock)
        var b = EventBuilder()
        b.procedure = Fixture.days1
        var d = Dossier(code: "760-220518-0001")
        for e in [b(.received, "2022-05-20 10:00"), b(.feeRequested, "2022-05-20 16:00")] {
            _ = try d.apply(e, now: e.occurredAt, config: withoutPause)
        }
        var st = d.state(config: withoutPause)
        #expect(st.status == .running && st.anomalies.isEmpty)
        #expect(fmt(st.judgingDue) == "2022-05-23 10:00", "one working day from Friday 10:00, the wait included")
        _ = try d.apply(b(.feePaid, "2022-05-23 09:00"), now: t("2022-05-23 09:00"), config: withoutPause)
        st = d.state(config: withoutPause)
        #expect(st.status == .running && st.anomalies.isEmpty && fmt(st.judgingDue) == "2022-05-23 10:00")
        #expect(d.advance(to: t("2022-05-23 10:00"), config: withoutPause).alerts.map(\.level).contains(.overdue))
        // Not in the paused stock at the end of Friday.
        let facts = try #require(d.facts(config: withoutPause))
        var friday = RollupFigures()
        friday.add(facts, period: .day(LocalDate("2022-05-20")!))
        #expect(friday.paused == 0 && friday.inProgressOnTime == 1)
    }

    @Test("reschedule: alerts measure against newDueAt, lateness against the deadline before it")
    func reschedule() throws {
        var b = EventBuilder()
        b.procedure = Fixture.days3
        var (d, _) = try run([b(.received, "2022-05-18 09:00")])  // due Mon 23 09:00
        _ = try d.apply(
            b(.rescheduled, "2022-05-20 16:00", newDue: "2022-05-25 17:00"), now: t("2022-05-20 16:00"), config: config)
        let st = d.state(config: config)
        let sched = d.alertSchedule(state: st, config: config)!
        // 90 % of the working time to the new promise (2,790 minutes) is Wednesday 10:51.
        #expect(fmt(sched.instants[.critical]) == "2022-05-25 10:51")
        #expect(fmt(sched.instants[.overdue]) == "2022-05-25 17:00")
        #expect(fmt(sched.alertDue) == "2022-05-25 17:00")
        let a = d.advance(to: t("2022-05-25 17:00"), config: config)
        #expect(a.alerts.map(\.level) == [.warning, .critical, .overdue])
        _ = try d.apply(
            b(.rescheduled, "2022-05-25 17:00", newDue: "2022-05-27 17:00"), now: t("2022-05-25 17:00"), config: config)
        #expect(d.state(config: config).anomalies.contains(.secondReschedule))
        let r = try d.apply(b(.resolved, "2022-05-24 10:00"), now: t("2022-05-25 17:01"), config: config)
        #expect(r.alerts.map(\.level) == [.resolvedLate])  // within the promise, still late
        #expect(d.state(config: config).classification == .late)
    }

    @Test("withdrawn counts as resolved on time; stopped stays paused; contradictions are anomalies")
    func closuresAndAnomalies() throws {
        var b = EventBuilder()
        let (w, _) = try run([
            b(.received, "2022-05-18 09:00"), b(.withdrawn, "2022-05-18 09:30"), b(.received, "2022-05-18 10:00"),
        ])
        let ws = w.state(config: config)
        #expect(ws.status == .withdrawn && ws.classification == .onTime)
        #expect(ws.anomalies.contains(.eventAfterClosure))
        #expect(w.facts(config: config)?.withdrawn == true)
        var c = EventBuilder()
        let (s, _) = try run([c(.received, "2022-05-18 09:00"), c(.stopped, "2022-05-18 09:30")])
        #expect(s.facts(config: config)?.segments.last?.paused == true)
        var e = EventBuilder()
        let (x, _) = try run([
            e(.received, "2022-05-18 09:00"), e(.resolved, "2022-05-18 10:00", outcome: .approved),
            e(.resolved, "2022-05-18 10:05", outcome: .rejected), e(.returned, "2022-05-18 11:00"),
        ])
        #expect(x.state(config: config).anomalies == [.conflictingOutcome])
        var f = EventBuilder()
        let (r, _) = try run([f(.refused, "2022-05-18 09:00")])
        #expect(r.state(config: config).status == .refused)
        #expect(r.facts(config: config) == nil)
    }

    @Test(
        "resolved, withdrawn or stopped before any received: never counted, no alert, the later received ignored",
        arguments: [EventType.resolved, .withdrawn, .stopped])
    func closureBeforeReceived(_ closure: EventType) throws {
        var b = EventBuilder()
        let (d, actions) = try run(
            [b(closure, "2022-05-18 09:00"), b(.received, "2022-05-18 10:00")], now: t("2022-05-18 10:00"))
        let st = d.state(config: config)
        #expect(st.closure?.status.rawValue == closure.name)
        #expect(st.anomalies == [.eventBeforeReceived, .eventAfterClosure])
        #expect(st.episodes.isEmpty && st.firstReceivedAt == nil)
        #expect(d.facts(config: config) == nil)
        // Before the fix such a dossier ran overdue and escalated for ever; now nothing is scheduled.
        var copy = d
        #expect(copy.advance(to: t("2022-05-25 10:00"), config: config).alerts.isEmpty)
        #expect(!actions.contains { if case .scheduleTimer = $0 { true } else { false } })
        #expect(d.isSettled(config: config))
    }

    @Test("unknown unit and wrong dossier are errors")
    func errors() throws {
        var b = EventBuilder()
        b.unit = "nope"
        var d = Dossier(code: "760-220518-0001")
        #expect(throws: DossierError.unknownUnit("nope")) {
            try d.apply(b(.received, "2022-05-18 09:00"), now: 0, config: config)
        }
        var c = EventBuilder()
        c.dossier = "other"
        #expect(throws: DossierError.self) { try d.apply(c(.received, "2022-05-18 09:00"), now: 0, config: config) }
    }

    @Test("alert ids are stable across runs and processes (FNV-1a 64)")
    func alertIds() {
        #expect(FNV1a.hex(FNV1a.hash("")) == "cbf29ce484222325")
        #expect(FNV1a.hex(FNV1a.hash("a")) == "af63dc4c8601ec8c")
        #expect(Alert.id(subject: "D", episode: 1, level: .warning) == FNV1a.hex(FNV1a.hash("D|1|warning")))
    }

    @Test("source_silent: once per silence, on the unit's working time")
    func silence() {
        var m = SourceSilenceMonitor()
        let u = config.unitID("760")!
        let at = m.observe(unit: u, at: t("2022-05-20 16:00"), config: config)
        #expect(fmt(at) == "2022-05-23 08:30")  // 120 working minutes
        #expect(m.check(now: t("2022-05-23 08:29"), config: config).isEmpty)
        let alerts = m.check(now: t("2022-05-23 08:30"), config: config)
        #expect(alerts.map(\.level) == [.sourceSilent])
        #expect(alerts[0].recipients == ["tiepnhan@quan1.example.vn", "sonoivu.kstthc@example.vn"])
        #expect(m.check(now: t("2022-05-23 12:00"), config: config).isEmpty)
    }
}
