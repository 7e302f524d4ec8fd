import Foundation
import PropertyBased
import Testing

@testable import SameDayCore

/// The rules revision 2 changed (docs/rules.md, "History"): extra sessions, alert levels in order, catalog cut-offs
/// on short days, catalog scope, and the new rollup columns. Deadline cases of §4 live in `DeadlineTests`.
@Suite("Rules revision 2")
struct RevisionTwoTests {
    let config = Fixture.config

    func configuration(alerting: String) throws -> Configuration {
        try Configuration.parse(Fixture.files(replacing: "alerting.json", with: alerting))
    }

    func replay(_ events: [DossierEvent], config: Configuration? = nil, until: String? = nil) throws -> Replay {
        try Replay.run(
            events: events, config: config ?? self.config, options: ReplayOptions(until: until.map(t)))
    }

    // MARK: Alerts (§5)

    @Test("no alert storm: 500 dossiers of a procedure not in the catalog, resolved 40 minutes after reception")
    func noStormForDefaultSla() throws {
        var events: [DossierEvent] = []
        var rng = SplitMix64(seed: 5)
        for k in 0..<500 {
            var b = EventBuilder()
            b.dossier = "760-2205-\(k)"
            b.procedure = "9.999999.000.00.00.H29"
            let day = LocalDate("2022-05-16")!.adding(days: Int64.random(in: 0..<10, using: &rng))
            let at = day.startInstant + Int64.random(in: (7 * 3600)...(18 * 3600), using: &rng) / 60 * 60
            let text = { (i: Instant) in String(RFC3339.format(i).prefix(16)).replacingOccurrences(of: "T", with: " ") }
            events += [b(.received, text(at)), b(.resolved, text(at + 40 * 60), outcome: .approved)]
        }
        let r = try replay(events, until: "2022-06-30 00:00")
        #expect(r.alerts.isEmpty, "\(r.alerts.prefix(3).map(\.level))")
    }

    @Test("levels come in order when a configuration mixes kinds (warning minutes before, critical % used)")
    func levelsInOrderWithMixedRules() throws {
        let cfg = try configuration(
            alerting: #"{"thresholds": {"days": {"warning": {"minutesBefore": 60}, "critical": {"percentUsed": 50}}}}"#)
        let u = cfg.unitID("760")!
        let ref = cfg.procedureRef(Fixture.days3, unit: u)
        let d = cfg.deadline(unit: u, procedure: ref, received: t("2022-05-18 10:00"))  // due Mon 23 10:00
        let s = AlertRules.schedule(
            deadline: d, clock: EpisodeClock(calendar: cfg.calendar(of: u), start: d.start, pauses: []),
            rescheduledTo: nil, thresholds: cfg.thresholds(ref, sla: d.sla))
        // Critical at 720 of 1,440 minutes is Thursday 15:30; warning (60 before the deadline) would be Monday
        // 09:00, after it, so it comes with critical.
        #expect(fmt(s.instants[.critical]) == "2022-05-19 15:30")
        #expect(fmt(s.instants[.warning]) == "2022-05-19 15:30")
        #expect(fmt(s.instants[.overdue]) == "2022-05-23 10:00")
    }

    @Test("a configuration whose warning comes after its critical of the same kind is refused, naming the path")
    func invertedThresholdsRefused() throws {
        for text in [
            #"{"thresholds": {"hours": {"warning": {"percentUsed": 95}, "critical": {"percentUsed": 90}}}}"#,
            #"{"thresholds": {"same-day": {"warning": {"minutesBefore": 20}}}}"#,
            #"{"procedures": {"x": {"critical": {"percentUsed": 10}}}}"#,
        ] {
            #expect {
                _ = try configuration(alerting: text)
            } throws: { e in
                let s = "\(e)"
                return s.hasPrefix("alerting.json:1:") && s.contains(": key \"")
                    && s.contains("would come after critical")
            }
        }
    }

    // MARK: Catalog scope (§2)

