import Testing

@testable import SameDayCore

/// `source_silent` with per-block and per-unit thresholds (`alerting.json` `silence.blocks`, `silence.units`), on
/// the pure monitor, the pure watch `sameday sources` drives and the replay. Every instant is passed in.
@Suite("Source silence thresholds")
struct SourceSilenceTests {
    /// The fixture with silence overrides: wards (commune) 480 working minutes, departments 240, two units their own.
    static let overrides: Configuration = {
        let text = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self).replacingOccurrences(
            of: #""silence": {"workingMinutes": 120}"#,
            with: #""silence": {"workingMinutes": 120, "blocks": {"commune": 480, "department": 240}, "#
                + #""units": {"27010": 60, "000.00.15.H29": 30}}"#)
        precondition(text.contains("\"27010\": 60"), "the fixture's silence line moved")
        do {
            return try Configuration.parse(Fixture.files(replacing: "alerting.json", with: text))
        } catch {
            fatalError("override config: \(error)")
        }
    }()
    let config = SourceSilenceTests.overrides

    func minutes(_ code: String, _ c: Configuration) -> Int { c.silenceWorkingMinutes(of: c.unitID(code)!) }

    @Test("the unit's own threshold wins over its block's, which wins over the default")
    func precedence() {
        #expect(minutes("760", config) == 120)  // district: the default
        #expect(minutes("26740", config) == 480)  // commune: the block's
        #expect(minutes("27010", config) == 60)  // commune, with its own
        #expect(minutes("000.00.15.H29", config) == 30)  // department (240), with its own
        #expect(minutes("000.00.29.G01", config) == 120)  // vertical: the default
        // Without overrides every unit has the default.
        #expect(minutes("26740", Fixture.config) == 120)
        #expect(Fixture.config.alerting.silenceBlocks.isEmpty && Fixture.config.alerting.silenceUnits.isEmpty)
    }

    @Test("the monitor counts each unit's own threshold in working time on its calendar")
    func monitorPerUnit() {
        var m = SourceSilenceMonitor()
        let district = config.unitID("760")!
        let ward = config.unitID("26740")!
        // Friday 2022-05-20, 09:00.
        #expect(fmt(m.observe(unit: district, at: t("2022-05-20 09:00"), config: config)) == "2022-05-20 11:00")
        // 480 working minutes: 150 + 240 on Friday, 90 on Monday morning.
        #expect(fmt(m.observe(unit: ward, at: t("2022-05-20 09:00"), config: config)) == "2022-05-23 09:00")
        #expect(m.check(now: t("2022-05-20 11:00"), config: config).map(\.unit) == ["760"])
        #expect(m.check(now: t("2022-05-23 08:59"), config: config).isEmpty)
        #expect(m.check(now: t("2022-05-23 09:00"), config: config).map(\.unit) == ["26740"])
    }

