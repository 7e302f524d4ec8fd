#if canImport(Glibc)
    import Glibc  // log, exp and cos only: the core does no I/O
#elseif canImport(Darwin)
    import Darwin
#endif

/// `sameday simulate --scenario congested`: a month where lateness has a cause. Each unit that receives same-day
/// procedures has a staff capacity (dossiers per working hour, changing from day to day with absences) and serves
/// its same-day dossiers in order of receipt, in its working sessions only. Arrivals follow the sessions, with peaks:
/// Monday mornings, the working day after a holiday, short bursts (a company or a school filing together), and the
/// campaign's last week. What the staff cannot finish by the deadline is resolved late, the next working sessions.
///
/// The events carry none of this: `received` and `resolved` only, as a unit's system would send them. The queue
/// forecast (`QueueForecast`) must find the congestion from those alone.
///
/// Pure and deterministic, like `SeedMonth`: the same configuration, scale and seed give the same events.
public struct CongestedMonth: Sendable {
    /// Share of the units that receive same-day procedures taking part (each with its full volume).
    public var scale: Double
    public var seed: UInt64
    public var includeUnconfirmed: Bool

    public init(scale: Double = 1, seed: UInt64 = 2022, includeUnconfirmed: Bool = false) {
        self.scale = scale
        self.seed = seed
        self.includeUnconfirmed = includeUnconfirmed
    }

    public struct Summary: Sendable, Equatable {
        public var units = 0
        public var dossiers = 0
        /// Dossiers the simulated staff finished after the close of the day they were received on.
        public var servedAfterClose = 0
    }

    /// All events in occurrence order (tests; the command streams with `generate`).
    public func events(config: Configuration) throws(SeedMonth.PlanError) -> [DossierEvent] {
        var out: [DossierEvent] = []
        _ = try generate(config: config) { out.append($0) }
        return out
    }

    /// Generates the month and hands each event to `emit`, in occurrence order.
    @discardableResult
    public func generate(config: Configuration, emit: (DossierEvent) -> Void) throws(SeedMonth.PlanError)
        -> Summary
    {
        var all: [DossierEvent] = []
        let summary = try generateByUnit(config: config) { all.append($0) }
        // Units are simulated one after the other; the month goes out in time order (ties: the order made).
        let order = all.indices.sorted { (all[$0].occurredAt, $0) < (all[$1].occurredAt, $1) }
        for i in order { emit(all[i]) }
        return summary
    }

