import Foundation
import Testing

@testable import SameDayCore

@Suite("Queue forecast (at_risk)")
struct QueueForecastTests {
    /// Dossier `n` of a day at unit 760: received at `received`, resolved at `resolved`.
    func dossier(_ day: String, _ n: Int, received: Instant, resolved: Instant) -> [DossierEvent] {
        let code = "760-\(day)-\(n)"
        return [
            DossierEvent(
                eventId: code + "#1", dossier: code, unit: "760", procedure: Fixture.sameDay, type: .received,
                occurredAt: received, channel: .direct, source: "test"),
            DossierEvent(
                eventId: code + "#2", dossier: code, unit: "760", procedure: Fixture.sameDay, type: .resolved,
                occurredAt: resolved, outcome: .approved, source: "test"),
        ]
    }

    /// A week at twelve an hour with a short queue, then Monday afternoon: sixty dossiers between 13:00 and 14:00,
    /// served in order at the same pace, so the last thirteen end after the 17:00 close.
    func congestedAfternoon() -> [DossierEvent] {
        var events: [DossierEvent] = []
        for day in ["2022-05-09", "2022-05-10", "2022-05-11", "2022-05-12", "2022-05-13"] {
            for i in 0..<20 {
                let at = t("\(day) 08:00") + Int64(i) * 300
                events += dossier(day, i, received: at, resolved: at + 300)
            }
        }
        for i in 0..<60 {
            events += dossier(
                "2022-05-16", i, received: t("2022-05-16 13:00") + Int64(i) * 60,
                resolved: t("2022-05-16 13:05") + Int64(i) * 300)
        }
        return events
    }

    @Test("a queue the unit cannot clear by the close is flagged by 14:00, hours before warning; the head is not")
    func flagsTheTailEarly() throws {
        let replay = try Replay.run(
            events: congestedAfternoon(), config: Fixture.config,
            options: ReplayOptions(forecast: QueueForecast.Settings()))
        let alerts = replay.alerts
        func first(_ level: AlertLevel, _ n: Int) -> Alert? {
            alerts.first { $0.level == level && $0.dossier == "760-2022-05-16-\(n)" }
        }
        // Served in order at 13:05 + 5 min × n: from n = 48 on, after 17:00.
        for n in 48..<60 { #expect(first(.atRisk, n) != nil, "dossier \(n) ends late and was not flagged") }
        for n in 0..<30 { #expect(first(.atRisk, n) == nil, "dossier \(n) ends by 15:30 and was flagged") }
        let last = try #require(first(.atRisk, 59))
        #expect(last.firedAt <= t("2022-05-16 14:00"))
        let warning = try #require(first(.warning, 59))
        #expect((last.minutesLeft ?? 0) >= (warning.minutesLeft ?? 0) + 60)
        // The payload says why: the predicted completion (after the close) and the queue ahead.
        #expect((last.predictedAt ?? 0) > t("2022-05-16 17:00"))
        #expect((last.queueAhead ?? 0) > 30)
        let line = last.jsonLine()
        #expect(
            line.contains("\"level\":\"at_risk\"") && line.contains("\"predictedAt\":")
                && line.contains("\"queueAhead\":"))
        // One at_risk per dossier and episode.
        #expect(alerts.filter { $0.level == .atRisk && $0.dossier == "760-2022-05-16-59" }.count == 1)
        // And it ranks below warning.
        #expect(AlertLevel.atRisk < .warning)
    }

    @Test(
        "replay predicts what the live worker did: events applied one by one with clock ticks between give the same alerts"
    )
    func liveEqualsReplay() throws {
        let events = try CongestedMonth(scale: 0.03, seed: 11).events(config: hcmc)
        let settings = QueueForecast.Settings()
        // In the order the worker took them (replay sorts ties by `seq`, which a worker cannot see).
        let replay = try Replay.run(
            events: events, config: hcmc, options: ReplayOptions(arrivalOrder: true, forecast: settings))
        var live = Replay(config: hcmc)
        live.forecast = QueueForecast(unitCount: hcmc.units.count, settings: settings)
        var rng = SplitMix64(seed: 5)
        for e in events {
            // A live worker on the events' clock also advances between events (its timers, its ticks).
            if let clock = live.clock, e.occurredAt > clock + 1, Int.random(in: 0..<4, using: &rng) == 0 {
                live.advance(to: Int64.random(in: clock..<e.occurredAt, using: &rng))
            }
            try live.receive(e, at: max(live.clock ?? e.occurredAt, e.occurredAt))
        }
        live.advance(to: replay.clock!)
        func key(_ a: Alert) -> String { "\(a.alertId) \(a.firedAt) \(a.predictedAt ?? 0) \(a.queueAhead ?? -1)" }
        let atRisk = replay.alerts.filter { $0.level == .atRisk }
        #expect(atRisk.count > 100)
        let a = live.alerts.map(key)
        let b = replay.alerts.map(key)
        let firstDifference = a.indices.first { $0 < b.count && a[$0] != b[$0] }
        #expect(
            a.count == b.count && firstDifference == nil,
            "first difference at \(firstDifference.map { "\($0): \(a[$0]) against \(b[$0])" } ?? "the end")")
    }

