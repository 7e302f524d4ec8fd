/// What a rollup needs to know about one received dossier; computed from its events, so rollups can be
/// recomputed at any time for any period.
public struct DossierFacts: Sendable, Hashable {
    public var unit: UnitID
    public var procedure: ProcedureRef
    public var sameDay: Bool
    /// The procedure is not in the catalog for the dossier's unit (DOMAIN.md §2: tracked with the default SLA).
    public var notInCatalog: Bool
    /// A stopped or supplement-waiting dossier with no event for this long is abandoned (`staleAfterDays`).
    public var staleSeconds: Int64
    /// The first `received`: the receipt date of reports (DOMAIN.md §4.5).
    public var receivedAt: Instant
    public var channel: Channel?
    /// Resolution (`resolved` or `withdrawn`) and its classification; `stopped` is not a resolution.
    public var resolvedAt: Instant?
    public var withdrawn: Bool
    public var classification: Classification?
    /// Running and paused stretches; a `stopped` dossier ends in a stale paused segment that never ends.
    public var segments: [Segment]

    /// Nil when the dossier was never received (submitted only, refused, withdrawn before reception).
    public init?(state st: DossierState, config: Configuration) {
        guard let received = st.firstReceivedAt, let unit = st.unit, let ref = st.procedure else { return nil }
        self.unit = unit
        procedure = ref
        sameDay = config.sla(ref) == .sameDay
        if case .unlisted = ref { notInCatalog = true } else { notInCatalog = false }
        staleSeconds = Int64(config.alerting.staleAfterDays) * LocalTime.secondsPerDay
        receivedAt = received
        channel = st.channel
        segments = st.segments
        withdrawn = false
        if let c = st.closure, c.status == .resolved || c.status == .withdrawn {
            resolvedAt = c.at
            withdrawn = c.status == .withdrawn
            classification = st.classification
        }
    }
}

/// A rollup period `[from, to]` of local calendar days; it ends at 24:00 of `to`.
public struct Period: Sendable, Hashable {
    public var from: LocalDate
    public var to: LocalDate
    public init(from: LocalDate, to: LocalDate) {
        self.from = from
        self.to = to
    }
    public static func day(_ d: LocalDate) -> Period { Period(from: d, to: d) }
    public var start: Instant { from.startInstant }
    public var end: Instant { to.adding(days: 1).startInstant }
}

/// The figures of one row (DOMAIN.md §6), in the order of the report form.
public struct RollupFigures: Sendable, Hashable {
    public var receivedOnline = 0
    public var receivedDirectPostal = 0
    public var carriedOver = 0
    public var resolvedEarly = 0
    public var resolvedOnTime = 0
    public var resolvedLate = 0
    public var withdrawn = 0
    public var inProgressOnTime = 0
    public var inProgressOverdue = 0
    public var paused = 0
    public var abandoned = 0
    public var sameDayReceived = 0
    public var sameDayResolvedInTime = 0
    public var sameDayResolvedSameDay = 0
    public var receivedNotInCatalog = 0

    public init() {}

    public var receivedTotal: Int { receivedOnline + receivedDirectPostal + carriedOver }
    public var resolvedTotal: Int { resolvedEarly + resolvedOnTime + resolvedLate }
    public var inProgressTotal: Int { inProgressOnTime + inProgressOverdue }

    /// Column names after the key columns, in the order of DOMAIN.md §6.
    public static let columns = [
        "received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
        "resolved_early", "resolved_on_time", "resolved_late", "withdrawn", "in_progress_total",
        "in_progress_on_time", "in_progress_overdue", "paused", "abandoned", "same_day_received",
        "same_day_resolved_in_time", "same_day_resolved_same_day", "received_not_in_catalog", "on_time_rate",
    ]

    /// The integer columns (all but `on_time_rate`), in column order.
    public var values: [Int] {
        [
            receivedTotal, receivedOnline, receivedDirectPostal, carriedOver, resolvedTotal, resolvedEarly,
            resolvedOnTime, resolvedLate, withdrawn, inProgressTotal, inProgressOnTime, inProgressOverdue, paused,
            abandoned, sameDayReceived, sameDayResolvedInTime, sameDayResolvedSameDay, receivedNotInCatalog,
        ]
    }

