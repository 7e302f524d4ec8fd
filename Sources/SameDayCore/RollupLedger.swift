/// The facts of every dossier a worker holds, by dossier code (`RollupKeeper`). The ledger reads them through the
/// dictionary's values in place: copying them into an array cost a retain of each dossier's facts for every day
/// the ledger added.
public typealias DossierFactsByCode = [String: DossierFacts]

/// Daily rollups kept up to date as dossiers change, so a snapshot costs what changed since the last one, not the
/// whole history (issue "state bounded by open work").
///
/// A dossier's contribution to a day depends only on its facts (docs/rules.md §6.2 reads every figure at 24:00 of the
/// day), and an event at instant `t` changes the facts only from `t`'s day on. So the ledger keeps, for each day of
/// its window, one row of figures per unit and field (`RollupCell`); a change subtracts the dossier's old
/// contribution and adds its new one on the days from the change on, and marks the days whose figures moved. Days
/// before the window are never rewritten. Dossiers that left the worker's state contribute nothing to the window's
/// days, except abandoned ones, which stay in every later day as carried over and abandoned: they are counted per
/// cell (`retiredStock`).
public struct RollupLedger: Sendable {
    public let config: Configuration
    /// Days kept (and rewritten) back from the clock's day: `retainClosedDays`.
    public let windowDays: Int64
    /// Figures per cell (indexed by `Configuration.cellIndex`) for each day kept.
    private var figures: [Int64: [RollupFigures]] = [:]
    /// First and last day kept (nil while nothing was received).
    public private(set) var lowDay: Int64?
    public private(set) var highDay: Int64?
    /// The first day the shard has an event on: no day before it is written.
    public private(set) var firstDay: Int64?
    private var dirty: Set<Int64> = []
    /// Changed days that left the window before a snapshot wrote them.
    private var leaving: [(day: Int64, rollup: Rollup)] = []
    /// Retired abandoned dossiers per cell.
    public private(set) var retiredStock: [Int]

    public init(config: Configuration, windowDays: Int, retiredStock: [RollupCell: Int] = [:]) {
        self.config = config
        self.windowDays = Int64(max(1, windowDays))
        var stock = [Int](repeating: 0, count: config.cellCount)
        for (cell, count) in retiredStock
        where Int(cell.unit) < config.units.count && Int(cell.field) < config.fields.count {
            stock[config.cellIndex(cell)] += count
        }
        self.retiredStock = stock
    }

    @inline(__always) private func cell(_ f: DossierFacts) -> Int {
        config.cellIndex(RollupCell(unit: f.unit, field: f.field))
    }

    public var dirtyDays: [Int64] { dirty.sorted() }
    public var keptDays: ClosedRange<Int64>? {
        guard let lowDay, let highDay, lowDay <= highDay else { return nil }
        return lowDay...highDay
    }

    /// One dossier's figures on one day.
    public static func contribution(_ f: DossierFacts, day: Int64) -> RollupFigures {
        var r = RollupFigures()
        r.add(f, period: .day(LocalDate(dayNumber: day)))
        return r
    }

    /// The days on which a dossier can count at all: from the day it counts as received to its resolution (open or
    /// stopped: on). A dossier resolved before the day it counts for (a Sunday arrival settled at once) counts on
    /// that day alone.
    @inline(__always) static func activeDays(_ f: DossierFacts) -> (from: Int64, to: Int64) {
        let from = LocalTime.day(of: f.countedAt)
        return (from, f.resolvedAt.map { max(from, LocalTime.day(of: $0)) } ?? Int64.max)
    }

    /// Sets the range of days to keep: from the later of `firstDay` and the window's start (`clockDay` minus the
    /// window) through `lastDay`. Days that enter the range are computed from `facts` (every dossier the worker
    /// holds) and marked changed; days that leave it are dropped.
    public mutating func cover(
        firstDay: Int64, lastDay: Int64, clockDay: Int64, facts: () -> DossierFactsByCode.Values
    ) {
        self.firstDay = min(self.firstDay ?? firstDay, firstDay)
        let low = max(self.firstDay!, clockDay - windowDays + 1)
        let high = max(lastDay, low - 1)
        for day in figures.keys.sorted() where day < low || day > high {
            // A day leaving the window with changes not yet written is handed out one last time.
            if day < low, dirty.contains(day), let final = rollup(day: day) { leaving.append((day, final)) }
            figures[day] = nil
        }
        dirty = dirty.filter { $0 >= low && $0 <= high }
        let missing = low <= high ? (low...high).filter { figures[$0] == nil } : []
        lowDay = low
        highDay = high
        materialize(missing, facts: facts)
    }