    @Test("on the congested month at_risk beats warning: recall ≥ 0.9, precision ≥ 0.7, an hour more lead")
    func beatsTheBaseline() throws {
        let events = try CongestedMonth(scale: 0.05, seed: 3).events(config: hcmc)
        #expect(Set(events.map(\.type)) == [.received, .resolved])
        #expect(events.map(\.occurredAt) == events.map(\.occurredAt).sorted())
        let replay = try Replay.run(
            events: events, config: hcmc, options: ReplayOptions(forecast: QueueForecast.Settings()))
        let atRisk = ForecastScore.score(.atRisk, replay: replay, alerts: replay.alerts)
        let warning = ForecastScore.score(.warning, replay: replay, alerts: replay.alerts)
        #expect(atRisk.late > 500)
        #expect(atRisk.recall >= 0.9)
        #expect(atRisk.precision >= 0.7)
        #expect(atRisk.medianLeadMinutes >= warning.medianLeadMinutes + 60)
        #expect(atRisk.falsePer1000 < warning.falsePer1000)
    }

    @Test("the congested month is the same for the same seed and differs for another")
    func deterministic() throws {
        let a = try CongestedMonth(scale: 0.02, seed: 1).events(config: hcmc)
        let b = try CongestedMonth(scale: 0.02, seed: 1).events(config: hcmc)
        let c = try CongestedMonth(scale: 0.02, seed: 2).events(config: hcmc)
        #expect(a.map(\.eventId) == b.map(\.eventId) && a.map(\.occurredAt) == b.map(\.occurredAt))
        #expect(a.map(\.occurredAt) != c.map(\.occurredAt))
    }

    @Test("the forecast's state is bounded: days kept per unit and dossiers queued per unit")
    func bounded() throws {
        var settings = QueueForecast.Settings()
        settings.historyDays = 3
        settings.maxQueue = 5
        let replay = try Replay.run(
            events: congestedAfternoon(), config: Fixture.config, options: ReplayOptions(forecast: settings))
        let forecast = try #require(replay.forecast)
        let unit = Fixture.config.unitID("760")!
        #expect(forecast.units[Int(unit)].days.count == 3)
        // Mid-afternoon the unit held fifty dossiers: five were tracked, and the rest were not queued.
        var partial = Replay(config: Fixture.config)
        partial.forecast = QueueForecast(unitCount: Fixture.config.units.count, settings: settings)
        for e in congestedAfternoon() where e.occurredAt <= t("2022-05-16 14:00") {
            try partial.receive(e, at: e.occurredAt)
        }
        #expect(partial.forecast!.units[Int(unit)].queue.count == 5)
    }

