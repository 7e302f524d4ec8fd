import Foundation
import PropertyBased
import Testing

@testable import SameDayCore

/// A random but valid-looking life of one dossier (with the odd contradiction), events at distinct minutes.
func scenario(seed: UInt64, procedures: [String]) -> [DossierEvent] {
    var rng = SplitMix64(seed: seed)
    var b = EventBuilder()
    b.dossier = "760-2205-\(seed % 10_000)"
    b.procedure = procedures[Int.random(in: 0..<procedures.count, using: &rng)]
    let day = LocalDate("2022-05-16")!.adding(days: Int64.random(in: 0..<12, using: &rng))
    var at = day.startInstant + Int64.random(in: 7 * 3600...(17 * 3600 + 1800), using: &rng) / 60 * 60
    func stamp() -> String {
        defer { at += 60 * Int64.random(in: 1...10, using: &rng) }
        return String(RFC3339.format(at).prefix(16)).replacingOccurrences(of: "T", with: " ")
    }
    var events = [b(.received, stamp(), channel: [.direct, .online, .postal][Int.random(in: 0..<3, using: &rng)])]
    let steps: [EventType] = [
        .feeRequested, .feePaid, .supplementRequested, .supplementReceived, .rescheduled, .transferred, .resolved,
        .withdrawn, .stopped, .returned, .received,
    ]
    for _ in 0..<Int.random(in: 0...6, using: &rng) {
        let type = steps[Int.random(in: 0..<steps.count, using: &rng)]
        let s = stamp()
        events.append(
            b(
                type, s, outcome: type == .resolved ? .approved : nil,
                newDue: type == .rescheduled
                    ? String(RFC3339.format(at + 5 * 86_400).prefix(16)).replacingOccurrences(of: "T", with: " ") : nil)
        )
    }
    return events
}

/// Shuffles and duplicates some events, deterministically from `seed`.
func shuffledWithDuplicates(_ events: [DossierEvent], seed: UInt64) -> [DossierEvent] {
    var rng = SplitMix64(seed: seed)
    var out = events
    for e in events where Bool.random(using: &rng) { out.append(e) }
    out.shuffle(using: &rng)
    return out
}

func summary(_ st: DossierState) -> String {
    "\(st.status) \(st.unit as Any) \(st.procedure as Any) \(st.channel as Any) \(st.firstReceivedAt as Any) \(st.episodes) \(st.closure as Any) \(st.classification as Any) \(st.judgingDue as Any) \(st.anomalies) \(st.segments)"
}

/// Checks the identities of every daily rollup of `days` days from `first` and of the whole period, and that the
/// daily rows add up to the period's; returns the daily rollups.
@discardableResult
func checkDailyRollups(facts: [DossierFacts], first: LocalDate, days: Int, config: Configuration) -> [Rollup] {
    var daily: [Rollup] = []
    for k in 0..<days {
        let r = Rollup.compute(facts: facts, period: .day(first.adding(days: Int64(k))), config: config)
        #expect(r.identityViolations.isEmpty, "\(r.identityViolations)")
        daily.append(r)
    }
    let whole = Rollup.compute(
        facts: facts, period: Period(from: first, to: first.adding(days: Int64(days - 1))), config: config)
    #expect(whole.identityViolations.isEmpty)
    for (i, row) in whole.units.enumerated() {
        #expect(RollupFigures.aggregate(days: daily.map { $0.units[i].figures }) == row.figures, "unit \(row.unit)")
    }
    return daily
}

@Suite("Properties")
struct PropertyTests {
    let config = Fixture.config

    @Test("any permutation and duplication of a dossier's events gives the same state and classification")
    func permutationInvariance() async {
        await propertyCheck(count: 300, input: Gen.uint64(), Gen.uint64()) { s1, s2 in
            let events = scenario(
                seed: s1, procedures: [Fixture.sameDay, Fixture.days1, Fixture.days3, Fixture.hours4, "unlisted"])
            var a = Dossier(code: events[0].dossier)
            var b = a
            let last = events.map(\.occurredAt).max()!
            for e in events { _ = try a.apply(e, now: e.occurredAt, config: config) }
            for e in shuffledWithDuplicates(events, seed: s2) { _ = try b.apply(e, now: last, config: config) }
            #expect(summary(a.state(config: config)) == summary(b.state(config: config)))
            #expect(a.facts(config: config) == b.facts(config: config))
            #expect(a.eventCount == events.count)
        }
    }

