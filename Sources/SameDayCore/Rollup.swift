/// What a rollup needs to know about one received dossier; computed from its events, so rollups can be
/// recomputed at any time for any period.
public struct DossierFacts: Sendable, Hashable {
    public var unit: UnitID
    public var procedure: ProcedureRef
    /// The procedure's field (lĩnh vực): the row within the unit.
    public var field: FieldID
    public var sameDay: Bool
    /// The procedure is not in the catalog for the dossier's unit (docs/rules.md §2.2: tracked with the default SLA).
    public var notInCatalog: Bool
    /// A stopped or supplement-waiting dossier with no event for this long is abandoned (`staleAfterDays`).
    public var staleSeconds: Int64
    /// The first `received`, as it arrived.
    public var receivedAt: Instant
    /// When reports count the dossier received: the T0 of its first `received`, moved into the next working session
    /// as the one-stop desks and the portals date a dossier (docs/rules.md §6.1). A dossier accepted online at 21:00,
    /// on a Sunday or on a holiday counts on the next working day, the day its deadline starts from.
    public var countedAt: Instant
    public var channel: Channel?
    /// The unit's appointment slip (`promisedAt` of the first `received`) names another working day than the
    /// deadline SameDay computed: the unit's system miscounts, or one of the two calendars is out of date.
    public var promiseDiffers: Bool
    /// Resolution (`resolved` or `withdrawn`) and its classification; `stopped` is not a resolution.
    public var resolvedAt: Instant?
    public var withdrawn: Bool
    public var classification: Classification?
    /// Running and paused stretches; a `stopped` dossier ends in a stale paused segment that never ends.
    public var segments: [Segment]

    /// How far T0 may be after the arrival and still date the dossier (a Tết break is 9 days).
    static let maxCountingDelay: Int64 = 31 * LocalTime.secondsPerDay