    @Test("a restart's queue is in receipt order whatever the storage order, and cut at maxQueue keeping the earliest")
    func restoredQueueOrder() {
        var settings = QueueForecast.Settings()
        settings.maxQueue = 3
        var forecast = QueueForecast(unitCount: 2, settings: settings)
        let base = t("2022-05-16 13:00")
        // Storage order is not receipt order; two share an instant and are ordered by code.
        let held: [(slot: Int, code: String, at: Instant)] = [
            (4, "D-E", base + 400), (1, "D-B", base + 100), (0, "D-A", base + 100), (3, "D-D", base + 300),
            (2, "D-C", base + 200),
        ]
        for d in held {
            forecast.restoreQueued(
                unit: 1, slot: d.slot, code: d.code, receivedAt: d.at, due: base + 3600, atRisk: false)
        }
        forecast.finishRestore()
        #expect(forecast.units[1].queue.map(\.code) == ["D-A", "D-B", "D-C"])
        #expect(forecast.units[0].queue.isEmpty)
    }

    @Test("a unit's stored forecast reads back as written, and bytes that do not read back are refused")
    func storedForecastRoundTrip() throws {
        let replay = try Replay.run(events: congestedAfternoon(), config: Fixture.config, options: ReplayOptions())
        let forecast = try #require(replay.forecast)
        let unit = Fixture.config.unitID("760")!
        let bytes = forecast.encode(unit: unit)
        var restored = QueueForecast(unitCount: Fixture.config.units.count, settings: forecast.settings)
        try restored.restore(unit: unit, from: bytes)
        #expect(restored.encode(unit: unit) == bytes)
        #expect(restored.units[Int(unit)].days == forecast.units[Int(unit)].days)
        #expect(throws: QueueForecast.Unreadable.self) {
            try restored.restore(unit: unit, from: Array(bytes.dropLast()))
        }
        #expect(throws: QueueForecast.Unreadable.self) {
            try restored.restore(unit: unit, from: [2] + bytes.dropFirst())
        }
        #expect(throws: QueueForecast.Unreadable.self) { try restored.restore(unit: unit, from: []) }
    }

    /// A unit's stored part with the given days `(day, served, busy seconds)` and error model, as `encode` writes it.
    func storedPart(
        days: [(Int64, Int64, Int64)], busySince: Instant = .min, mean: Double = 0, variance: Double = 0.5,
        errors: Int64 = 30
    ) -> [UInt8] {
        var out: [UInt8] = [1, UInt8(days.count)]
        func put(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        for d in days {
            put(d.0)
            put(d.1)
            put(d.2)
        }
        for instant in [busySince, .min, .min, .min] { put(instant) }
        put(Int64(bitPattern: mean.bitPattern))
        put(Int64(bitPattern: variance.bitPattern))
        put(errors)
        return out
    }

    @Test(
        "a stored forecast damaged on disk is refused, not worked with: sums that overflow, days out of order, an error model no unit produces"
    )
    func storedForecastOutOfRange() throws {
        let day = LocalTime.day(of: t("2022-05-16 08:00"))
        var forecast = QueueForecast(unitCount: 1)
        try forecast.restore(unit: 0, from: storedPart(days: [(day - 1, 40, 20_000), (day, 12, 9_000)]))
        let refused: [(String, [UInt8])] = [
            ("served past any day's", storedPart(days: [(day, .max, 9_000)])),
            ("negative busy seconds", storedPart(days: [(day, 12, -3_600)])),
            ("busy longer than a day", storedPart(days: [(day, 12, 90_000)])),
            ("days out of order", storedPart(days: [(day, 12, 9_000), (day - 1, 40, 20_000)])),
            ("a day twice", storedPart(days: [(day, 12, 9_000), (day, 40, 20_000)])),
            ("a day past year 9999", storedPart(days: [(Int64.max / 2, 12, 9_000)])),
            ("an instant past year 9999", storedPart(days: [(day, 12, 9_000)], busySince: .max)),
            ("an error mean no unit reaches", storedPart(days: [(day, 12, 9_000)], mean: 1e300)),
            ("a negative error count", storedPart(days: [(day, 12, 9_000)], errors: -1)),
            ("an error count about to overflow", storedPart(days: [(day, 12, 9_000)], errors: .max)),
        ]
        for (reason, bytes) in refused {
            var fresh = QueueForecast(unitCount: 1)
            #expect(throws: QueueForecast.Unreadable.self, "\(reason)") { try fresh.restore(unit: 0, from: bytes) }
        }
    }

    @Test("a predicted time past what an instant holds is a year of working seconds, not a trap")
    func predictedSecondsBounded() {
        let year = LocalTime.secondsPerDay * 366
        #expect(QueueForecast.workingSeconds(.infinity) == year)
        #expect(QueueForecast.workingSeconds(1e30) == year)
        #expect(QueueForecast.workingSeconds(.nan) == year)
        #expect(QueueForecast.workingSeconds(-5) == 0)
        #expect(QueueForecast.workingSeconds(599.2) == 600)
    }

    @Test("alerting.json atRisk.blocks: a block left out is never forecast, live or after a restart; [] turns it off")
    func blocksChosen() throws {
        let alerting = String(decoding: Fixture.bytes("alerting.json"), as: UTF8.self)
        func config(_ atRisk: String) throws -> Configuration {
            let edited = alerting.replacingOccurrences(
                of: "{\n", with: "{\n  \"atRisk\": \(atRisk),\n", range: alerting.range(of: "{\n"))
            return try Configuration.parse(Fixture.files(replacing: "alerting.json", with: edited))
        }
        let communesOnly = try config(#"{"blocks": ["commune"], "confidence": 0.6}"#)
        #expect(communesOnly.forecast?.confidence == 0.6)
        // One dossier still open at the end, besides the afternoon's.
        let open = dossier("2022-05-16", 99, received: t("2022-05-16 14:30"), resolved: t("2022-05-16 14:31"))[0]
        let replay = try Replay.run(
            events: congestedAfternoon() + [open], config: communesOnly, options: ReplayOptions())
        #expect(!replay.alerts.contains { $0.level == .atRisk }, "District 1 is a district: not forecast")
        // Loaded at a restart, its open dossiers are not queued either.
        var restarted = Replay(config: communesOnly)
        for d in replay.dossiers where !d.code.isEmpty { _ = restarted.loadNew(d, storageKey: 0, queued: false) }
        let unit = communesOnly.unitID("760")!
        #expect(restarted.isOpen(open.dossier))
        #expect(restarted.forecast!.units[Int(unit)].queue.isEmpty)
        #expect(try config(#"{"blocks": []}"#).forecast == nil)
        #expect(throws: ConfigurationError.self) { try config(#"{"blocks": ["ward"]}"#) }
        #expect(throws: ConfigurationError.self) { try config(#"{"confidence": 1}"#) }
    }

    @Test("subtracting working seconds is the inverse of adding them, across sessions, nights and weekends")
    func subtractInvertsAdd() {
        let calendar = Fixture.config.calendar(of: Fixture.config.unitID("760")!)
        for start in ["2022-05-16 08:00", "2022-05-16 11:29", "2022-05-16 13:00", "2022-05-20 16:30"] {
            for minutes in [1, 29, 210, 480, 1000, 3000] {
                let later = calendar.add(workingSeconds: Int64(minutes) * 60, to: t(start))
                #expect(
                    calendar.workingSeconds(
                        from: calendar.subtract(workingSeconds: Int64(minutes) * 60, from: later), to: later) == Int64(
                            minutes) * 60)
                #expect(calendar.subtract(workingSeconds: Int64(minutes) * 60, from: later) >= t(start))
            }
        }
        #expect(fmt(calendar.subtract(workingSeconds: 480 * 60, from: t("2022-05-16 17:00"))) == "2022-05-16 07:30")
        #expect(fmt(calendar.subtract(workingSeconds: 60 * 60, from: t("2022-05-16 08:00"))) == "2022-05-13 16:30")
    }

    @Test("the normal quantile")
    func quantile() {
        #expect(abs(QueueForecast.normalQuantile(0.5)) < 1e-9)
        #expect(abs(QueueForecast.normalQuantile(0.975) - 1.959964) < 1e-5)
        #expect(abs(QueueForecast.normalQuantile(0.01) + 2.326348) < 1e-5)
    }
}