    /// (early + on_time) / resolved as a percentage with one decimal, rounded half up; empty when nothing resolved.
    public var onTimeRate: String {
        let total = resolvedTotal
        guard total > 0 else { return "" }
        let tenths = (2000 * (resolvedEarly + resolvedOnTime) + total) / (2 * total)
        return "\(tenths / 10).\(tenths % 10)"
    }

    public static func + (a: RollupFigures, b: RollupFigures) -> RollupFigures {
        var r = a
        r.receivedOnline += b.receivedOnline
        r.receivedDirectPostal += b.receivedDirectPostal
        r.carriedOver += b.carriedOver
        r.resolvedEarly += b.resolvedEarly
        r.resolvedOnTime += b.resolvedOnTime
        r.resolvedLate += b.resolvedLate
        r.withdrawn += b.withdrawn
        r.inProgressOnTime += b.inProgressOnTime
        r.inProgressOverdue += b.inProgressOverdue
        r.paused += b.paused
        r.abandoned += b.abandoned
        r.sameDayReceived += b.sameDayReceived
        r.sameDayResolvedInTime += b.sameDayResolvedInTime
        r.sameDayResolvedSameDay += b.sameDayResolvedSameDay
        r.receivedNotInCatalog += b.receivedNotInCatalog
        return r
    }

    public static func - (a: RollupFigures, b: RollupFigures) -> RollupFigures {
        var r = a
        r.receivedOnline -= b.receivedOnline
        r.receivedDirectPostal -= b.receivedDirectPostal
        r.carriedOver -= b.carriedOver
        r.resolvedEarly -= b.resolvedEarly
        r.resolvedOnTime -= b.resolvedOnTime
        r.resolvedLate -= b.resolvedLate
        r.withdrawn -= b.withdrawn
        r.inProgressOnTime -= b.inProgressOnTime
        r.inProgressOverdue -= b.inProgressOverdue
        r.paused -= b.paused
        r.abandoned -= b.abandoned
        r.sameDayReceived -= b.sameDayReceived
        r.sameDayResolvedInTime -= b.sameDayResolvedInTime
        r.sameDayResolvedSameDay -= b.sameDayResolvedSameDay
        r.receivedNotInCatalog -= b.receivedNotInCatalog
        return r
    }

    /// Adds one dossier's contribution to the period (see docs/domain.md for each rule).
    public mutating func add(_ f: DossierFacts, period: Period) {
        let s = period.start
        let e = period.end
        guard f.receivedAt < e else { return }
        if f.receivedAt < s {
            if let r = f.resolvedAt, r < s { return }  // resolved before the period: not carried over
            carriedOver += 1
        } else {
            if f.channel == .online { receivedOnline += 1 } else { receivedDirectPostal += 1 }
            if f.sameDay { sameDayReceived += 1 }
            if f.notInCatalog { receivedNotInCatalog += 1 }
            // The seed's figure: received and resolved on the same calendar day (a withdrawal is not a result).
            if f.sameDay, !f.withdrawn, let r = f.resolvedAt, LocalTime.day(of: r) == LocalTime.day(of: f.receivedAt)
            {
                sameDayResolvedSameDay += 1
            }
        }
        if let r = f.resolvedAt, r < e {
            switch f.classification ?? .onTime {
            case .early: resolvedEarly += 1
            case .onTime: resolvedOnTime += 1
            case .late: resolvedLate += 1
            }
            if f.withdrawn { withdrawn += 1 }
            if f.sameDay && f.classification != .late { sameDayResolvedInTime += 1 }
            return
        }
        // Open at the end of the period: the segment in force at 24:00 of the last day.
        var current: Segment?
        for seg in f.segments where seg.from < e { current = seg }
        guard let seg = current else { inProgressOnTime += 1; return }
        if seg.paused {
            if seg.stale && e - seg.from >= f.staleSeconds { abandoned += 1 } else { paused += 1 }
        } else if seg.due < e {
            inProgressOverdue += 1
        } else {
            inProgressOnTime += 1
        }
    }