    /// Extends the kept days through `day` (events reached it), computing the new days from `facts` before the
    /// changes that reached them are applied. Days are kept without gaps from the first one on, so no day is
    /// skipped when the clock moves fast between two snapshots (a backfill on the events clock).
    public mutating func extend(through day: Int64, firstDay: Int64, facts: () -> DossierFactsByCode.Values) {
        guard lowDay != nil, let highDay else {
            self.firstDay = min(self.firstDay ?? firstDay, firstDay)
            let low = min(self.firstDay!, day)
            self.lowDay = low
            self.highDay = day
            materialize(Array(low...day), facts: facts)
            return
        }
        guard day > highDay else { return }
        self.highDay = day
        materialize(Array(highDay + 1...day), facts: facts)
    }

    private mutating func materialize(_ days: [Int64], facts: () -> DossierFactsByCode.Values) {
        guard let first = days.min(), let last = days.max() else { return }
        let missing = Set(days)
        let stock = retiredStockFigures()
        for day in missing { figures[day] = stock }
        for f in facts() {
            let active = Self.activeDays(f)
            let from = max(active.from, first), to = min(active.to, last)
            guard from <= to else { continue }
            for day in from...to where missing.contains(day) {
                figures[day]![cell(f)] = figures[day]![cell(f)] + Self.contribution(f, day: day)
            }
        }
        dirty.formUnion(missing)
    }

    /// A dossier changed (or appeared: `old` nil) by events from `day` on: moves its contribution on the kept days.
    /// The files thread calls this for every changed dossier of every commit, so it allocates nothing.
    public mutating func change(from old: DossierFacts?, to new: DossierFacts?, since day: Int64) {
        guard let lowDay, let highDay else { return }
        let oldSpan = old.map(Self.activeDays)
        let newSpan = new.map(Self.activeDays)
        guard oldSpan != nil || newSpan != nil else { return }
        let lo = max(day, lowDay, min(oldSpan?.from ?? .max, newSpan?.from ?? .max))
        let hi = min(highDay, max(oldSpan?.to ?? .min, newSpan?.to ?? .min))
        guard lo <= hi else { return }
        let oldCell = old.map(cell)
        let newCell = new.map(cell)
        for d in lo...hi {
            var before: RollupFigures?
            if let old { before = Self.contribution(old, day: d) }
            var after: RollupFigures?
            if let new { after = Self.contribution(new, day: d) }
            if oldCell != nil, oldCell == newCell, before == after { continue }
            if let oldCell, let before, !before.isZero {
                figures[d]![oldCell] = figures[d]![oldCell] - before
                dirty.insert(d)
            }
            if let newCell, let after, !after.isZero {
                figures[d]![newCell] = figures[d]![newCell] + after
                dirty.insert(d)
            }
        }
    }

    /// A dossier left the worker's state: its days keep its contribution; if it was abandoned, every later day
    /// counts it too.
    public mutating func retire(abandonedIn cell: RollupCell?) {
        guard let cell, Int(cell.unit) < config.units.count, Int(cell.field) < config.fields.count else { return }
        retiredStock[config.cellIndex(cell)] += 1
    }

    /// The rollup of a kept day.
    public func rollup(day: Int64) -> Rollup? {
        guard let cells = figures[day] else { return nil }
        return Rollup(cells: cells, period: .day(LocalDate(dayNumber: day)), config: config)
    }

    /// The days changed since the last call, in order, with their rollups.
    public mutating func takeChanged() -> [(day: Int64, rollup: Rollup)] {
        defer {
            dirty.removeAll(keepingCapacity: true)
            leaving.removeAll()
        }
        return leaving + dirty.sorted().compactMap { day in rollup(day: day).map { (day, $0) } }
    }

    /// Marks every kept day changed (after a restart: the files on disk may predate the last commits).
    public mutating func markAllChanged() {
        if let keptDays { dirty.formUnion(keptDays) }
    }

    private func retiredStockFigures() -> [RollupFigures] {
        retiredStock.map { count in
            var r = RollupFigures()
            r.carriedOver = count
            r.abandoned = count
            return r
        }
    }
}