    @Test("catalog scope: a unit's own procedure applies to it and its child units only")
    func catalogScope() throws {
        let own = "760.000001"
        for (unit, inCatalog) in [("760", true), ("26740", true), ("769", false), ("000.00.15.H29", false)] {
            let u = config.unitID(unit)!
            let ref = config.procedureRef(own, unit: u)
            #expect((config.catalogEntry(ref) != nil) == inCatalog, "unit \(unit)")
        }
        var a = EventBuilder()
        a.procedure = own
        var b = EventBuilder()
        b.dossier = "769-220518-0001"
        b.unit = "769"
        b.procedure = own
        let r = try replay([a(.received, "2022-05-18 09:00"), b(.received, "2022-05-18 09:00")])
        let day = Rollup.compute(facts: r.facts(), period: .day(LocalDate("2022-05-18")!), config: config)
        #expect(day.units.first { $0.unit == "760" }!.figures.receivedNotInCatalog == 0)
        #expect(day.units.first { $0.unit == "769" }!.figures.receivedNotInCatalog == 1)
    }

    @Test("one procedure code may have a city entry and a unit's own entry; the unit's wins for it")
    func unitEntryBeatsCity() throws {
        let catalog = """
            procedure,name,field,sla,cutoff,scope
            1.000001.000.00.00.H29,Chứng thực bản sao từ bản chính,Chứng thực,same-day,,city
            1.000001.000.00.00.H29,Chứng thực bản sao (Quận 1 trong 4 giờ),Chứng thực,hours:4,,760
            """
        let c = try Configuration.parse(Fixture.files(replacing: "catalog.csv", with: catalog))
        #expect(c.sla(c.procedureRef(Fixture.sameDay, unit: c.unitID("760")!)) == .hours(4))
        #expect(c.sla(c.procedureRef(Fixture.sameDay, unit: c.unitID("769")!)) == .sameDay)
        let twice = catalog + "\n1.000001.000.00.00.H29,Lần nữa,Chứng thực,days:1,,760\n"
        #expect {
            _ = try Configuration.parse(Fixture.files(replacing: "catalog.csv", with: twice))
        } throws: { e in "\(e)".contains("catalog.csv:4: field \"procedure\"") && "\(e)".contains("scope \"760\"") }
    }

    // MARK: Calendars (§2, §7)

    @Test("session objects: bad keys and values are refused with the JSON path")
    func sessionObjectErrors() {
        func calendars(_ tue: String) -> String {
            #"{"calendars": [{"id": "hcmc-standard", "days": {"mon": {"sessions": ["07:30-11:30"]}, "tue": "#
                + tue + "}}, {\"id\": \"hcmc-saturday\", \"base\": \"hcmc-standard\"}, "
                + "{\"id\": \"notary-evening\", \"base\": \"hcmc-standard\"}]}"
        }
        let cases: [(String, String)] = [
            (#"{"sessions": [{"time": "17:00-19:00", "procedures": ["x"]}]}"#, "only an extra session may name"),
            (#"{"sessions": [{"time": "17:00-19:00", "extra": true, "cutoff": "19:30"}]}"#, "must fall inside"),
            (
                #"{"sessions": [{"time": "17:00-19:00", "extra": true, "from": "2022-06-15", "until": "2022-06-01"}]}"#,
                "ends (until) before it starts"
            ),
            (#"{"sessions": [{"time": "17:00-19:00", "extra": "yes"}]}"#, "expected true or false"),
            (#"{"sessions": [{"time": "17:00-19:00", "extra": true, "procedures": []}]}"#, "empty"),
            (#"{"sessions": [{"time": "17:00-19:00", "colour": 1}]}"#, "unknown key"),
        ]
        for (day, message) in cases {
            #expect {
                _ = try Configuration.parse(Fixture.files(replacing: "calendars.json", with: calendars(day)))
            } throws: { e in
                "\(e)".hasPrefix("calendars.json:1:") && "\(e)".contains(": key \"calendars[0].days.tue.sessions[0]")
                    && "\(e)".contains(message)
            }
        }
    }

    @Test("a calendar whose only weekday sessions are extra has no working time for days:N and is refused")
    func extraOnlyCalendarRefused() {
        let cals =
            #"{"calendars": [{"id": "hcmc-standard", "days": {"sat": {"sessions": ["07:30-11:30"], "extra": true}}}]}"#
        #expect {
            _ = try Configuration.parse(Fixture.files(replacing: "calendars.json", with: cals))
        } throws: { e in "\(e)".contains("no weekday has regular sessions") }
    }

    // MARK: Rollups (§6)

    @Test("same_day_resolved_same_day: received and resolved on the calendar day of receipt; not withdrawals")
    func sameDayResolvedSameDay() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "760-220518-0002"
        var c = EventBuilder()
        c.dossier = "760-220518-0003"
        var d = EventBuilder()
        d.dossier = "760-220518-0004"
        d.procedure = "9.999"
        let events = [
            a(.received, "2022-05-18 09:00"), a(.resolved, "2022-05-18 10:00"),  // same day
            b(.received, "2022-05-18 15:30"), b(.resolved, "2022-05-19 09:00"),  // after the cut-off: next day
            c(.received, "2022-05-18 09:00"), c(.withdrawn, "2022-05-18 11:00"),  // withdrawn is no result
            d(.received, "2022-05-18 09:00"), d(.resolved, "2022-05-18 10:00"),  // not in catalog, not same-day
        ]
        let r = try replay(events, until: "2022-05-20 00:00")
        let facts = r.facts()
        let day1 = Rollup.compute(facts: facts, period: .day(LocalDate("2022-05-18")!), config: config)
        let q1 = day1.units.first { $0.unit == "760" }!.figures
        #expect(q1.sameDayReceived == 3)
        #expect(q1.sameDayResolvedInTime == 2)  // a and the withdrawal
        #expect(q1.sameDayResolvedSameDay == 1)
        #expect(q1.receivedNotInCatalog == 1)
        let day2 = Rollup.compute(facts: facts, period: .day(LocalDate("2022-05-19")!), config: config)
        let q2 = day2.units.first { $0.unit == "760" }!.figures
        #expect(q2.sameDayResolvedInTime == 1 && q2.sameDayResolvedSameDay == 0 && q2.receivedNotInCatalog == 0)
        let month = Rollup.compute(
            facts: facts, period: Period(from: LocalDate("2022-05-18")!, to: LocalDate("2022-05-19")!), config: config)
        #expect(month.units.first { $0.unit == "760" }!.figures.sameDayResolvedSameDay == 1)
        #expect(month.identityViolations.isEmpty)
    }

    @Test("stale stopped and supplement-waiting dossiers leave the paused stock as abandoned after 60 days")
    func abandoned() throws {
        var a = EventBuilder()
        var b = EventBuilder()
        b.dossier = "760-220518-0002"
        let events = [
            a(.received, "2022-05-18 09:00"), a(.stopped, "2022-05-18 10:00"),
            b(.received, "2022-05-18 09:00"), b(.supplementRequested, "2022-05-18 10:00"),
            b(.transferred, "2022-06-01 10:00"),  // an event keeps it alive
            b(.supplementReceived, "2022-08-10 09:00"),
        ]
        let facts = try replay(events, until: "2022-08-11 00:00").facts()
        func figures(_ day: String) -> RollupFigures {
            let r = Rollup.compute(facts: facts, period: .day(LocalDate(day)!), config: config)
            #expect(r.identityViolations.isEmpty, "\(day): \(r.identityViolations)")
            return r.units.first { $0.unit == "760" }!.figures
        }
        #expect(figures("2022-07-16").paused == 2)  // 59 days and 14 hours without an event
        let stale = figures("2022-07-17")
        #expect(stale.paused == 1 && stale.abandoned == 1)
        #expect(figures("2022-07-31").abandoned == 2)  // the transfer moved b's clock to 1 June
        let back = figures("2022-08-10")  // the supplement came: running again
        #expect(back.abandoned == 1 && back.inProgressTotal == 1 && back.carriedOver == 2)
        var days: [RollupFigures] = []
        var day = LocalDate("2022-07-15")!
        while day <= LocalDate("2022-08-10")! {
            days.append(figures(day.description))
            day = day.adding(days: 1)
        }
        let period = Rollup.compute(
            facts: facts, period: Period(from: LocalDate("2022-07-15")!, to: LocalDate("2022-08-10")!),
            config: config)
        #expect(RollupFigures.aggregate(days: days) == period.units.first { $0.unit == "760" }!.figures)
    }
}

@Suite("Rules revision 2: properties")
struct RevisionTwoPropertyTests {
    /// A random calendar: up to three sessions per weekday between 06:00 and 21:00, some extra (for every same-day
    /// procedure or for one field), some days with a cut-off; Monday always has a regular session.
    static func randomCalendar(_ rng: inout SplitMix64) -> CalendarDefinition {
        var weekly: [DayDefinition] = []
        for weekday in 0..<7 {
            var sessions: [Session] = []
            var at = Int32(6 * 3600 + 1800 * Int.random(in: 0...6, using: &rng))
            for k in 0..<Int.random(in: (weekday == 0 ? 1 : 0)...3, using: &rng) {
                let length = Int32(1800 * Int.random(in: 1...8, using: &rng))
                guard at + length <= 21 * 3600 else { break }
                let extra = !(weekday == 0 && k == 0) && Int.random(in: 0..<3, using: &rng) == 0
                let procedures = extra && Bool.random(using: &rng) ? ["field:Chứng thực"] : []
                let cutoff: Int32? = extra && Bool.random(using: &rng) ? at + length / 2 : nil
                sessions.append(
                    Session(
                        time: Stretch(start: at, end: at + length), extra: extra, procedures: procedures,
                        cutoff: cutoff))
                at += length + Int32(1800 * Int.random(in: 0...3, using: &rng))
            }
            let cutoff: Int32? = Bool.random(using: &rng) ? sessions.last.map { $0.time.end - 3600 } : nil
            weekly.append(DayDefinition(sessions: sessions, cutoff: cutoff))
        }
        return CalendarDefinition(id: "random", weekly: weekly, dates: [:], holidays: [])
    }

    @Test(
        "for random SLAs, calendars and reception times the levels come in order, and none fires at reception when the whole time is ahead"
    )
    func levelsInOrder() async {
        let slas: [SLA] = [.sameDay, .hours(1), .hours(4), .hours(16), .days(1), .days(2), .days(3), .days(15)]
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let def = Self.randomCalendar(&rng)
            let sla = slas[Int.random(in: 0..<slas.count, using: &rng)]
            let field: String? = Bool.random(using: &rng) ? "Chứng thực" : "Hộ tịch"
            let calendar =
                sla == .sameDay
                ? WorkCalendar(definition: def, serving: def.services(code: "p", field: field))
                : WorkCalendar(definition: def)
            let received = LocalDate("2022-05-16")!.startInstant + Int64.random(in: 0..<(14 * 86_400), using: &rng)
            let catalogCutoff: Int32? = sla == .sameDay && Bool.random(using: &rng) ? 16 * 3600 : nil
            let d = calendar.deadline(sla: sla, received: received, cutoff: catalogCutoff)
            let thresholds = Thresholds.defaults(for: sla.slaClass)
            let s = AlertRules.schedule(
                deadline: d, clock: EpisodeClock(calendar: calendar, start: d.start, pauses: []), rescheduledTo: nil,
                thresholds: thresholds)
            let levels = AlertLevel.clockLevels.map { s.instants[$0] }
            #expect(levels.allSatisfy { $0 != nil })
            let at = levels.compactMap { $0 }
            #expect(at == at.sorted(), "\(sla) received \(RFC3339.format(received)): \(at.map(RFC3339.format))")
            // A level whose threshold leaves working time after T0 does not fire at reception.
            for (level, rule) in [(AlertLevel.warning, thresholds.warning), (.critical, thresholds.critical)]
            where rule.offset(dueOffset: d.dueOffset) > 0 {
                #expect(s.instants[level]! > d.start, "\(level) of \(sla) fires at reception")
            }
            #expect(s.instants[.overdue]! == d.due || d.dueOffset == 0)
        }
    }

    @Test("rollup identities hold with abandoned dossiers (staleAfterDays 1) and days add up to the period")
    func rollupIdentitiesWithAbandoned() async throws {
        var alerting = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self)
        alerting = alerting.replacingOccurrences(of: #""defaultSla""#, with: #""staleAfterDays": 1, "defaultSla""#)
        let config = try Configuration.parse(Fixture.files(replacing: "alerting.json", with: alerting))
        #expect(config.alerting.staleAfterDays == 1)
        /// Checks every daily rollup and the period; returns how many dossier-days were abandoned.
        @Sendable func check(seed: UInt64, days: Int) throws -> Int {
            let first = LocalDate("2022-05-13")!.adding(days: Int64(seed % 7))
            let events = SyntheticMonth(firstDay: first, days: days, dossiersPerUnitPerDay: 12, seed: seed).events(
                config: config)
            let facts = try Replay.run(events: events, config: config, options: ReplayOptions()).facts()
            let daily = checkDailyRollups(facts: facts, first: first, days: days + 4, config: config)
            let abandoned = daily.reduce(0) { $0 + $1.blocks.last!.figures.abandoned }
            return abandoned
        }
        await propertyCheck(count: 8, input: Gen.uint64(), Gen.int(in: 2...5)) { seed, days in
            _ = try check(seed: seed, days: days)
        }
        // The generator stops some dossiers and leaves some waiting for a supplement: with one stale day, some
        // of them are abandoned, so the identities above were checked with the column in play.
        #expect(try check(seed: 2022, days: 5) > 0)
    }
}
