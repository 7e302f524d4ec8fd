/// SplitMix64: a tiny deterministic PRNG, so generated data is the same on every machine and run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Generates a realistic, deterministic month (or any number of days) of events for tests, benchmarks and
/// `sameday simulate`: dossiers received in the sessions of their unit's calendar, mostly resolved the same day,
/// some paused for fees, sent back for supplements, rescheduled, withdrawn, stopped, refused, or still open.
public struct SyntheticMonth: Sendable {
    public var firstDay: LocalDate
    public var days: Int
    public var dossiersPerUnitPerDay: Int
    public var seed: UInt64
    /// Share of events sent twice (at-least-once delivery), in per mille.
    public var duplicatePerMille: Int

    public init(
        firstDay: LocalDate, days: Int, dossiersPerUnitPerDay: Int = 5, seed: UInt64 = 2022, duplicatePerMille: Int = 10
    ) {
        self.firstDay = firstDay
        self.days = days
        self.dossiersPerUnitPerDay = dossiersPerUnitPerDay
        self.seed = seed
        self.duplicatePerMille = duplicatePerMille
    }

    /// Events in occurrence order (duplicates included right after their original).
    public func events(config: Configuration) -> [DossierEvent] {
        var rng = SplitMix64(seed: seed)
        var out: [DossierEvent] = []
        let unlisted = "9.999999.000.00.00.H29"
        for d in 0..<days {
            let day = firstDay.adding(days: Int64(d))
            for (unitIndex, unit) in config.units.enumerated() {
                let unitID = UnitID(unitIndex)
                let sched = config.calendar(of: unitID).schedule(of: day)
                guard let first = sched.stretches.first, let last = sched.stretches.last else { continue }
                let procedures =
                    config.catalog.filter { $0.scope == .city || $0.scope == .unit(unit.code) }.map(\.procedure)
                    + [unlisted]
                let n = Int.random(in: 0...(2 * dossiersPerUnitPerDay), using: &rng)
                for k in 0..<n {
                    let code = unit.code + "-" + dayCode(day) + "-" + pad4(k + 1)
                    // Mostly catalog procedures; one in fifty not in the catalog.
                    let proc =
                        Int.random(in: 0..<50, using: &rng) == 0
                        ? unlisted : procedures[Int.random(in: 0..<max(1, procedures.count - 1), using: &rng)]
                    let open = day.startInstant + Int64(first.start) - 1800
                    let close = day.startInstant + Int64(last.end) + 1800
                    let t0 = Int64.random(in: open...close, using: &rng)
                    var seqNo: Int64 = 0
                    var evs: [DossierEvent] = []
                    func ev(
                        _ type: EventType, _ at: Instant, channel: Channel? = nil, outcome: Outcome? = nil,
                        newDue: Instant? = nil
                    ) {
                        evs.append(
                            DossierEvent(
                                eventId: "\(code)#\(seqNo)", dossier: code, unit: unit.code, procedure: proc,
                                type: type,
                                occurredAt: at, seq: seqNo, channel: channel, outcome: outcome, newDueAt: newDue,
                                source: SimulatedData.source("synthetic-\(unit.code)")))
                        seqNo += 1
                    }
                    let chRoll = Int.random(in: 0..<100, using: &rng)
                    let channel: Channel = chRoll < 55 ? .direct : chRoll < 95 ? .online : .postal
                    if channel == .online { ev(.submitted, t0 - Int64.random(in: 600...86_400, using: &rng)) }
                    if Int.random(in: 0..<100, using: &rng) < 2 {
                        ev(.refused, t0)
                    } else {
                        ev(.received, t0, channel: channel)
                        let ref = config.procedureRef(proc, unit: unitID)
                        let cal = config.workingCalendar(unit: unitID, procedure: ref)
                        let dl = config.deadline(unit: unitID, procedure: ref, received: t0)
                        var t = dl.start
                        let roll = Int.random(in: 0..<1000, using: &rng)
                        func work(_ fraction: Int) -> Instant {
                            cal.add(workingSeconds: max(60, dl.dueOffset * Int64(fraction) / 100), to: t)
                        }
                        if roll < 40 {  // fee pause
                            t = work(Int.random(in: 5...40, using: &rng)); ev(.feeRequested, t)
                            t = t + Int64.random(in: 600...172_800, using: &rng); ev(.feePaid, t)
                        } else if roll < 80 {  // supplement restart
                            t = work(Int.random(in: 5...50, using: &rng)); ev(.supplementRequested, t)
                            t = t + Int64.random(in: 3600...259_200, using: &rng); ev(.supplementReceived, t)
                        } else if roll < 90 {
                            t = work(Int.random(in: 50...90, using: &rng));
                            ev(.rescheduled, t, newDue: cal.add(workingSeconds: 2 * 480 * 60, to: dl.due))
                        } else if roll < 100 {
                            ev(.transferred, work(10)); t = work(10)
                        }
                        let end = Int.random(in: 0..<1000, using: &rng)
                        if end < 15 {
                            ev(.withdrawn, work(Int.random(in: 10...60, using: &rng)))
                        } else if end < 25 {
                            ev(.stopped, work(Int.random(in: 10...60, using: &rng)))
                        } else if end < 60 {
                            // left open
                        } else {
                            // Mostly in time, a few late.
                            let used =
                                end < 90
                                ? Int.random(in: 101...250, using: &rng) : Int.random(in: 10...100, using: &rng)
                            var at = work(used)
                            if at <= evs.last!.occurredAt { at = evs.last!.occurredAt + 60 }
                            ev(.resolved, at, outcome: Int.random(in: 0..<20, using: &rng) == 0 ? .rejected : .approved)
                            if Int.random(in: 0..<2, using: &rng) == 0 {
                                ev(.returned, at + Int64.random(in: 60...86_400, using: &rng))
                            }
                        }
                    }
                    for e in evs {
                        out.append(e)
                        if Int.random(in: 0..<1000, using: &rng) < duplicatePerMille { out.append(e) }
                    }
                }
            }
        }
        return out.enumerated().sorted { a, b in
            a.element.occurredAt != b.element.occurredAt
                ? a.element.occurredAt < b.element.occurredAt : a.offset < b.offset
        }.map(\.element)
    }

    private func dayCode(_ d: LocalDate) -> String {
        let c = d.components
        return pad2(c.year % 100) + pad2(c.month) + pad2(c.day)
    }
    private func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    private func pad4(_ v: Int) -> String { String(repeating: "0", count: max(0, 4 - String(v).count)) + String(v) }
}
