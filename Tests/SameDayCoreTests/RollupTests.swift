import Foundation
import Testing

@testable import SameDayCore

@Suite("Rollups and replay")
struct RollupTests {
    let config = Fixture.config

    @Test("a generated month replays into rollups whose blocks are the sum of their units")
    func generatedMonth() throws {
        let first = LocalDate("2022-05-15")!
        let events = SyntheticMonth(firstDay: first, days: 32, dossiersPerUnitPerDay: 5, seed: 2022).events(
            config: config)
        #expect(events.count > 1000)
        let replay = try Replay.run(events: events, config: config, options: ReplayOptions())
        let facts = replay.facts()
        var totalReceived = 0
        for k in 0..<32 {
            let r = Rollup.compute(facts: facts, period: .day(first.adding(days: Int64(k))), config: config)
            #expect(r.identityViolations.isEmpty, "\(r.identityViolations)")
            for b in r.blocks where b.block != nil {
                let sum = r.units.filter { $0.block == b.block }.reduce(RollupFigures()) { $0 + $1.figures }
                #expect(sum == b.figures)
            }
            totalReceived += r.blocks.last!.figures.receivedOnline + r.blocks.last!.figures.receivedDirectPostal
        }
        // Counted on T0's day: an arrival after the last day's close counts on the day after the month.
        let end = first.adding(days: 32).startInstant
        #expect(totalReceived == facts.filter { $0.countedAt >= first.startInstant && $0.countedAt < end }.count)
        #expect(facts.contains { LocalTime.day(of: $0.countedAt) != LocalTime.day(of: $0.receivedAt) })
        #expect(!replay.alerts.isEmpty)
        // Deterministic: a second run gives the same alerts.
        let again = try Replay.run(events: events, config: config, options: ReplayOptions())
        #expect(again.alerts == replay.alerts)
    }

    @Test("a dossier counts on its T0's day: an evening or Sunday arrival belongs to the next working day")
    func receptionsCountOnTheirT0Day() throws {
        // Friday 20 May 2022 at 21:00, online; resolved Monday 09:00: received and resolved within Monday.
        var evening = EventBuilder()
        evening.dossier = "760-220520-0001"
        // Sunday 22 May 10:00, direct; resolved Monday 10:00: the same.
        var sunday = EventBuilder()
        sunday.dossier = "760-220522-0002"
        // Friday 20 May 16:00 (after the 15:00 cut-off, in a session): counts on Friday, resolved Monday: not same-day.
        var afterCutoff = EventBuilder()
        afterCutoff.dossier = "760-220520-0003"
        let events = [
            evening(.received, "2022-05-20 21:00", channel: .online), evening(.resolved, "2022-05-23 09:00"),
            sunday(.received, "2022-05-22 10:00"), sunday(.resolved, "2022-05-23 10:00"),
            afterCutoff(.received, "2022-05-20 16:00"), afterCutoff(.resolved, "2022-05-23 09:30"),
        ]
        let facts = try Replay.run(events: events, config: config, options: ReplayOptions()).facts()
        func figures(_ day: String) -> RollupFigures {
            Rollup.compute(facts: facts, period: .day(LocalDate(day)!), config: config).units.first {
                $0.unit == "760"
            }!
            .figures
        }
        let friday = figures("2022-05-20")
        #expect(friday.receivedOnline == 0 && friday.receivedDirectPostal == 1 && friday.sameDayReceived == 1)
        for day in ["2022-05-21", "2022-05-22"] {
            let weekend = figures(day)
            #expect(weekend.receivedOnline + weekend.receivedDirectPostal == 0, "nothing received on \(day)")
            #expect(weekend.carriedOver == 1 && weekend.receivedTotal == 1, "the after-cut-off one, carried over")
        }
        let monday = figures("2022-05-23")
        #expect(monday.receivedOnline == 1 && monday.receivedDirectPostal == 1 && monday.carriedOver == 1)
        #expect(monday.sameDayReceived == 2 && monday.sameDayResolvedSameDay == 2)
        #expect(monday.identityViolations.isEmpty)
        // The period sums the same way, and the worker's ledger (day by day, from changes) agrees with it.
        let period = Rollup.compute(
            facts: facts, period: Period(from: LocalDate("2022-05-20")!, to: LocalDate("2022-05-23")!), config: config)
        let q1 = period.units.first { $0.unit == "760" }!.figures
        #expect(q1.receivedTotal == 3 && q1.sameDayResolvedSameDay == 2)
        var ledger = RollupLedger(config: config, windowDays: 62)
        let first = LocalDate("2022-05-20")!.dayNumber
        ledger.cover(firstDay: first, lastDay: first + 3, clockDay: first + 3) { DossierFactsByCode().values }
        for f in facts { ledger.change(from: nil, to: f, since: first) }
        for day in first...(first + 3) {
            let computed = Rollup.compute(facts: facts, period: .day(LocalDate(dayNumber: day)), config: config)
            #expect(ledger.rollup(day: day)?.units == computed.units, "day \(LocalDate(dayNumber: day))")
        }
    }

