import Foundation
import Testing

@testable import SameDayCore

/// Generated once per scenario at a small scale and shared by the tests (generation and replay take a few seconds
/// in a debug build).
private let small = 0.02
private let seedEvents: [DossierEvent] = try! SeedMonth(scenario: .seed, scale: small).events(config: hcmc)
private let realisticEvents: [DossierEvent] = try! SeedMonth(scenario: .realistic, scale: small).events(
    config: hcmc)

private func blocks(_ events: [DossierEvent]) throws -> [Block?: RollupFigures] {
    let replay = try Replay.run(events: events, config: hcmc, options: ReplayOptions())
    let rollup = Rollup.compute(facts: replay.facts(), period: SeedMonth.period, config: hcmc)
    return Dictionary(uniqueKeysWithValues: rollup.blocks.map { ($0.block, $0.figures) })
}

@Suite("The seed's month (seed-2022, realistic)")
struct SeedMonthTests {
    @Test("same seed, same bytes; another seed, other bytes")
    func deterministic() throws {
        let a = try SeedMonth(scenario: .realistic, scale: 0.005, seed: 7).events(config: hcmc)
        let b = try SeedMonth(scenario: .realistic, scale: 0.005, seed: 7).events(config: hcmc)
        let c = try SeedMonth(scenario: .realistic, scale: 0.005, seed: 8).events(config: hcmc)
        #expect(a.map { $0.encoded() } == b.map { $0.encoded() })
        #expect(a.map { $0.encoded() } != c.map { $0.encoded() })
    }

    @Test("each block's same-day dossiers resolved within the day are round(seed × scale), through the replay")
    func exactPerBlock() throws {
        for events in [seedEvents, realisticEvents] {
            let figures = try blocks(events)
            for b in Block.allCases {
                #expect(figures[b]?.sameDayResolvedSameDay == SeedMonth.sameDayTarget(b, scale: small), "\(b)")
            }
            let total = Block.allCases.map { SeedMonth.sameDayTarget($0, scale: small) }.reduce(0, +)
            #expect(figures[nil]?.sameDayResolvedSameDay == total)
        }
        // The seed scenario: nothing late, and every same-day dossier is one of the seed's.
        let seed = try blocks(seedEvents)
        #expect(seed[nil]?.resolvedLate == 0)
        #expect(seed[nil]?.onTimeRate == "100.0")
        #expect(seed[nil]?.sameDayReceived == seed[nil]?.sameDayResolvedSameDay)
        // Realistic: late and withdrawn dossiers exist, on top of the seed's.
        let realistic = try blocks(realisticEvents)
        #expect((realistic[nil]?.resolvedLate ?? 0) > 0)
        #expect((realistic[nil]?.withdrawn ?? 0) > 0)
        #expect((realistic[nil]?.sameDayReceived ?? 0) > (realistic[nil]?.sameDayResolvedSameDay ?? 0))
    }

    @Test("at scale 1 the targets are the seed's figures")
    func scaleOneTargets() {
        for b in Block.allCases {
            #expect(SeedMonth.sameDayTarget(b, scale: 1) == SeedFigures.sameDayResolvedSameDay[b])
        }
        #expect(Block.allCases.map { SeedMonth.sameDayTarget($0, scale: 1) }.reduce(0, +) == 694_309)
    }