    /// The identities of DOMAIN.md §6; returns the ones that fail (empty when all hold).
    public var identityViolations: [String] {
        var v: [String] = []
        if receivedTotal != resolvedTotal + inProgressTotal + paused + abandoned {
            v.append("received_total \(receivedTotal) ≠ resolved_total + in_progress_total + paused + abandoned")
        }
        if sameDayResolvedSameDay > sameDayReceived { v.append("same_day_resolved_same_day exceeds same_day_received") }
        if receivedNotInCatalog > receivedOnline + receivedDirectPostal {
            v.append("received_not_in_catalog exceeds the dossiers received in the period")
        }
        if withdrawn > resolvedOnTime { v.append("withdrawn exceeds resolved_on_time") }
        if sameDayResolvedInTime > resolvedEarly + resolvedOnTime { v.append("same_day_resolved_in_time too large") }
        return v
    }

    /// Sums daily figures into a period: flows add up; `carried_over` is the first day's and the stocks at the end
    /// (`in_progress_*`, `paused`, `abandoned`) are the last day's (days given in date order).
    public static func aggregate(days: [RollupFigures]) -> RollupFigures {
        guard let first = days.first, let last = days.last else { return RollupFigures() }
        var r = RollupFigures()
        for d in days {
            r.receivedOnline += d.receivedOnline
            r.receivedDirectPostal += d.receivedDirectPostal
            r.resolvedEarly += d.resolvedEarly
            r.resolvedOnTime += d.resolvedOnTime
            r.resolvedLate += d.resolvedLate
            r.withdrawn += d.withdrawn
            r.sameDayReceived += d.sameDayReceived
            r.sameDayResolvedInTime += d.sameDayResolvedInTime
            r.sameDayResolvedSameDay += d.sameDayResolvedSameDay
            r.receivedNotInCatalog += d.receivedNotInCatalog
        }
        r.carriedOver = first.carriedOver
        r.inProgressOnTime = last.inProgressOnTime
        r.inProgressOverdue = last.inProgressOverdue
        r.paused = last.paused
        r.abandoned = last.abandoned
        return r
    }

    /// Reads the integer columns back (from a rendered row); nil when a value is not a whole number ≥ 0.
    public init?(columns names: [String], values: [String]) {
        func v(_ n: String) -> Int? {
            guard let i = names.firstIndex(of: n), i < values.count else { return nil }
            return Int(values[i]).flatMap { $0 >= 0 ? $0 : nil }
        }
        guard let a = v("received_online"), let b = v("received_direct_postal"), let c = v("carried_over"),
            let d = v("resolved_early"), let e = v("resolved_on_time"), let f = v("resolved_late"),
            let g = v("withdrawn"), let h = v("in_progress_on_time"), let i = v("in_progress_overdue"),
            let j = v("paused"), let k = v("same_day_received"), let l = v("same_day_resolved_in_time"),
            let m = v("abandoned"), let n = v("same_day_resolved_same_day"), let o = v("received_not_in_catalog")
        else { return nil }
        receivedOnline = a
        receivedDirectPostal = b
        carriedOver = c
        resolvedEarly = d
        resolvedOnTime = e
        resolvedLate = f
        withdrawn = g
        inProgressOnTime = h
        inProgressOverdue = i
        paused = j
        sameDayReceived = k
        sameDayResolvedInTime = l
        abandoned = m
        sameDayResolvedSameDay = n
        receivedNotInCatalog = o
    }
}

/// One row of a unit table.
public struct UnitRow: Sendable, Hashable {
    public var unit: String
    public var unitName: String
    public var block: Block
    public var figures: RollupFigures
    public init(unit: String, unitName: String, block: Block, figures: RollupFigures) {
        self.unit = unit
        self.unitName = unitName
        self.block = block
        self.figures = figures
    }
}

/// One row of a block table; `block` is nil for the city row (`all`).
public struct BlockRow: Sendable, Hashable {
    public var block: Block?
    public var figures: RollupFigures
    public init(block: Block?, figures: RollupFigures) {
        self.block = block
        self.figures = figures
    }
    public var blockName: String { block?.rawValue ?? "all" }
}

/// The rollup of a period: one row per unit of the registry, one per block, and the city.
public struct Rollup: Sendable, Hashable {
    public var period: Period
    /// Sorted by block, then unit code.
    public var units: [UnitRow]
    /// Sorted by block, then the city row `all`.
    public var blocks: [BlockRow]

    public init(period: Period, units: [UnitRow], blocks: [BlockRow]) {
        self.period = period
        self.units = units
        self.blocks = blocks
    }