    @Test("arrival order: the same final facts however the events arrive")
    func arrivalOrder() throws {
        let events = SyntheticMonth(firstDay: LocalDate("2022-05-16")!, days: 3, seed: 11).events(config: config)
        var rng = SplitMix64(seed: 5)
        let shuffled = events.shuffled(using: &rng)
        let a = try Replay.run(events: events, config: config, options: ReplayOptions())
        let b = try Replay.run(events: shuffled, config: config, options: ReplayOptions(arrivalOrder: true))
        let fa = Dictionary(uniqueKeysWithValues: a.dossiers.map { ($0.code, $0.facts(config: config)) })
        let fb = Dictionary(uniqueKeysWithValues: b.dossiers.map { ($0.code, $0.facts(config: config)) })
        #expect(fa == fb)
        // Alerts may fire late, but never twice.
        let ids = b.alerts.map(\.alertId)
        #expect(Set(ids).count == ids.count)
    }

    @Test(
        "CSV bytes as the strings would read: figures as String(value), rates with one decimal, quoted keys, the simulated label"
    )
    func csvBytes() throws {
        for value in [0, 7, 10, 99, 12_345, -1, -305, Int.max, Int.min] {
            var bytes: [UInt8] = []
            Rollup.appendDecimal(value, to: &bytes)
            #expect(bytes == Array(String(value).utf8))
        }
        var figures = RollupFigures()
        figures.resolvedEarly = 1
        figures.resolvedOnTime = 1
        figures.resolvedLate = 1
        #expect(figures.onTimeRate == "66.7")
        figures.resolvedLate = 0
        #expect(figures.onTimeRate == "100.0")
        figures.resolvedOnTime = 0
        figures.resolvedLate = 2
        #expect(figures.onTimeRate == "33.3")
        for key in ["a,b", "say \"hi\"", "\u{FEFF}x", "line\nbreak", "Quận 1", ""] {
            var bytes: [UInt8] = []
            CSV.appendEscaped(key, to: &bytes)
            #expect(bytes == Array(CSV.escape(key).utf8))
        }
        var b = EventBuilder()
        let events = [b(.received, "2022-05-18 09:00"), b(.resolved, "2022-05-18 10:00")]
        let replay = try Replay.run(events: events, config: config, options: ReplayOptions())
        var rollup = Rollup.compute(facts: replay.facts(), period: .day(LocalDate("2022-05-18")!), config: config)
        rollup.simulated = true
        let lines = String(decoding: rollup.blocksCSV(headers: .en), as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines[0].hasSuffix(",on_time_rate,data"))
        #expect(lines[5] == "2022-05-18,2022-05-18,all,1,0,1,0,1,0,1,0,0,0,0,0,0,0,1,1,1,0,0,100.0,simulated")
        #expect(lines.last == "")
    }

    @Test("CSV header, BOM, key columns, rate with one decimal and empty when nothing resolved")
    func rendering() throws {
        var b = EventBuilder()
        let events = [
            b(.received, "2022-05-18 09:00", channel: .online), b(.resolved, "2022-05-18 10:00"),
        ]
        var c = EventBuilder()
        c.dossier = "760-220518-0002"
        let more = [c(.received, "2022-05-18 09:00"), c(.resolved, "2022-05-20 10:00")]
        let replay = try Replay.run(events: events + more, config: config, options: ReplayOptions())
        let r = Rollup.compute(facts: replay.facts(), period: .day(LocalDate("2022-05-18")!), config: config)
        let csv = String(decoding: r.unitsCSV(), as: UTF8.self)
        #expect(r.unitsCSV().starts(with: [0xEF, 0xBB, 0xBF]))
        let lines = csv.dropFirst().components(separatedBy: "\r\n")
        #expect(
            lines[0]
                == "from,to,unit,unit_name,block,received_total,received_online,received_direct_postal,carried_over,resolved_total,resolved_early,resolved_on_time,resolved_late,withdrawn,in_progress_total,in_progress_on_time,in_progress_overdue,paused,abandoned,same_day_received,same_day_resolved_in_time,same_day_resolved_same_day,received_not_in_catalog,received_promise_differs,on_time_rate"
        )
        #expect(lines.contains("2022-05-18,2022-05-18,760,Quận 1,district,2,1,1,0,1,0,1,0,0,1,0,1,0,0,2,1,1,0,0,100.0"))
        #expect(
            lines.contains(
                "2022-05-18,2022-05-18,27010,\"Phường Tân Sơn Nhì, Quận Tân Phú\",commune,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
            ))
        let blocks = String(decoding: r.blocksCSV(), as: UTF8.self).components(separatedBy: "\r\n")
        #expect(blocks[1].hasPrefix("2022-05-18,2022-05-18,commune,"))
        #expect(blocks[5].hasPrefix("2022-05-18,2022-05-18,all,2,"))
        let json = String(decoding: r.unitsJSON(), as: UTF8.self)
        #expect(json.contains(#""unit":"760","unit_name":"Quận 1","block":"district","received_total":2"#))
        #expect(json.contains(#""on_time_rate":100.0}"#))
        #expect(json.contains(#""on_time_rate":null}"#))
        // The next day: the late one is resolved late, carried over from the 18th.
        let r2 = Rollup.compute(facts: replay.facts(), period: .day(LocalDate("2022-05-20")!), config: config)
        let q1 = r2.units.first { $0.unit == "760" }!.figures
        #expect(q1.carriedOver == 1 && q1.resolvedLate == 1 && q1.onTimeRate == "0.0")
        var f = RollupFigures()
        f.resolvedEarly = 1
        f.resolvedOnTime = 1
        f.resolvedLate = 1
        #expect(f.onTimeRate == "66.7")
    }
}
