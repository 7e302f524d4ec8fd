/// The seed's month, reproduced (`sameday simulate --scenario seed-2022`): the 2022 action month (15/5–15/6/2022)
/// at the seed's volume. Per block, exactly `round(seed figure × scale)` same-day dossiers are received before the
/// day's cut-off and resolved on the day of their receipt (`same_day_resolved_same_day`, `SeedFigures`), all on
/// time; beside them every unit has non-same-day traffic (`nonSameDayPerMille`). `realistic` adds late, paused,
/// supplemented, withdrawn and lawfully extended dossiers, appointment slips (`promisedAt`, a few miscounted),
/// out-of-order arrival and duplicates at `Rates.realistic`, on top of the seed's dossiers, so the seed's figure
/// stays exact.
///
/// Pure and deterministic: no clock, no I/O; the same configuration, scenario, scale and seed give the same events
/// in the same order. Events come out in arrival order (occurrence order, except the out-of-order ones of
/// `realistic`) through a callback, a few days at a time, so a month at scale 1 never sits in memory at once.
public struct SeedMonth: Sendable {
    public enum Scenario: String, Sendable, CaseIterable {
        case seed = "seed-2022"
        case realistic
    }

    public var scenario: Scenario
    /// Shrinks every volume: each block's same-day figure becomes `round(seed × scale)`.
    public var scale: Double
    public var seed: UInt64
    /// Draws catalog entries whose `source` is `unconfirmed` or `illustrative` too; by default the month uses only
    /// procedures a source confirms (or that a catalog without a `source` column lists), so that a report made from
    /// it never rests on a code nobody has seen.
    public var includeUnconfirmed: Bool

    public init(scenario: Scenario = .seed, scale: Double = 1, seed: UInt64 = 2022, includeUnconfirmed: Bool = false) {
        self.scenario = scenario
        self.scale = scale
        self.seed = seed
        self.includeUnconfirmed = includeUnconfirmed
    }

    public static var period: Period { SeedFigures.period }

    // MARK: Volumes (choices, documented in the README)

    /// Share of a block's dossiers in the period that are *not* same-day dossiers (procedures with `hours:N` or
    /// `days:N`, or not in the catalog), per mille. The seed counts same-day dossiers only; these shares are
    /// illustrative: wards handle mostly certification and civil status (same-day), districts also land, business
    /// and construction files, departments mostly multi-day licences, vertical units a mix.
    public static let nonSameDayPerMille: [Block: Int] = [
        .commune: 150, .district: 350, .department: 600, .vertical: 250,
    ]

    /// Of the non-same-day dossiers of a unit that has catalog procedures of its own kind, the share whose
    /// procedure is not in the catalog, per mille (units with none get only those).
    public static let notInCatalogPerMille = 100
    /// The procedure code of those dossiers (not in any catalog).
    public static let notInCatalogProcedure = "9.999999.000.00.00.H29"

    /// Disturbances of `realistic`, per mille.
    public struct Rates: Sendable, Equatable {
        /// Extra same-day dossiers, per mille of the block's seed figure: resolved late (on a later day), paused
        /// for fees until the next working day, sent back for a supplement, withdrawn, and lawfully extended (many
        /// copies to certify: `extended` by one or two working days and resolved within it; a procedure whose field
        /// may not be extended is resolved late instead).
        public var sameDayLate = 0, sameDayPaused = 0, sameDaySupplemented = 0, sameDayWithdrawn = 0
        public var sameDayExtended = 0
        /// Of all dossiers, per mille whose `received` carries an appointment slip one working day later than the
        /// computed deadline (a unit system that miscounts); the others' slips name the computed deadline. Zero: no
        /// `promisedAt` at all.
        public var promiseMiscounted = 0
        public var promises = false
        /// Of the non-same-day dossiers: resolved late, paused for fees, supplemented, withdrawn.
        public var late = 0, paused = 0, supplemented = 0, withdrawn = 0
        /// Dossiers whose `received` arrives after their last event (an adapter replaying a backlog).
        public var outOfOrder = 0
        /// Events sent twice (at-least-once delivery).
        public var duplicates = 0