    @Test("receptions fall inside the sessions that serve the procedure, none in the lunch break")
    func receptionsInSessions() throws {
        var saturdays = 0
        for e in seedEvents + realisticEvents where e.type == .received {
            let unit = try #require(hcmc.unitID(e.unit))
            let ref = hcmc.procedureRef(e.procedure, unit: unit)
            let day = LocalTime.day(of: e.occurredAt)
            let sod = Int32(e.occurredAt - LocalTime.start(ofDay: day))
            let sched = hcmc.workingCalendar(unit: unit, procedure: ref).schedule(ofDay: day)
            #expect(sched.stretches.contains { sod >= $0.start && sod < $0.end }, "\(e.dossier) at \(sod)")
            #expect(!(sod >= 11 * 3600 + 1800 && sod < 13 * 3600), "\(e.dossier) in the lunch break")
            if hcmc.sla(ref) == .sameDay {
                let dl = hcmc.deadline(unit: unit, procedure: ref, received: e.occurredAt)
                // The seed's dossiers come before the cut-off; so do the realistic extras.
                #expect(!dl.afterCutoff, "\(e.dossier)")
            } else {
                // Non-same-day dossiers only in regular sessions.
                #expect(
                    hcmc.calendar(of: unit).schedule(ofDay: day).stretches.contains { sod >= $0.start && sod < $0.end })
            }
            if LocalTime.weekday(ofDay: day) == 5 { saturdays += 1 }
        }
        #expect(saturdays > 0, "Saturday-morning units receive on Saturdays")
    }

    @Test("procedures are ones the unit's block handles and its catalog scope allows")
    func proceduresInScope() throws {
        var verticalSameDay = 0
        for e in seedEvents where e.type == .received {
            let unit = try #require(hcmc.unitID(e.unit))
            if e.procedure == SeedMonth.notInCatalogProcedure { continue }
            guard case .catalog(let i) = hcmc.procedureRef(e.procedure, unit: unit) else {
                Issue.record("\(e.procedure) is not in the catalog for \(e.unit)")
                continue
            }
            #expect(SeedMonth.handles(entry: Int(i), unit: unit, config: hcmc), "\(e.procedure) at \(e.unit)")
            let u = hcmc.unit(unit)
            if u.block == .commune { #expect(!e.procedure.hasPrefix("2.000992"), "translator's signature at a ward") }
            if u.block == .vertical && hcmc.catalog[Int(i)].sla == .sameDay { verticalSameDay += 1 }
        }
        #expect(verticalSameDay > 0)
        // Quận 1's own procedure reaches its wards only; HEPZA's stays at HEPZA.
        let own = hcmc.catalog.firstIndex { $0.procedure.hasPrefix("2.000908") }!
        #expect(SeedMonth.handles(entry: own, unit: hcmc.unitID("26740")!, config: hcmc))
        #expect(!SeedMonth.handles(entry: own, unit: hcmc.unitID("27010")!, config: hcmc))
    }

    @Test("a district receives far more than a ward; Thủ Đức more than a typical district")
    func weighted() throws {
        var perUnit: [String: Int] = [:]
        for e in seedEvents where e.type == .received { perUnit[e.unit, default: 0] += 1 }
        let units = hcmc.units
        let districts = units.filter { $0.block == .district }.map { perUnit[$0.code] ?? 0 }
        let wards = units.filter { $0.block == .commune }.map { perUnit[$0.code] ?? 0 }
        #expect(districts.min()! > wards.max()!)
        let median = districts.sorted()[districts.count / 2]
        #expect(Double(perUnit["769"]!) > 1.5 * Double(median))
    }

    @Test("fair days at the export-processing-zones board are busier than its other weekdays")
    func fairDays() throws {
        var perDay: [Int64: Int] = [:]
        for e in seedEvents where e.type == .received && e.unit == "000.00.82.H29" {
            perDay[LocalTime.day(of: e.occurredAt), default: 0] += 1
        }
        let fair = Set(
            ["2022-05-18", "2022-05-25", "2022-06-01", "2022-06-08", "2022-06-15"].map { LocalDate($0)!.dayNumber })
        let onFair = perDay.filter { fair.contains($0.key) }.map(\.value)
        let others = perDay.filter { !fair.contains($0.key) }.map(\.value)
        #expect(onFair.count == 5)
        let fairMean = Double(onFair.reduce(0, +)) / Double(onFair.count)
        let otherMean = Double(others.reduce(0, +)) / Double(max(1, others.count))
        #expect(fairMean > 2 * otherMean)
    }

    @Test(
        "events are in arrival order: occurrence order for seed-2022; realistic has out-of-order receptions and duplicates"
    )
    func ordering() {
        #expect(zip(seedEvents, seedEvents.dropFirst()).allSatisfy { $0.occurredAt <= $1.occurredAt })
        #expect(Set(seedEvents.map(\.eventId)).count == seedEvents.count)
        #expect(!zip(realisticEvents, realisticEvents.dropFirst()).allSatisfy { $0.occurredAt <= $1.occurredAt })
        #expect(Set(realisticEvents.map(\.eventId)).count < realisticEvents.count)
    }
}