    /// Nil when the dossier was never received (submitted only, refused, withdrawn before reception).
    /// `config` is borrowed: an initializer takes its arguments owned, and copying the configuration (two dozen
    /// references) for every changed dossier was an eighth of the files thread.
    public init?(state st: DossierState, config: borrowing Configuration) {
        guard let received = st.firstReceivedAt, let unit = st.unit, let ref = st.procedure else { return nil }
        self.unit = unit
        procedure = ref
        field = config.field(ref)
        sameDay = config.sla(ref) == .sameDay
        if case .unlisted = ref { notInCatalog = true } else { notInCatalog = false }
        staleSeconds = Int64(config.alerting.staleAfterDays) * LocalTime.secondsPerDay
        receivedAt = received
        // A calendar without work for weeks (its T0 never comes) falls back to the arrival.
        let start = st.episodes.first?.deadline.start ?? received
        countedAt = start - received <= Self.maxCountingDelay ? max(start, received) : received
        channel = st.channel
        promiseDiffers = st.promiseDiffers
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

/// The figures of one row (docs/rules.md §6.1), in the order of the report form.
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
    public var receivedPromiseDiffers = 0

    public init() {}

    /// Nothing counted: a field row that is all zeros is not written.
    public var isZero: Bool { self == RollupFigures() }

    public var receivedTotal: Int { receivedOnline + receivedDirectPostal + carriedOver }
    public var resolvedTotal: Int { resolvedEarly + resolvedOnTime + resolvedLate }
    public var inProgressTotal: Int { inProgressOnTime + inProgressOverdue }

    /// Column names after the key columns, in the order of docs/rules.md §6.1.
    public static let columns = [
        "received_total", "received_online", "received_direct_postal", "carried_over", "resolved_total",
        "resolved_early", "resolved_on_time", "resolved_late", "withdrawn", "in_progress_total",
        "in_progress_on_time", "in_progress_overdue", "paused", "abandoned", "same_day_received",
        "same_day_resolved_in_time", "same_day_resolved_same_day", "received_not_in_catalog",
        "received_promise_differs", "on_time_rate",
    ]
    /// The columns of files written before `received_promise_differs`: still read (as 0 for it).
    public static let columnsBeforePromise = columns.filter { $0 != "received_promise_differs" }

    /// The integer columns (all but `on_time_rate`), in column order.
    public var values: [Int] {
        var values: [Int] = []
        values.reserveCapacity(19)
        forEachValue { values.append($0) }
        return values
    }

    /// (early + on_time) / resolved as a percentage with one decimal, rounded half up; empty when nothing resolved.
    public var onTimeRate: String {
        var bytes: [UInt8] = []
        appendOnTimeRate(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `onTimeRate`'s bytes.
    func appendOnTimeRate(to out: inout [UInt8]) {
        let total = resolvedTotal
        guard total > 0 else { return }
        let tenths = (2000 * (resolvedEarly + resolvedOnTime) + total) / (2 * total)
        Rollup.appendDecimal(tenths / 10, to: &out)
        out.append(UInt8(ascii: "."))
        Rollup.appendDecimal(tenths % 10, to: &out)
    }

    /// The integer columns in column order, without making an array of them (the one list of them: `values` too).
    func forEachValue(_ body: (Int) -> Void) {
        body(receivedTotal)
        body(receivedOnline)
        body(receivedDirectPostal)
        body(carriedOver)
        body(resolvedTotal)
        body(resolvedEarly)
        body(resolvedOnTime)
        body(resolvedLate)
        body(withdrawn)
        body(inProgressTotal)
        body(inProgressOnTime)
        body(inProgressOverdue)
        body(paused)
        body(abandoned)
        body(sameDayReceived)
        body(sameDayResolvedInTime)
        body(sameDayResolvedSameDay)
        body(receivedNotInCatalog)
        body(receivedPromiseDiffers)
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
        r.receivedPromiseDiffers += b.receivedPromiseDiffers
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
        r.receivedPromiseDiffers -= b.receivedPromiseDiffers
        return r
    }

    /// Adds one dossier's contribution to the period (docs/rules.md §4.8 and §6.1–6.2 give each rule).
    public mutating func add(_ f: DossierFacts, period: Period) {
        let s = period.start
        let e = period.end
        guard f.countedAt < e else { return }
        if f.countedAt < s {
            if let r = f.resolvedAt, r < s { return }  // resolved before the period: not carried over
            carriedOver += 1
        } else {
            if f.channel == .online { receivedOnline += 1 } else { receivedDirectPostal += 1 }
            if f.sameDay { sameDayReceived += 1 }
            if f.notInCatalog { receivedNotInCatalog += 1 }
            if f.promiseDiffers { receivedPromiseDiffers += 1 }
            // The seed's figure: received and resolved on the same day, the day the dossier counts for (a
            // withdrawal is not a result).
            if f.sameDay, !f.withdrawn, let r = f.resolvedAt, LocalTime.day(of: r) <= LocalTime.day(of: f.countedAt) {
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

    /// The identities of docs/rules.md §6.4; returns the ones that fail (empty when all hold).
    public var identityViolations: [FiguresViolation] {
        var v: [FiguresViolation] = []
        if receivedTotal != resolvedTotal + inProgressTotal + paused + abandoned {
            v.append(.receivedNotAccountedFor(receivedTotal: receivedTotal))
        }
        if sameDayResolvedSameDay > sameDayReceived { v.append(.sameDayResolvedSameDayExceedsReceived) }
        if receivedNotInCatalog > receivedOnline + receivedDirectPostal { v.append(.notInCatalogExceedsReceived) }
        if receivedPromiseDiffers > receivedOnline + receivedDirectPostal { v.append(.promiseDiffersExceedsReceived) }
        if withdrawn > resolvedOnTime { v.append(.withdrawnExceedsResolvedOnTime) }
        if sameDayResolvedInTime > resolvedEarly + resolvedOnTime { v.append(.sameDayInTimeExceedsInTime) }
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
            r.receivedPromiseDiffers += d.receivedPromiseDiffers
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
        // Absent from files written before the column existed.
        if names.contains("received_promise_differs") {
            guard let p = v("received_promise_differs") else { return nil }
            receivedPromiseDiffers = p
        }
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

/// One row per field (lĩnh vực) within a unit, as Biểu 06 lays them out; a unit's field rows add up to its row.
public struct FieldRow: Sendable, Hashable {
    public var unit: String
    public var unitName: String
    public var block: Block
    public var field: String
    public var figures: RollupFigures
    public init(unit: String, unitName: String, block: Block, field: String, figures: RollupFigures) {
        self.unit = unit
        self.unitName = unitName
        self.block = block
        self.field = field
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
    /// The rows of the fields within each unit that counted anything, in the order of the units, then of the
    /// catalog's fields (empty for a rollup built from unit rows alone).
    public var fields: [FieldRow]
    /// Computed from simulated events (`SimulatedData`): the CSV and JSON forms end every row with a `data` column
    /// saying "simulated". Daily files never set it (the folder's marker file says it for them).
    public var simulated = false

    public init(period: Period, units: [UnitRow], blocks: [BlockRow], fields: [FieldRow] = []) {
        self.period = period
        self.units = units
        self.blocks = blocks
        self.fields = fields
    }

    /// Computes a rollup from dossier facts.
    public static func compute(facts: some Sequence<DossierFacts>, period: Period, config: Configuration) -> Rollup {
        var cells = [RollupFigures](repeating: RollupFigures(), count: config.cellCount)
        for f in facts { cells[config.cellIndex(RollupCell(unit: f.unit, field: f.field))].add(f, period: period) }
        return Rollup(cells: cells, period: period, config: config)
    }

    /// Builds a rollup from figures per cell (`Configuration.cellIndex`): unit rows are the sums of their fields.
    public init(cells: [RollupFigures], period: Period, config: Configuration) {
        let fieldCount = config.fields.count
        var unitRows: [UnitRow] = []
        var fieldRows: [FieldRow] = []
        unitRows.reserveCapacity(config.units.count)
        for (i, unit) in config.units.enumerated() {
            var total = RollupFigures()
            for f in 0..<fieldCount {
                let figures = cells[i * fieldCount + f]
                guard !figures.isZero else { continue }
                total = total + figures
                fieldRows.append(
                    FieldRow(
                        unit: unit.code, unitName: unit.name, block: unit.block, field: config.fields[f],
                        figures: figures))
            }
            unitRows.append(UnitRow(unit: unit.code, unitName: unit.name, block: unit.block, figures: total))
        }
        self.init(unitRows: unitRows, fieldRows: fieldRows, period: period)
    }

    /// Builds the block and city rows from unit rows (blocks are sums of their units, by construction; a block
    /// without unit rows has no row); field rows keep their order within a unit and follow the units' order.
    public init(unitRows: [UnitRow], fieldRows: [FieldRow] = [], period: Period) {
        self.period = period
        units = unitRows.sorted { ($0.block, $0.unit) < ($1.block, $1.unit) }
        var fieldsOfUnit: [String: [FieldRow]] = [:]
        for row in fieldRows { fieldsOfUnit[row.unit, default: []].append(row) }
        fields = units.flatMap { fieldsOfUnit[$0.unit] ?? [] }
        var byBlock: [Block: RollupFigures] = [:]
        for r in units {
            byBlock[r.block, default: RollupFigures()] = byBlock[r.block, default: RollupFigures()] + r.figures
        }
        // A block with no unit gets no row: a configuration without districts (the map since 2025) shows none.
        var rows = Block.allCases.sorted().compactMap { b in byBlock[b].map { BlockRow(block: b, figures: $0) } }
        rows.append(BlockRow(block: nil, figures: rows.reduce(RollupFigures()) { $0 + $1.figures }))
        blocks = rows
    }

    // MARK: Rendering (byte-identical for the same input)

    static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// A CSV table: the header (in the chosen language) and one line per row, CRLF, with a BOM for spreadsheets. Each
    /// row is the period, its keys, its figures and the simulated label, written as bytes (a string per field, joined
    /// per row, was most of a snapshot's CPU).
    private func csv<Row>(
        keys: [String], headers: RollupHeaders, rows: [Row], rowKeys: (Row) -> [String],
        figures: (Row) -> RollupFigures
    ) -> [UInt8] {
        var out = Rollup.bom
        out.reserveCapacity(256 + rows.count * 160)
        let labels = headers.labels(["from", "to"] + keys + RollupFigures.columns + (simulated ? ["data"] : []))
        for (n, label) in labels.enumerated() {
            if n > 0 { out.append(CSV.comma) }
            CSV.appendEscaped(label, to: &out)
        }
        out += [0x0D, 0x0A]
        var period: [UInt8] = []
        CSV.appendEscaped(self.period.from.description, to: &period)
        period.append(CSV.comma)
        CSV.appendEscaped(self.period.to.description, to: &period)
        // As it always was: the label unquoted.
        let label = simulated ? [CSV.comma] + Array((headers == .vi ? SimulatedData.label : "simulated").utf8) : []
        for row in rows {
            out += period
            for key in rowKeys(row) {
                out.append(CSV.comma)
                CSV.appendEscaped(key, to: &out)
            }
            let figures = figures(row)
            figures.forEachValue { value in
                out.append(CSV.comma)
                Self.appendDecimal(value, to: &out)
            }
            out.append(CSV.comma)
            figures.appendOnTimeRate(to: &out)
            out += label
            out += [0x0D, 0x0A]
        }
        return out
    }

    /// `String(value)`'s bytes.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // An Int has at most 19 digits.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start...]))
        }
    }

    public func unitsCSV(headers: RollupHeaders = .en) -> [UInt8] {
        csv(
            keys: ["unit", "unit_name", "block"], headers: headers, rows: units,
            rowKeys: { [$0.unit, $0.unitName, $0.block.rawValue] }, figures: \.figures)
    }

    /// The rows per field within each unit (only fields that counted something).
    public func fieldsCSV(headers: RollupHeaders = .en) -> [UInt8] {
        csv(
            keys: ["unit", "unit_name", "block", "field"], headers: headers, rows: fields,
            rowKeys: { [$0.unit, $0.unitName, $0.block.rawValue, $0.field] }, figures: \.figures)
    }

    public func blocksCSV(headers: RollupHeaders = .en) -> [UInt8] {
        csv(keys: ["block"], headers: headers, rows: blocks, rowKeys: { [$0.blockName] }, figures: \.figures)
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
            if simulated { w.field("data", "simulated") }
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

    public func fieldsJSON() -> [UInt8] {
        jsonRows(
            fields.map {
                (
                    [
                        ("from", period.from.description), ("to", period.to.description), ("unit", $0.unit),
                        ("unit_name", $0.unitName), ("block", $0.block.rawValue), ("field", $0.field),
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
    public var identityViolations: [RollupViolation] {
        var v: [RollupViolation] = []
        for r in units { v += r.figures.identityViolations.map { .unit(r.unit, $0) } }
        for r in blocks { v += r.figures.identityViolations.map { .block(r.blockName, $0) } }
        var fieldSums: [String: RollupFigures] = [:]
        for r in fields {
            fieldSums[r.unit, default: RollupFigures()] = fieldSums[r.unit, default: RollupFigures()] + r.figures
        }
        if !fields.isEmpty {
            for r in units where (fieldSums[r.unit] ?? RollupFigures()) != r.figures {
                v.append(.unitNotSumOfFields(unit: r.unit))
            }
        }
        for b in blocks {
            let sum = units.filter { b.block == nil || $0.block == b.block }.reduce(RollupFigures()) { $0 + $1.figures }
            if sum != b.figures { v.append(.blockNotSumOfUnits(block: b.blockName)) }
        }
        return v
    }
}

/// An identity one row's figures break.
public enum FiguresViolation: Sendable, Hashable, CustomStringConvertible {
    case receivedNotAccountedFor(receivedTotal: Int)
    case sameDayResolvedSameDayExceedsReceived
    case notInCatalogExceedsReceived
    case promiseDiffersExceedsReceived
    case withdrawnExceedsResolvedOnTime
    case sameDayInTimeExceedsInTime

    public var description: String {
        switch self {
        case .receivedNotAccountedFor(let received):
            "received_total \(received) ≠ resolved_total + in_progress_total + paused + abandoned"
        case .sameDayResolvedSameDayExceedsReceived: "same_day_resolved_same_day exceeds same_day_received"
        case .notInCatalogExceedsReceived: "received_not_in_catalog exceeds the dossiers received in the period"
        case .promiseDiffersExceedsReceived:
            "received_promise_differs exceeds the dossiers received in the period"
        case .withdrawnExceedsResolvedOnTime: "withdrawn exceeds resolved_on_time"
        case .sameDayInTimeExceedsInTime: "same_day_resolved_in_time too large"
        }
    }
}

/// An identity a rollup breaks: in one of its rows, or between its levels (fields → units → blocks).
public enum RollupViolation: Sendable, Hashable, CustomStringConvertible {
    case unit(String, FiguresViolation)
    case block(String, FiguresViolation)
    case unitNotSumOfFields(unit: String)
    case blockNotSumOfUnits(block: String)

    public var description: String {
        switch self {
        case .unit(let unit, let violation): "unit \(unit): \(violation)"
        case .block(let block, let violation): "block \(block): \(violation)"
        case .unitNotSumOfFields(let unit): "unit \(unit) is not the sum of its fields"
        case .blockNotSumOfUnits(let block): "block \(block) is not the sum of its units"
        }
    }
}

/// The language of a CSV header: the column names (`en`, the default, what tools read back) or the labels of the
/// Biểu 06 form (`vi`, for a clerk pasting into the official template; `sameday report --headers vi`).
public enum RollupHeaders: String, Sendable, CaseIterable {
    case en, vi

    public func labels(_ columns: [String]) -> [String] {
        switch self {
        case .en: columns
        case .vi: columns.map { RollupHeaders.vietnamese[$0] ?? $0 }
        }
    }

    /// Biểu 06/VPCP/KSTT's labels for our column names (docs/rules.md §6.1), and for the key columns.
    public static let vietnamese: [String: String] = [
        "from": "Từ ngày",
        "to": "Đến ngày",
        "unit": "Mã đơn vị",
        "unit_name": "Tên đơn vị",
        "block": "Khối",
        "field": "Lĩnh vực",
        "received_total": "Tổng số hồ sơ yêu cầu giải quyết",
        "received_online": "Số mới tiếp nhận trực tuyến",
        "received_direct_postal": "Số mới tiếp nhận trực tiếp hoặc dịch vụ bưu chính",
        "carried_over": "Số kỳ trước chuyển qua",
        "resolved_total": "Số hồ sơ đã giải quyết: tổng số",
        "resolved_early": "Trả trước hạn",
        "resolved_on_time": "Trả đúng thời hạn",
        "resolved_late": "Trả quá hạn",
        "withdrawn": "Rút hồ sơ",
        "in_progress_total": "Số hồ sơ đang giải quyết: tổng số",
        "in_progress_on_time": "Đang giải quyết: chưa đến hạn",
        "in_progress_overdue": "Đang giải quyết: quá hạn",
        "paused": "Tạm dừng giải quyết",
        "abandoned": "Dừng hoặc chờ bổ sung quá thời hạn",
        "same_day_received": "Tiếp nhận thủ tục giải quyết trong ngày",
        "same_day_resolved_in_time": "Thủ tục trong ngày giải quyết đúng hạn",
        "same_day_resolved_same_day": "Tiếp nhận và giải quyết ngay trong ngày",
        "received_not_in_catalog": "Tiếp nhận ngoài danh mục",
        "received_promise_differs": "Phiếu hẹn khác hạn tính toán",
        "on_time_rate": "Tỷ lệ đúng hạn (%)",
        "data": "Loại số liệu",
    ]
}