    @Test("same alerts in any order when all events arrive before the first threshold")
    func alertInvariance() async {
        await propertyCheck(count: 300, input: Gen.uint64(), Gen.uint64()) { s1, s2 in
            let events = scenario(seed: s1, procedures: [Fixture.days3, Fixture.hours4])
            let now = events.map(\.occurredAt).max()!
            let end = t("2022-07-01 00:00")
            func run(_ list: [DossierEvent]) throws -> [Alert] {
                var d = Dossier(code: list[0].dossier)
                var alerts: [Alert] = []
                for e in list { alerts += try d.apply(e, now: now, config: config).alerts }
                alerts += d.advance(to: end, config: config).alerts
                return alerts
            }
            let inOrder = try run(events)
            #expect(try run(shuffledWithDuplicates(events, seed: s2)) == inOrder)
        }
    }

    @Test("rollup identities hold on random event streams; daily rollups add up to the period")
    func rollupIdentities() async {
        await propertyCheck(count: 12, input: Gen.uint64(), Gen.int(in: 1...3)) { seed, days in
            let first = LocalDate("2022-05-13")!.adding(days: Int64(seed % 7))
            let events = SyntheticMonth(firstDay: first, days: days, dossiersPerUnitPerDay: 3, seed: seed).events(
                config: config)
            let replay = try Replay.run(events: events, config: config, options: ReplayOptions())
            _ = checkDailyRollups(facts: replay.facts(), first: first, days: days + 3, config: config)
        }
    }

    @Test("rendering is stable: same facts in any order give byte-identical files")
    func renderingStable() async throws {
        let events = SyntheticMonth(firstDay: LocalDate("2022-05-16")!, days: 2, seed: 7).events(config: config)
        let facts = try Replay.run(events: events, config: config, options: ReplayOptions()).facts()
        try #require(!facts.isEmpty, "two days of synthetic events give facts to render")
        let period = Period.day(LocalDate("2022-05-16")!)
        let reference = Rollup.compute(facts: facts, period: period, config: config)
        await propertyCheck(count: 20, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let r = Rollup.compute(facts: facts.shuffled(using: &rng), period: period, config: config)
            #expect(r.unitsCSV() == reference.unitsCSV())
            #expect(r.blocksCSV() == reference.blocksCSV())
            #expect(r.unitsJSON() == reference.unitsJSON())
            #expect(r.blocksJSON() == reference.blocksJSON())
        }
    }
}

@Suite("Event encoding properties")
struct EventRoundTripTests {
    /// Characters that exercise every escape path: quotes, backslashes, controls, multi-byte and astral scalars.
    static let alphabet: [Character] = Array("aZ09-._/ \"\\\n\r\t\u{01}\u{1F}ăờđ𝄞😀\u{7F}")

    static func randomString(_ rng: inout SplitMix64, max: Int) -> String {
        var s = ""
        let n = Int.random(in: 1...max, using: &rng)
        while s.utf8.count < n {
            let c = alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
            if s.utf8.count + String(c).utf8.count > max { break }
            s.append(c)
        }
        return s.isEmpty ? "x" : s
    }

    @Test("encode then decode gives the same event, for any strings and times")
    func roundTrip() async {
        await propertyCheck(count: 500, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let type = EventType.allCases[Int.random(in: 0..<EventType.allCases.count, using: &rng)]
            let e = DossierEvent(
                eventId: Self.randomString(&rng, max: 128), dossier: Self.randomString(&rng, max: 64),
                unit: Self.randomString(&rng, max: 64), procedure: Self.randomString(&rng, max: 64), type: type,
                occurredAt: Int64.random(in: 0...4_000_000_000, using: &rng),
                seq: Bool.random(using: &rng) ? Int64.random(in: 0...Int64.max, using: &rng) : nil,
                channel: type == .received ? Channel.allCases.randomElement(using: &rng) : nil,
                outcome: type == .resolved ? Outcome.allCases.randomElement(using: &rng) : nil,
                newDueAt: type == .rescheduled ? Int64.random(in: 0...4_000_000_000, using: &rng) : nil,
                source: Self.randomString(&rng, max: 128))
            let text = e.encoded()
            let back = try DossierEvent.decode(text)
            #expect(back == e)
            #expect(!text.contains("\n"))  // one event, one line
        }
    }
}