        public static let none = Rates()
        public static let realistic = Rates(
            sameDayLate: 10, sameDayPaused: 15, sameDaySupplemented: 20, sameDayWithdrawn: 5, sameDayExtended: 10,
            promiseMiscounted: 20, promises: true,
            late: 30, paused: 20, supplemented: 40, withdrawn: 10, outOfOrder: 20, duplicates: 10)

        var sameDayExtra: Int {
            sameDayLate + sameDayPaused + sameDaySupplemented + sameDayWithdrawn + sameDayExtended
        }
    }

    public var rates: Rates { scenario == .realistic ? .realistic : .none }

    /// The block's same-day dossiers received and resolved within the day: `round(seed × scale)`.
    public static func sameDayTarget(_ block: Block, scale: Double) -> Int {
        Int((Double(SeedFigures.sameDayResolvedSameDay[block] ?? 0) * scale).rounded())
    }

    /// The block's non-same-day dossiers: `nonSameDayPerMille` of all its dossiers.
    public static func nonSameDayTarget(_ block: Block, scale: Double) -> Int {
        let p = Double(nonSameDayPerMille[block] ?? 0)
        return Int((Double(SeedFigures.sameDayResolvedSameDay[block] ?? 0) * scale * p / (1000 - p)).rounded())
    }

    // MARK: Who handles what (choices, documented in deploy/config/hcmc-2022/README.md)

    /// City-catalog procedures by field (lĩnh vực): the blocks whose one-stop desks receive them.
    static let fieldBlocks: [String: Set<Block>] = [
        "Chứng thực": [.commune, .district],
        "Hộ tịch": [.district],
        "Thành lập và hoạt động của hộ kinh doanh": [.district],
        "Đăng ký biện pháp bảo đảm": [.district, .department],
        "Đất đai": [.district, .department],
        "Xây dựng": [.district],
        "Thành lập và hoạt động doanh nghiệp": [.department],
        "Việc làm": [.department],
        "Lý lịch tư pháp": [.department],
    ]
    /// Exceptions to `fieldBlocks`, by the procedure's national code (its first two parts).
    static let procedureBlocks: [String: Set<Block>] = [
        "2.000992": [.district],  // translator's signature: the district's justice office (Phòng Tư pháp)
        // Civil status without a foreign element: the commune (Law on Civil Status 2014).
        "1.001193": [.commune], "1.000656": [.commune], "1.000894": [.commune], "1.004873": [.commune],
        "1.000689": [.commune], "1.001022": [.commune], "1.004837": [.commune], "1.004884": [.commune],
        "2.000635": [.commune, .district], "1.004859": [.commune, .district],
    ]
    /// Departments: the fields of the city catalog each one handles (by unit code of the HCMC registry).
    static let departmentFields: [String: Set<String>] = [
        "000.00.05.H29": ["Thành lập và hoạt động doanh nghiệp"],  // Sở Kế hoạch và Đầu tư
        "000.00.07.H29": ["Việc làm"],  // Sở Lao động - Thương binh và Xã hội
        "000.00.13.H29": ["Đăng ký biện pháp bảo đảm", "Đất đai"],  // Sở Tài nguyên và Môi trường
        "000.00.15.H29": ["Lý lịch tư pháp"],  // Sở Tư pháp
        "000.00.82.H29": ["Việc làm"],  // HEPZA: work permits in the zones
    ]
    /// Relative volume of a unit within its block before jitter (1 otherwise): Thủ Đức city merged three districts;
    /// Cần Giờ is the least populated district; a vertical sector's city-level office outweighs a district branch.
    static let unitWeight: [String: Double] = ["769": 3.0, "787": 0.3]
    static let cityLevelVerticalWeight = 4.0
    /// Day weights: a weekday 1, a day of extra sessions only (Saturday morning) 0.5, a fair day (a dated day with
    /// extra sessions: HEPZA's Wednesdays) 3.
    static let extraDayWeight = 0.5
    static let fairDayWeight = 3.0