    @Test(
        "a quiet ward is not flagged within its block's threshold; the district that stops is, once, with the replay's id"
    )
    func watchQuietWard() {
        var w = SourceSilenceWatch()
        let district = config.unitID("760")!
        let ward = config.unitID("26740")!
        var alerts: [Alert] = []
        alerts += w.observe(
            unit: district, occurredAt: t("2022-05-20 09:00"), now: t("2022-05-20 09:00"), config: config)
        alerts += w.observe(unit: ward, occurredAt: t("2022-05-20 09:00"), now: t("2022-05-20 09:00"), config: config)
        alerts += w.observe(unit: ward, occurredAt: t("2022-05-20 14:00"), now: t("2022-05-20 14:00"), config: config)
        #expect(fmt(w.nextTimerAt) == "2022-05-23 09:00", "the ward's first timer (re-armed for 14:00 when it fires)")
        alerts += w.advance(to: t("2022-05-20 23:00"), config: config)
        #expect(alerts.map(\.unit) == ["760"])
        let alert = alerts[0]
        #expect(alert.level == .sourceSilent && alert.block == .district && alert.dossier.isEmpty)
        #expect(fmt(alert.thresholdAt) == "2022-05-20 11:00")
        #expect(
            alert.alertId
                == Alert.id(
                    subject: "760@" + RFC3339.format(t("2022-05-20 09:00")), episode: 0, level: .sourceSilent))
        #expect(!alert.lateFired && fmt(alert.firedAt) == "2022-05-20 11:00", "on time, before the 14:00 event")
        // Once per silence.
        #expect(w.advance(to: t("2022-05-24 12:00"), config: config).map(\.unit) == ["26740"])
        #expect(w.advance(to: t("2022-05-30 12:00"), config: config).isEmpty)
        // With the default threshold the ward would have been flagged on Friday at 16:00.
        var plain = SourceSilenceWatch()
        _ = plain.observe(
            unit: ward, occurredAt: t("2022-05-20 14:00"), now: t("2022-05-20 14:00"), config: Fixture.config)
        #expect(plain.advance(to: t("2022-05-20 16:00"), config: Fixture.config).map(\.unit) == ["26740"])
    }

    @Test(
        "the watch fires in time order, before the event that reaches it, and a unit that never sent is never flagged")
    func watchOrderAndNeverSent() {
        var w = SourceSilenceWatch()
        let district = config.unitID("760")!
        let own = config.unitID("27010")!  // 60 minutes, notary-evening calendar
        _ = w.observe(unit: district, occurredAt: t("2022-05-20 08:00"), now: t("2022-05-20 08:00"), config: config)
        // An event at 10:30 (events clock): the district's silence at 10:00 fires first, at 10:00, on time.
        let fired = w.observe(unit: own, occurredAt: t("2022-05-20 10:30"), now: t("2022-05-20 10:30"), config: config)
        #expect(fired.map(\.unit) == ["760"])
        #expect(fmt(fired.first?.firedAt) == "2022-05-20 10:00" && fired.first?.lateFired == false)
        #expect(fmt(w.nextTimerAt) == "2022-05-20 11:30")
        let later = w.advance(to: t("2022-05-27 12:00"), config: config)
        #expect(later.map(\.unit) == ["27010"])
        let reported = Set(fired.map(\.unit) + later.map(\.unit))
        #expect(reported == ["760", "27010"], "units that never sent an event are not reported")
    }

    @Test("an event seen after its unit's silence instant ends that silence; a record fires nothing")
    func eventSeenLate() {
        var w = SourceSilenceWatch()
        let district = config.unitID("760")!
        let other = config.unitID("769")!
        _ = w.observe(unit: district, occurredAt: t("2022-05-20 08:00"), now: t("2022-05-20 08:00"), config: config)
        _ = w.observe(unit: other, occurredAt: t("2022-05-20 08:00"), now: t("2022-05-20 08:00"), config: config)
        // 760's event of 09:50 is read at 10:30, after its silence instant (10:00): not silent. 769 was.
        let fired = w.observe(
            unit: district, occurredAt: t("2022-05-20 09:50"), now: t("2022-05-20 10:30"), config: config)
        #expect(fired.isEmpty, "769's 10:00 is not before the event's 09:50")
        #expect(w.advance(to: t("2022-05-20 10:30"), config: config).map(\.unit) == ["769"])
        // 120 working minutes from 09:50: 100 before lunch, 20 after.
        #expect(w.advance(to: t("2022-05-20 13:19"), config: config).isEmpty)
        #expect(w.advance(to: t("2022-05-20 14:00"), config: config).map(\.unit) == ["760"])
        // record: nothing fires, however late; the stale timer moves on when it comes due.
        var r = SourceSilenceWatch()
        r.record(unit: district, occurredAt: t("2022-05-20 08:00"), config: config)
        r.record(unit: district, occurredAt: t("2022-05-20 09:50"), config: config)
        #expect(r.jump(to: t("2022-05-20 10:30"), config: config).isEmpty)
        #expect(fmt(r.nextTimerAt) == "2022-05-20 13:20")
    }

    @Test("a restored watch neither forgets a unit nor reports a silence twice")
    func watchRestore() {
        var w = SourceSilenceWatch()
        let district = config.unitID("760")!
        let ward = config.unitID("26740")!
        _ = w.observe(unit: district, occurredAt: t("2022-05-20 09:00"), now: t("2022-05-20 09:00"), config: config)
        _ = w.observe(unit: ward, occurredAt: t("2022-05-20 09:00"), now: t("2022-05-20 09:00"), config: config)
        #expect(w.advance(to: t("2022-05-20 12:00"), config: config).map(\.unit) == ["760"])
        let changed = w.takeChangedUnits()
        #expect(changed == [district, ward])
        #expect(w.takeChangedUnits().isEmpty)
        // What a store keeps, given back to a new watch.
        var restored = SourceSilenceWatch()
        for unit in changed {
            let state = w.monitor.state(of: unit)!
            restored.restore(unit: unit, lastEventAt: state.lastEventAt, alerted: state.alerted, config: config)
        }
        #expect(restored.monitor.state(of: district)?.alerted == true)
        // The restart: everything due fires at once, at the restart's instant, marked late-fired.
        let after = restored.jump(to: t("2022-05-23 10:00"), config: config)
        #expect(after.map(\.unit) == ["26740"], "the district was reported before the restart; the ward is due")
        #expect(after.first?.lateFired == true)
        #expect(after.first?.alertId == w.advance(to: t("2022-05-23 10:00"), config: config).first?.alertId)
        // A new event clears the report: the next silence is a new alert.
        _ = restored.observe(
            unit: district, occurredAt: t("2022-05-23 10:00"), now: t("2022-05-23 10:00"), config: config)
        let again = restored.advance(to: t("2022-05-23 14:00"), config: config)
        #expect(again.map(\.unit) == ["760"])
        #expect(again.first.map { fmt($0.thresholdAt) } == "2022-05-23 13:30")
    }

    @Test("replay --source-silence uses the per-block threshold")
    func replayUsesOverrides() throws {
        var ward = EventBuilder()
        ward.dossier = "26740-220520-0001"
        ward.unit = "26740"
        let events = [ward(.received, "2022-05-20 14:00")]
        let options = ReplayOptions(until: t("2022-05-20 23:00"), detectSilence: true)
        let plain = try Replay.run(events: events, config: Fixture.config, options: options)
        #expect(plain.alerts.filter { $0.level == .sourceSilent }.map { fmt($0.firedAt) } == ["2022-05-20 16:00"])
        let quiet = try Replay.run(events: events, config: config, options: options)
        #expect(quiet.alerts.filter { $0.level == .sourceSilent }.isEmpty)
        let monday = try Replay.run(
            events: events, config: config,
            options: ReplayOptions(until: t("2022-05-23 23:00"), detectSilence: true))
        // 480 working minutes from Friday 14:00: 180 on Friday, 240 Monday morning, 60 after lunch.
        #expect(monday.alerts.filter { $0.level == .sourceSilent }.map { fmt($0.firedAt) } == ["2022-05-23 14:00"])
    }
}