    func generateByUnit(config: Configuration, emit: (DossierEvent) -> Void) throws(SeedMonth.PlanError)
        -> Summary
    {
        guard scale > 0, scale <= 1 else {
            throw SeedMonth.PlanError(description: "scale must be in (0, 1], got \(scale)")
        }
        var rng = SplitMix64(seed: seed ^ 0xC0_46E5_7ED)
        let period = SeedMonth.period
        var summary = Summary()
        for (ui, unit) in config.units.enumerated() {
            let entries = config.catalog.indices.filter { i in
                config.catalog[i].sla == .sameDay && (includeUnconfirmed || !config.catalog[i].source.isUnconfirmed)
                    && SeedMonth.handles(entry: i, unit: UnitID(ui), config: config)
            }
            // Drawn for every unit, taking part or not, so a unit's month does not depend on the others'.
            var unitRNG = SplitMix64(seed: rng.next())
            guard !entries.isEmpty, Double.random(in: 0..<1, using: &unitRNG) < scale else { continue }
            summary.units += 1
            let calendar = config.calendar(of: UnitID(ui))
            let weights = entries.map { SeedMonth.procedureWeight(config.catalog[$0]) }
            let capacity = Double.random(in: 4...16, using: &unitRNG)  // dossiers per working hour
            let load = Double.random(in: 0.35...0.7, using: &unitRNG)  // of the capacity, on an ordinary day
            var queue: [(code: String, procedure: String, at: Instant)] = []
            var serverFree: Instant = 0
            var serial = 0
            var previousWorkingDay: Int64?
            for day in period.from.dayNumber...period.to.dayNumber + 10 {
                let schedule = calendar.schedule(ofDay: day)
                guard schedule.isWorkingDay else { continue }
                let dayStart = LocalTime.start(ofDay: day)
                var arrivals: [Instant] = []
                if day <= period.to.dayNumber {
                    let intake = schedule.stretches.compactMap { s in
                        s.start >= schedule.cutoff ? nil : Stretch(start: s.start, end: min(s.end, schedule.cutoff))
                    }
                    let intakeSeconds = intake.reduce(0) { $0 + Int64($1.end - $1.start) }
                    if intakeSeconds > 0 {
                        var factor = 1.0
                        if LocalTime.weekday(ofDay: day) == 1 { factor *= 1.5 }  // Monday
                        if let previous = previousWorkingDay, day - previous > 1,
                            (previous + 1..<day).contains(where: { calendar.isHoliday(LocalDate(dayNumber: $0)) })
                        {
                            factor *= 1.8  // the day after a holiday
                        }
                        if period.to.dayNumber - day < 7 { factor *= 1.3 }  // the campaign's last week
                        let expected = load * capacity * Double(schedule.workingSeconds) / 3600 * factor
                        let count = Self.poisson(expected, &unitRNG)
                        for _ in 0..<count {
                            // Mornings are busier: the first session draws half again as many.
                            let sessionWeights = intake.enumerated().map { i, s in
                                Double(s.end - s.start) * (i == 0 ? 1.5 : 1)
                            }
                            let s = intake[Self.pick(sessionWeights, &unitRNG)]
                            arrivals.append(dayStart + Int64.random(in: Int64(s.start)..<Int64(s.end), using: &unitRNG))
                        }
                        // One day in four, a burst: a company or a school files a stack within the hour.
                        if Double.random(in: 0..<1, using: &unitRNG) < 0.25 {
                            let s = intake[Int.random(in: 0..<intake.count, using: &unitRNG)]
                            let from = dayStart + Int64.random(in: Int64(s.start)..<Int64(s.end), using: &unitRNG)
                            for _ in 0..<Int.random(in: 10...(10 + Int(capacity * 2)), using: &unitRNG) {
                                arrivals.append(
                                    min(from + Int64.random(in: 0..<3600, using: &unitRNG), dayStart + Int64(s.end) - 1)
                                )
                            }
                        }
                    }
                }
                arrivals.sort()
                previousWorkingDay = day
                // Staff present today: absences and meetings take up to a third of the capacity.
                let today = capacity * Double.random(in: 0.65...1.1, using: &unitRNG)
                var next = 0
                // Serve in order of receipt, in working time: each dossier takes an Erlang-2 time of mean 1/today.
                var clock = max(serverFree, calendar.nextWorkingInstant(atOrAfter: dayStart))
                let close = dayStart + Int64(schedule.close)
                // The day's arrivals up to `limit` join the queue, in order of receipt.
                func admit(upTo limit: Instant) {
                    while next < arrivals.count && arrivals[next] <= limit {
                        let procedure = config.catalog[entries[SeedMonth.pick(weights, &unitRNG)]].procedure
                        serial += 1
                        let code = unit.code + "-" + SeedMonth.dayCode(day) + "-C" + SeedMonth.pad4(serial % 10_000)
                        queue.append((code, procedure, arrivals[next]))
                        next += 1
                    }
                }
                while true {
                    admit(upTo: clock)
                    if queue.isEmpty {
                        guard next < arrivals.count else { break }
                        clock = calendar.nextWorkingInstant(atOrAfter: arrivals[next])
                        continue
                    }
                    let work = (Self.exponential(&unitRNG) + Self.exponential(&unitRNG)) / 2 / today * 3600
                    let done = calendar.add(workingSeconds: max(60, Int64(work)), to: clock)
                    guard done <= close else { break }  // left for the next working day
                    let d = queue.removeFirst()
                    let ref = config.procedureRef(d.procedure, unit: UnitID(ui))
                    let due = config.deadline(unit: UnitID(ui), procedure: ref, received: d.at).due
                    if done > due { summary.servedAfterClose += 1 }
                    emitDossier(d.code, d.procedure, unit.code, received: d.at, resolved: done, emit: emit)
                    summary.dossiers += 1
                    clock = done
                }
                // Arrivals after the last service of the day wait in the queue.
                admit(upTo: .max)
                serverFree = clock
            }
        }
        return summary
    }

    private func emitDossier(
        _ code: String, _ procedure: String, _ unit: String, received: Instant, resolved: Instant,
        emit: (DossierEvent) -> Void
    ) {
        let source = SimulatedData.source("congested-\(unit)")
        emit(
            DossierEvent(
                eventId: code + "#0", dossier: code, unit: unit, procedure: procedure, type: .received,
                occurredAt: received, seq: 0, channel: .direct, source: source))
        emit(
            DossierEvent(
                eventId: code + "#1", dossier: code, unit: unit, procedure: procedure, type: .resolved,
                occurredAt: max(resolved, received + 1), seq: 1, outcome: .approved, source: source))
    }

    static func poisson(_ mean: Double, _ rng: inout SplitMix64) -> Int {
        // A normal approximation above 30 (exact enough for arrivals), Knuth's method below.
        if mean > 30 {
            let u1 = max(Double.random(in: 0..<1, using: &rng), 1e-12)
            let u2 = Double.random(in: 0..<1, using: &rng)
            let n = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            return max(0, Int((mean + n * mean.squareRoot()).rounded()))
        }
        let limit = exp(-mean)
        var k = 0
        var p = Double.random(in: 0..<1, using: &rng)
        while p > limit {
            k += 1
            p *= Double.random(in: 0..<1, using: &rng)
        }
        return k
    }

    static func exponential(_ rng: inout SplitMix64) -> Double {
        -log(max(Double.random(in: 0..<1, using: &rng), 1e-12))
    }

    static func pick(_ weights: [Double], _ rng: inout SplitMix64) -> Int {
        var x = Double.random(in: 0..<weights.reduce(0, +), using: &rng)
        for (i, w) in weights.enumerated() {
            if x < w { return i }
            x -= w
        }
        return weights.count - 1
    }
}