    /// Computes a rollup from dossier facts.
    public static func compute(facts: some Sequence<DossierFacts>, period: Period, config: Configuration) -> Rollup {
        var perUnit = [RollupFigures](repeating: RollupFigures(), count: config.units.count)
        for f in facts { perUnit[Int(f.unit)].add(f, period: period) }
        let rows = config.units.indices.map { i in
            UnitRow(
                unit: config.units[i].code, unitName: config.units[i].name, block: config.units[i].block,
                figures: perUnit[i])
        }
        return Rollup(unitRows: rows, period: period)
    }

    /// Builds the block and city rows from unit rows (blocks are sums of their units, by construction).
    public init(unitRows: [UnitRow], period: Period) {
        self.period = period
        units = unitRows.sorted { ($0.block, $0.unit) < ($1.block, $1.unit) }
        var byBlock: [Block: RollupFigures] = [:]
        for r in units {
            byBlock[r.block, default: RollupFigures()] = byBlock[r.block, default: RollupFigures()] + r.figures
        }
        var rows = Block.allCases.sorted().map { BlockRow(block: $0, figures: byBlock[$0] ?? RollupFigures()) }
        rows.append(BlockRow(block: nil, figures: rows.reduce(RollupFigures()) { $0 + $1.figures }))
        blocks = rows
    }

    // MARK: Rendering (byte-identical for the same input)

    static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    public func unitsCSV() -> [UInt8] {
        var out = Rollup.bom
        out += Array(
            (["from", "to", "unit", "unit_name", "block"] + RollupFigures.columns).joined(separator: ",").utf8)
        out += [0x0D, 0x0A]
        for r in units {
            let keys = [period.from.description, period.to.description, r.unit, r.unitName, r.block.rawValue]
            out += Array(
                (keys.map(CSV.escape) + r.figures.values.map(String.init) + [r.figures.onTimeRate]).joined(
                    separator: ","
                ).utf8)
            out += [0x0D, 0x0A]
        }
        return out
    }

    public func blocksCSV() -> [UInt8] {
        var out = Rollup.bom
        out += Array((["from", "to", "block"] + RollupFigures.columns).joined(separator: ",").utf8)
        out += [0x0D, 0x0A]
        for r in blocks {
            let keys = [period.from.description, period.to.description, r.blockName]
            out += Array(
                (keys + r.figures.values.map(String.init) + [r.figures.onTimeRate]).joined(separator: ",").utf8)
            out += [0x0D, 0x0A]
        }
        return out
    }

    private func jsonRows(_ rows: [(keys: [(String, String)], figures: RollupFigures)]) -> [UInt8] {
        var out: [UInt8] = Array("[\n".utf8)
        for (n, r) in rows.enumerated() {
            var w = JSONWriter()
            w.beginObject()
            for (k, v) in r.keys { w.field(k, v) }
            for (k, v) in zip(RollupFigures.columns, r.figures.values) { w.field(k, v) }
            w.key("on_time_rate")
            let rate = r.figures.onTimeRate
            if rate.isEmpty { w.null() } else { w.raw(rate) }
            w.endObject()
            out += w.bytes
            out += Array((n + 1 < rows.count ? ",\n" : "\n").utf8)
        }
        out += Array("]\n".utf8)
        return out
    }

    public func unitsJSON() -> [UInt8] {
        jsonRows(
            units.map {
                (
                    [
                        ("from", period.from.description), ("to", period.to.description), ("unit", $0.unit),
                        ("unit_name", $0.unitName), ("block", $0.block.rawValue),
                    ], $0.figures
                )
            })
    }

    public func blocksJSON() -> [UInt8] {
        jsonRows(
            blocks.map {
                (
                    [("from", period.from.description), ("to", period.to.description), ("block", $0.blockName)],
                    $0.figures
                )
            })
    }

    /// All identity violations in all rows, and blocks that are not the sum of their units.
    public var identityViolations: [String] {
        var v: [String] = []
        for r in units { v += r.figures.identityViolations.map { "unit \(r.unit): " + $0 } }
        for r in blocks { v += r.figures.identityViolations.map { "block \(r.blockName): " + $0 } }
        for b in blocks {
            let sum = units.filter { b.block == nil || $0.block == b.block }.reduce(RollupFigures()) { $0 + $1.figures }
            if sum != b.figures { v.append("block \(b.blockName) is not the sum of its units") }
        }
        return v
    }
}
