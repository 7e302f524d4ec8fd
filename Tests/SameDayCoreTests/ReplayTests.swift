import Testing

@testable import SameDayCore

@Suite("Replay on a virtual clock")
struct ReplayTests {
    let config = Fixture.config

    @Test("alerts fire at their thresholds on the virtual clock, not late, and resolution alerts follow")
    func firesOnTime() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "26740-220520-0001"
        b.unit = "26740"
        let events = [
            a(.received, "2022-05-20 14:00"), b(.received, "2022-05-20 14:30"),
            a(.resolved, "2022-05-20 16:40", outcome: .approved),
        ]
        let r = try Replay.run(events: events, config: config, options: ReplayOptions(until: t("2022-05-23 12:00")))
        let got = r.alerts.map {
            "\($0.dossier) \($0.level.name) \(fmt($0.firedAt)) \($0.minutesLeft ?? 0) \($0.lateFired)"
        }
        #expect(
            got == [
                "760-220518-0001 warning 2022-05-20 15:30 90 false",
                "26740-220520-0001 warning 2022-05-20 15:30 90 false",
                "760-220518-0001 critical 2022-05-20 16:30 30 false",
                "26740-220520-0001 critical 2022-05-20 16:30 30 false",
                "760-220518-0001 cleared 2022-05-20 16:40 20 false",
                "26740-220520-0001 overdue 2022-05-20 17:00 0 false",
                "26740-220520-0001 escalated 2022-05-23 08:30 -60 false",
            ])
        #expect(r.alerts[1].recipients == ["phuong@example.vn"])
        #expect(r.alerts.first!.jsonLine().hasPrefix(#"{"alertId":""#))
    }

    @Test("arrival order: an event older than the clock is applied late and its missed alerts are late-fired")
    func arrivalOrderLateEvent() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "760-220520-0002"
        let events = [b(.received, "2022-05-20 16:50"), a(.received, "2022-05-20 14:00")]
        let r = try Replay.run(
            events: events, config: config, options: ReplayOptions(arrivalOrder: true, until: t("2022-05-20 16:59")))
        let mine = r.alerts.filter { $0.dossier == "760-220518-0001" }
        #expect(mine.map(\.level) == [.warning, .critical])
        #expect(mine.allSatisfy { $0.lateFired && $0.firedAt == t("2022-05-20 16:50") })
    }

    @Test("source_silent fires once a unit has been quiet for 120 working minutes")
    func sourceSilence() throws {
        var a = EventBuilder()
        let r = try Replay.run(
            events: [a(.received, "2022-05-20 14:00")], config: config,
            options: ReplayOptions(until: t("2022-05-20 23:00"), detectSilence: true))
        let silent = r.alerts.filter { $0.level == .sourceSilent }
        #expect(silent.count == 1)
        #expect(silent.first.map { fmt($0.firedAt) } == "2022-05-20 16:00")
        #expect(silent.first?.unit == "760")
    }

    @Test("stopped dossiers stay in the paused bucket and are carried over; refused ones are never counted")
    func stoppedAndRefused() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "760-220518-0002"
        var c = EventBuilder()
        c.dossier = "760-220518-0003"
        c.procedure = Fixture.days3
        let events = [
            a(.received, "2022-05-18 09:00"), a(.stopped, "2022-05-18 10:00"),
            b(.submitted, "2022-05-18 08:00"), b(.refused, "2022-05-18 09:00"),
            c(.received, "2022-05-18 09:00"), c(.feeRequested, "2022-05-18 10:00"),
        ]
        let r = try Replay.run(events: events, config: config, options: ReplayOptions())
        let day1 = Rollup.compute(facts: r.facts(), period: .day(LocalDate("2022-05-18")!), config: config)
        let q1 = day1.units.first { $0.unit == "760" }!.figures
        #expect(q1.receivedTotal == 2 && q1.paused == 2 && q1.resolvedTotal == 0)
        let day2 = Rollup.compute(facts: r.facts(), period: .day(LocalDate("2022-05-19")!), config: config)
        let q2 = day2.units.first { $0.unit == "760" }!.figures
        #expect(q2.carriedOver == 2 && q2.paused == 2)
        #expect(day2.identityViolations.isEmpty)
    }
}