    /// Whether `unit` handles the catalog entry: the entry must be the one in force for the unit (scope, docs/rules.md
    /// §2.2); an entry a unit registered applies to it and its children and they handle it; a city entry goes by the
    /// tables above. In a configuration with no district units (the map since 1 July 2025, when the district level
    /// was abolished), the communes handle what the tables give the districts.
    public static func handles(entry index: Int, unit: UnitID, config: Configuration) -> Bool {
        let e = config.catalog[index]
        guard case .catalog(let i) = config.procedureRef(e.procedure, unit: unit), Int(i) == index else {
            return false
        }
        if e.scope != .city { return true }
        let u = config.unit(unit)
        if u.block == .department { return departmentFields[u.code]?.contains(e.field) ?? false }
        let blocks = procedureBlocks[shortCode(e.procedure)] ?? fieldBlocks[e.field] ?? []
        if blocks.contains(u.block) { return true }
        return u.block == .commune && blocks.contains(.district) && !config.blocks.contains(.district)
    }

    static func shortCode(_ code: String) -> String {
        code.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).prefix(2).joined(separator: ".")
    }

    /// Relative frequency of a procedure at a desk: certification is the bulk of a one-stop desk's day.
    static func procedureWeight(_ e: CatalogEntry) -> Int { e.field == "Chứng thực" ? 3 : 1 }

    // MARK: Generation

    public struct Summary: Sendable, Equatable {
        public var events = 0
        public var dossiers = 0
        /// Per block: the seed's same-day dossiers generated, and all dossiers.
        public var sameDay: [Block: Int] = [:]
        public var perBlock: [Block: Int] = [:]
        /// Blocks the configuration has no unit of (a district block after 2025): their seed figures are not made.
        public var absentBlocks: [Block] = []
    }

    public struct PlanError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    struct UnitPlan {
        var sameDay: [Int] = []
        var sameDayWeights: [Int] = []
        var other: [Int] = []
        var otherWeights: [Int] = []
        var weight = 1.0
    }

    enum Kind: UInt8 {
        case seed, other, sdLate, sdPaused, sdSupplemented, sdWithdrawn, sdExtended
    }

    struct Draft {
        var kind: Kind
        var entry: Int  // catalog index, or -1 for not in catalog
        var t0: Instant
    }

    struct Pending {
        var arrival: Instant
        var ord: Int
        var event: DossierEvent
    }

    /// All events in arrival order (tests; the command streams with `generate`).
    public func events(config: Configuration) throws(PlanError) -> [DossierEvent] {
        var out: [DossierEvent] = []
        _ = try generate(config: config) { out.append($0) }
        return out
    }

    /// Generates the month and hands each event to `emit`, in arrival order.
    @discardableResult
    public func generate(config: Configuration, emit: (DossierEvent) -> Void) throws(PlanError) -> Summary {
        guard scale > 0, scale <= 1 else { throw PlanError(description: "scale must be in (0, 1], got \(scale)") }
        var rng = SplitMix64(seed: seed)
        let period = Self.period
        let days = (period.from.dayNumber...period.to.dayNumber).map { $0 }
        let rates = self.rates

        // Who handles what, and how much.
        var plans: [UnitPlan] = []
        for (ui, u) in config.units.enumerated() {
            var p = UnitPlan()
            for (i, e) in config.catalog.enumerated()
            where (includeUnconfirmed || !e.source.isUnconfirmed)
                && Self.handles(entry: i, unit: UnitID(ui), config: config)
            {
                if e.sla == .sameDay {
                    p.sameDay.append(i)
                    p.sameDayWeights.append(Self.procedureWeight(e))
                } else {
                    p.other.append(i)
                    p.otherWeights.append(Self.procedureWeight(e))
                }
            }
            var w = Self.unitWeight[u.code] ?? 1
            if u.block == .vertical && u.parent == nil { w = Self.cityLevelVerticalWeight }
            let jitter =
                u.block == .commune
                ? Double.random(in: 0.5...1.5, using: &rng) : Double.random(in: 0.8...1.2, using: &rng)
            p.weight = w * jitter
            plans.append(p)
        }

        // Day weights per unit: same-day intake (some procedure has time before its cut-off) and regular days.
        func isFair(_ unit: Int, _ day: Int64) -> Bool {
            let def = config.calendarDefinitions[config.units[unit].calendar]
            return def.dates[day] != nil && def.day(day).sessions.contains { $0.extra }
        }
        func sameDayDayWeight(_ unit: Int, _ day: Int64) -> Double {
            let p = plans[unit]
            guard p.sameDay.contains(where: { !intake(config, unit, $0, day).isEmpty }) else { return 0 }
            if isFair(unit, day) { return Self.fairDayWeight }
            return config.calendars[config.units[unit].calendar].schedule(ofDay: day).isWorkingDay
                ? 1 : Self.extraDayWeight
        }
        func otherDayWeight(_ unit: Int, _ day: Int64) -> Double {
            guard config.calendars[config.units[unit].calendar].schedule(ofDay: day).isWorkingDay else { return 0 }
            return isFair(unit, day) ? Self.fairDayWeight : 1
        }

        // Counts per (unit, day), exact per block (largest remainders).
        var counts = [[Draft]](repeating: [], count: config.units.count * days.count)
        var sameDayByBlock: [Block: Int] = [:]
        var absentBlocks: [Block] = []
        for block in Block.allCases {
            let members = config.units.indices.filter { config.units[$0].block == block }
            if members.isEmpty {
                absentBlocks.append(block)
                continue
            }
            let target = Self.sameDayTarget(block, scale: scale)
            let extra = Int((Double(target) * Double(rates.sameDayExtra) / 1000).rounded())
            let other = Self.nonSameDayTarget(block, scale: scale)
            var sdSlots: [(Int, Int, Double)] = []
            var otherSlots: [(Int, Int, Double)] = []
            for u in members {
                for (di, d) in days.enumerated() {
                    let j = Double.random(in: 0.85...1.15, using: &rng)
                    let sw = plans[u].weight * sameDayDayWeight(u, d) * j
                    if sw > 0 { sdSlots.append((u, di, sw)) }
                    let ow = plans[u].weight * otherDayWeight(u, d) * j
                    if ow > 0 { otherSlots.append((u, di, ow)) }
                }
            }
            if target + extra > 0 && sdSlots.isEmpty {
                throw PlanError(
                    description: "no \(block.rawValue) unit handles a same-day procedure of the catalog, "
                        + "so the seed's \(target) same-day dossiers of that block cannot be generated")
            }
            if other > 0 && otherSlots.isEmpty {
                throw PlanError(description: "no \(block.rawValue) unit has a working day in the period")
            }
            sameDayByBlock[block] = target
            for (slot, n) in zip(sdSlots, Self.apportion(target, sdSlots.map(\.2))) where n > 0 {
                for _ in 0..<n { counts[slot.0 * days.count + slot.1].append(Draft(kind: .seed, entry: 0, t0: 0)) }
            }
            for (slot, n) in zip(sdSlots, Self.apportion(extra, sdSlots.map(\.2))) where n > 0 {
                for _ in 0..<n {
                    var r = Int.random(in: 0..<max(1, rates.sameDayExtra), using: &rng)
                    let kind: Kind
                    if r < rates.sameDayLate {
                        kind = .sdLate
                    } else {
                        r -= rates.sameDayLate
                        if r < rates.sameDayPaused {
                            kind = .sdPaused
                        } else {
                            r -= rates.sameDayPaused
                            if r < rates.sameDaySupplemented {
                                kind = .sdSupplemented
                            } else {
                                r -= rates.sameDaySupplemented
                                kind = r < rates.sameDayWithdrawn ? .sdWithdrawn : .sdExtended
                            }
                        }
                    }
                    counts[slot.0 * days.count + slot.1].append(Draft(kind: kind, entry: 0, t0: 0))
                }
            }
            for (slot, n) in zip(otherSlots, Self.apportion(other, otherSlots.map(\.2))) where n > 0 {
                for _ in 0..<n { counts[slot.0 * days.count + slot.1].append(Draft(kind: .other, entry: 0, t0: 0)) }
            }
        }

        var summary = Summary()
        summary.sameDay = sameDayByBlock
        summary.absentBlocks = absentBlocks
        var pending: [Int64: [Pending]] = [:]
        var ord = 0
        func flush(through day: Int64) {
            for d in pending.keys.filter({ $0 <= day }).sorted() {
                let list = pending.removeValue(forKey: d)!.sorted {
                    $0.arrival != $1.arrival ? $0.arrival < $1.arrival : $0.ord < $1.ord
                }
                for p in list { emit(p.event) }
                summary.events += list.count
            }
        }

        for (di, day) in days.enumerated() {
            for (ui, unit) in config.units.enumerated() {
                var drafts = counts[ui * days.count + di]
                if drafts.isEmpty { continue }
                let plan = plans[ui]
                let unitID = UnitID(ui)
                let windows = plan.sameDay.map { intake(config, ui, $0, day) }
                let open = plan.sameDay.indices.filter { !windows[$0].isEmpty }
                let openWeights = open.map { plan.sameDayWeights[$0] }
                let regularDay = config.calendars[unit.calendar].schedule(ofDay: day).stretches
                // Procedures and reception times, then numbers in order of reception.
                for k in drafts.indices {
                    if drafts[k].kind == .other {
                        let unlisted =
                            plan.other.isEmpty
                            || Int.random(in: 0..<1000, using: &rng) < Self.notInCatalogPerMille
                        drafts[k].entry = unlisted ? -1 : plan.other[Self.pick(plan.otherWeights, &rng)]
                        drafts[k].t0 = LocalTime.start(ofDay: day) + Self.instant(in: regularDay, &rng)
                    } else {
                        let i = open[Self.pick(openWeights, &rng)]
                        drafts[k].entry = plan.sameDay[i]
                        drafts[k].t0 = LocalTime.start(ofDay: day) + Self.instant(in: windows[i], &rng)
                    }
                }
                let order = drafts.indices.sorted {
                    drafts[$0].t0 != drafts[$1].t0 ? drafts[$0].t0 < drafts[$1].t0 : $0 < $1
                }
                for (n, k) in order.enumerated() {
                    let d = drafts[k]
                    let code = unit.code + "-" + Self.dayCode(day) + "-" + Self.pad4(n + 1)
                    let proc = d.entry < 0 ? Self.notInCatalogProcedure : config.catalog[d.entry].procedure
                    let evs = dossier(
                        d, code: code, procedure: proc, unit: unitID, unitCode: unit.code, config: config,
                        rates: rates, rng: &rng)
                    summary.dossiers += 1
                    summary.perBlock[unit.block, default: 0] += 1
                    // Arrival: when it occurred, except a received that an adapter replays after the rest.
                    var late: Instant? = nil
                    if evs.count > 2, rates.outOfOrder > 0, Int.random(in: 0..<1000, using: &rng) < rates.outOfOrder {
                        late = evs.last!.occurredAt + Int64.random(in: 60...7200, using: &rng)
                    }
                    for e in evs {
                        let arrival = e.type == .received ? (late ?? e.occurredAt) : e.occurredAt
                        let copies =
                            rates.duplicates > 0 && Int.random(in: 0..<1000, using: &rng) < rates.duplicates ? 2 : 1
                        for _ in 0..<copies {
                            pending[LocalTime.day(of: arrival), default: []].append(
                                Pending(arrival: arrival, ord: ord, event: e))
                            ord += 1
                        }
                    }
                }
            }
            // An online dossier is submitted at most a day before its reception: days before yesterday are final.
            flush(through: day - 2)
        }
        flush(through: Int64.max)
        return summary
    }

    /// The intake window of a same-day procedure on a day at a unit: the sessions that serve it, up to the cut-off
    /// in force (the catalog's where the day's sessions run past it, else the day's), as seconds after midnight.
    func intake(_ config: Configuration, _ unit: Int, _ entry: Int, _ day: Int64) -> [Stretch] {
        let ref = ProcedureRef.catalog(UInt32(entry))
        let sched = config.workingCalendar(unit: UnitID(unit), procedure: ref).schedule(ofDay: day)
        var cutoff = sched.cutoff
        if let c = config.catalog[entry].cutoff, sched.close > c { cutoff = c }
        return sched.stretches.compactMap { s in
            s.start >= cutoff ? nil : Stretch(start: s.start, end: min(s.end, cutoff))
        }
    }

    /// One dossier's events, in occurrence order.
    func dossier(
        _ d: Draft, code: String, procedure: String, unit: UnitID, unitCode: String, config: Configuration,
        rates: Rates, rng: inout SplitMix64
    ) -> [DossierEvent] {
        var evs: [DossierEvent] = []
        func ev(
            _ type: EventType, _ at: Instant, channel: Channel? = nil, outcome: Outcome? = nil,
            newDueAt: Instant? = nil, promisedAt: Instant? = nil
        ) {
            let at = max(at, (evs.last?.occurredAt ?? at - 1) + 1)
            evs.append(
                DossierEvent(
                    eventId: "\(code)#\(evs.count)", dossier: code, unit: unitCode, procedure: procedure, type: type,
                    occurredAt: at, seq: Int64(evs.count), channel: channel, outcome: outcome, newDueAt: newDueAt,
                    promisedAt: promisedAt, source: SimulatedData.source("seed2022-\(unitCode)")))
        }
        let ref = config.procedureRef(procedure, unit: unit)
        let cal = config.workingCalendar(unit: unit, procedure: ref)
        let regular = config.calendar(of: unit)
        let t0 = d.t0
        let chRoll = Int.random(in: 0..<100, using: &rng)
        let channel: Channel = chRoll < 60 ? .direct : chRoll < 95 ? .online : .postal
        if channel == .online { ev(.submitted, t0 - Int64.random(in: 600...86_400, using: &rng)) }
        let dl = config.deadline(unit: unit, procedure: ref, received: t0)
        var promise: Instant? = nil
        if rates.promises {
            let miscounted = Int.random(in: 0..<1000, using: &rng) < rates.promiseMiscounted
            promise = miscounted ? cal.add(workingSeconds: SLA.workingDaySeconds, to: dl.due) : dl.due
        }
        ev(.received, t0, channel: channel, promisedAt: promise)
        func outcome() -> Outcome { Int.random(in: 0..<50, using: &rng) == 0 ? .rejected : .approved }
        func resolve(_ at: Instant) {
            ev(.resolved, at, outcome: outcome())
            if Int.random(in: 0..<10, using: &rng) < 6 {
                ev(.returned, evs.last!.occurredAt + Int64.random(in: 300...3600, using: &rng))
            }
        }
        /// A time in the first sessions of the next working day after `t`'s day.
        func nextDay(after t: Instant, plus extraDays: Int = 0) -> Instant {
            var day = LocalTime.day(of: t)
            for _ in 0...extraDays { day = regular.nextWorkingDay(after: day) ?? day + 1 }
            let first = regular.schedule(ofDay: day).stretches.first ?? Stretch(start: 27_000, end: 41_400)
            return LocalTime.start(ofDay: day) + Int64(first.start) + Int64.random(in: 0...10_800, using: &rng)
        }
        let span = max(1, dl.due - dl.start)
        switch d.kind {
        case .seed:
            // Received before the cut-off, resolved between reception and the day's close.
            resolve(dl.start + Int64.random(in: min(600, span / 2)...span, using: &rng))
        case .sdLate:
            resolve(cal.add(workingSeconds: Int64.random(in: 600...(2 * 480 * 60), using: &rng), to: dl.due))
        case .sdPaused:
            ev(.feeRequested, dl.start + Int64.random(in: min(300, span / 2)...span, using: &rng))
            let paid = nextDay(after: t0)
            ev(.feePaid, paid)
            resolve(paid + Int64.random(in: 600...7200, using: &rng))
        case .sdSupplemented:
            ev(.supplementRequested, dl.start + Int64.random(in: min(300, span / 2)...span, using: &rng))
            let back = nextDay(after: t0, plus: Int.random(in: 0...2, using: &rng))
            ev(.supplementReceived, back)
            let dl2 = config.deadline(unit: unit, procedure: ref, received: back)
            resolve(
                dl2.start
                    + Int64.random(in: min(600, (dl2.due - dl2.start) / 2)...max(1, dl2.due - dl2.start), using: &rng))
        case .sdWithdrawn:
            ev(.withdrawn, dl.start + Int64.random(in: min(300, span / 2)...span, using: &rng))
        case .sdExtended:
            let days = Int64.random(in: 1...2, using: &rng)
            let newDue = cal.add(workingSeconds: days * SLA.workingDaySeconds, to: dl.due)
            let extensible = config.allowsExtension(ref) && config.alerting.extensionMaxWorkingDays >= Int(days)
            if extensible {
                ev(.extended, dl.start + Int64.random(in: min(300, span / 2)...span, using: &rng), newDueAt: newDue)
            }
            resolve(cal.add(workingSeconds: Int64.random(in: 600...(days * 480 * 60 - 600), using: &rng), to: dl.due))
        case .other:
            func work(_ percent: Int, from: Instant, offset: Int64) -> Instant {
                cal.add(workingSeconds: max(60, offset * Int64(percent) / 100), to: from)
            }
            let roll = Int.random(in: 0..<1000, using: &rng)
            var r = roll
            if r < rates.late {
                resolve(work(Int.random(in: 105...250, using: &rng), from: dl.start, offset: dl.dueOffset))
                return evs
            }
            r -= rates.late
            if r < rates.paused {
                let asked = work(Int.random(in: 5...40, using: &rng), from: dl.start, offset: dl.dueOffset)
                ev(.feeRequested, asked)
                let paid = asked + Int64.random(in: 600...172_800, using: &rng)
                ev(.feePaid, paid)
                resolve(work(Int.random(in: 10...50, using: &rng), from: paid, offset: dl.dueOffset))
                return evs
            }
            r -= rates.paused
            if r < rates.supplemented {
                ev(
                    .supplementRequested,
                    work(Int.random(in: 5...50, using: &rng), from: dl.start, offset: dl.dueOffset))
                let back = evs.last!.occurredAt + Int64.random(in: 3600...259_200, using: &rng)
                ev(.supplementReceived, back)
                let dl2 = config.deadline(unit: unit, procedure: ref, received: back)
                resolve(work(Int.random(in: 10...100, using: &rng), from: dl2.start, offset: dl2.dueOffset))
                return evs
            }
            r -= rates.supplemented
            if r < rates.withdrawn {
                ev(.withdrawn, work(Int.random(in: 10...60, using: &rng), from: dl.start, offset: dl.dueOffset))
                return evs
            }
            // In time: early or on the deadline's day.
            resolve(work(Int.random(in: 10...100, using: &rng), from: dl.start, offset: dl.dueOffset))
        }
        return evs
    }

    /// Splits `total` over slots in proportion to `weights`, exactly (largest remainders; ties to the first slot).
    static func apportion(_ total: Int, _ weights: [Double]) -> [Int] {
        let sum = weights.reduce(0, +)
        guard total > 0, sum > 0 else { return [Int](repeating: 0, count: weights.count) }
        let quotas = weights.map { Double(total) * $0 / sum }
        var out = quotas.map { Int($0.rounded(.down)) }
        let left = total - out.reduce(0, +)
        let order = quotas.indices.sorted {
            let a = quotas[$0] - Double(out[$0])
            let b = quotas[$1] - Double(out[$1])
            return a != b ? a > b : $0 < $1
        }
        for i in order.prefix(max(0, left)) { out[i] += 1 }
        return out
    }

    /// An index drawn with the given integer weights.
    static func pick(_ weights: [Int], _ rng: inout SplitMix64) -> Int {
        let total = weights.reduce(0, +)
        var r = Int.random(in: 0..<max(1, total), using: &rng)
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return 0
    }

    /// A second drawn uniformly inside the stretches (seconds after midnight).
    static func instant(in stretches: [Stretch], _ rng: inout SplitMix64) -> Int64 {
        let total = stretches.reduce(Int64(0)) { $0 + Int64($1.end - $1.start) }
        var r = Int64.random(in: 0..<max(1, total), using: &rng)
        for s in stretches {
            let len = Int64(s.end - s.start)
            if r < len { return Int64(s.start) + r }
            r -= len
        }
        return Int64(stretches.first?.start ?? 27_000)
    }

    static func dayCode(_ day: Int64) -> String {
        let c = LocalDate(dayNumber: day).components
        return pad2(c.year % 100) + pad2(c.month) + pad2(c.day)
    }
    static func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    static func pad4(_ v: Int) -> String { String(repeating: "0", count: max(0, 4 - String(v).count)) + String(v) }
}
