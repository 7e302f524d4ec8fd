/// The four blocks of units (khối).
public enum Block: String, CaseIterable, Sendable, Hashable, Comparable {
    case district, commune, department, vertical
    /// Blocks sort by their code, so that report rows are in a stable, documented order.
    public static func < (a: Block, b: Block) -> Bool { a.rawValue < b.rawValue }
}

/// A unit (đơn vị) of the registry.
public struct Unit: Sendable, Hashable {
    public var code: String
    public var name: String
    public var block: Block
    public var parent: String?
    /// Index into `Configuration.calendars`.
    public var calendar: Int
    /// Where the row comes from (`units.csv`'s optional `source` column).
    public var source: Provenance = .unstated

    /// Unit codes are ASCII letters, digits, `.`, `_` and `-` (convention): they travel in routing keys, SQL and
    /// file names, which compare bytes, and `*` or `#` would be wildcards in a topic binding or permission.
    public static func isValidCode(_ code: String) -> Bool {
        !code.isEmpty
            && code.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E
                    || $0 == 0x5F || $0 == 0x2D
            }
    }

    /// A unit code as one routing-key word: topic keys split on dots, and agency codes such as `000.00.15.H29`
    /// have dots, so they become underscores (convention: this is the only place that says so). The registry
    /// refuses two codes with the same word.
    public static func routingWord(_ code: String) -> String {
        // Codes rarely have a dot; this runs for every event published and received, and for every alert.
        guard code.utf8.contains(UInt8(ascii: ".")) else { return code }
        return String(code.map { $0 == "." ? "_" : $0 })
    }
}

/// Two units that share dossiers (liên thông, inter-level procedures): `receiving` registers the dossier (its code
/// carries `receiving`'s agency id) and `resolving` may send events for it too. Declared in `interlevel.csv`.
public struct InterlevelPair: Sendable, Hashable {
    public var receiving: String
    public var resolving: String
    public init(receiving: String, resolving: String) {
        self.receiving = receiving
        self.resolving = resolving
    }
}

/// A dense integer id for a unit: its index in `Configuration.units` (keeps per-dossier state small).
public typealias UnitID = UInt32
/// Index into `Configuration.fields`: a field (lĩnh vực) of the catalog.
public typealias FieldID = UInt16

/// Where a dossier counts in the rollups: its unit and its procedure's field (Biểu 06's rows within a unit).
public struct RollupCell: Hashable, Sendable {
    public var unit: UnitID
    public var field: FieldID
    public init(unit: UnitID, field: FieldID) {
        self.unit = unit
        self.field = field
    }
}

/// The service-level agreement of a procedure.
public enum SLA: Hashable, Sendable, CustomStringConvertible {
    case sameDay
    case hours(Int)
    case days(Int)

    /// Convention (docs/rules.md §2.2): a working day is 480 working minutes.
    public static let workingDaySeconds: Int64 = 480 * 60

    /// Parses `same-day`, `hours:N` or `days:N` with 1 ≤ N ≤ 1000 (a bound that keeps every deadline within the
    /// years the calendar arithmetic scans).
    public init?(_ text: String) {
        if text == "same-day" {
            self = .sameDay
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[1]), n >= 1, n <= 1000, parts[1].allSatisfy(\.isASCII),
            parts[1].first != "+"
        else { return nil }
        switch parts[0] {
        case "hours": self = .hours(n)
        case "days": self = .days(n)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .sameDay: "same-day"
        case .hours(let n): "hours:\(n)"
        case .days(let n): "days:\(n)"
        }
    }

    public var slaClass: SLAClass {
        switch self {
        case .sameDay: .sameDay
        case .hours: .hours
        case .days: .days
        }
    }
}

/// The three SLA classes that thresholds are configured for.
public enum SLAClass: String, CaseIterable, Sendable, Hashable {
    case sameDay = "same-day"
    case hours
    case days
}

/// Where a catalog entry applies.
public enum Scope: Hashable, Sendable {
    case city
    case unit(String)
}

/// One procedure of the catalog (Danh mục).
public struct CatalogEntry: Sendable, Hashable {
    public var procedure: String
    public var name: String
    public var field: String
    public var sla: SLA
    /// Own intake cut-off (seconds after local midnight), for same-day entries.
    public var cutoff: Int32?
    public var scope: Scope
    /// Where the row comes from (`catalog.csv`'s optional `source` column).
    public var source: Provenance = .unstated
}

/// Where a row of `units.csv` or `catalog.csv` comes from: its optional `source` column. A citation confirms the
/// row; `unconfirmed` (believed real, no source seen) and `illustrative` (made up for an example) say it is not,
/// each optionally followed by `: why`. A file without the column states nothing.
public enum Provenance: Hashable, Sendable {
    case cited(String)
    case unconfirmed(why: String)
    case illustrative(why: String)
    case unstated

    /// The longest cell accepted: a reference, not a document.
    public static let maxCellBytes = 300

    /// Parses a `source` cell; nil when it is empty or too long.
    public init?(cell: String) {
        guard !cell.isEmpty, cell.utf8.count <= Self.maxCellBytes else { return nil }
        func why(after word: String) -> String? {
            guard cell.hasPrefix(word) else { return nil }
            let rest = cell.dropFirst(word.count)
            if rest.isEmpty { return "" }
            guard rest.first == ":" else { return nil }
            return String(rest.dropFirst()).trimmingSpaces
        }
        if let w = why(after: "unconfirmed") {
            self = .unconfirmed(why: w)
        } else if let w = why(after: "illustrative") {
            self = .illustrative(why: w)
        } else {
            self = .cited(cell)
        }
    }

    /// Unconfirmed or illustrative: what `check-config.py` lists and `seed-2022` leaves out unless asked.
    public var isUnconfirmed: Bool {
        switch self {
        case .unconfirmed, .illustrative: true
        case .cited, .unstated: false
        }
    }
}

/// How a dossier's procedure is known: by its catalog index, or (not in the catalog for its unit) by its code.
public enum ProcedureRef: Hashable, Sendable {
    case catalog(UInt32)
    case unlisted(String)
}

/// Alert levels (docs/rules.md §5.1).
public enum AlertLevel: UInt8, CaseIterable, Sendable, Hashable, Comparable {
    // Raw values are stored (alert rows, fired masks): a new level takes the next one, whatever its place.
    case warning = 0, critical, overdue, escalated, cleared, resolvedLate, sourceSilent, atRisk

    public var name: String {
        switch self {
        case .warning: "warning"
        case .critical: "critical"
        case .overdue: "overdue"
        case .escalated: "escalated"
        case .cleared: "cleared"
        case .resolvedLate: "resolved_late"
        case .sourceSilent: "source_silent"
        case .atRisk: "at_risk"
        }
    }

    public init?(name: String) {
        guard let l = AlertLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = l
    }

    /// The levels that fire on the SLA clock, in the order they fire.
    public static let clockLevels: [AlertLevel] = [.warning, .critical, .overdue, .escalated]

    /// Severity order: `at_risk` (a forecast) comes before `warning`.
    var rank: Int { self == .atRisk ? -1 : Int(rawValue) }

    public static func < (a: AlertLevel, b: AlertLevel) -> Bool { a.rank < b.rank }
}

/// People roles that alerts are routed to.
public enum Role: String, CaseIterable, Sendable, Hashable {
    case specialist, officeHead = "office_head", unitHead = "unit_head", reception,
        citySupervisor = "city_supervisor"
}

/// One threshold: how far before or after the deadline, or how much of the working time used.
public enum ThresholdRule: Hashable, Sendable {
    case minutesBefore(Int)
    case percentUsed(Int)
    case minutesAfter(Int)

    /// The threshold as working seconds after the episode's start, given the working seconds to the deadline.
    /// "Earliest instant at which the used time reaches it" is then `start + offset` on the calendar.
    func offset(dueOffset: Int64) -> Int64 {
        switch self {
        case .minutesBefore(let m): return max(0, dueOffset - Int64(m) * 60)
        case .percentUsed(let p): return max(0, (dueOffset * Int64(p) + 99) / 100)  // rounded up: "reaches"
        case .minutesAfter(let m): return dueOffset + Int64(m) * 60
        }
    }
}

/// Warning, critical and escalated thresholds of one SLA class or catalog entry.
public struct Thresholds: Hashable, Sendable {
    public var warning: ThresholdRule
    public var critical: ThresholdRule
    public var escalated: ThresholdRule

    /// docs/rules.md §5.1 defaults.
    public static func defaults(for c: SLAClass) -> Thresholds {
        switch c {
        case .sameDay:
            Thresholds(warning: .minutesBefore(90), critical: .minutesBefore(30), escalated: .minutesAfter(60))
        case .days: Thresholds(warning: .percentUsed(75), critical: .percentUsed(90), escalated: .minutesAfter(480))
        case .hours: Thresholds(warning: .percentUsed(75), critical: .percentUsed(90), escalated: .minutesAfter(60))
        }
    }
}

/// A per-procedure override: any level left nil keeps the SLA class's threshold.
public struct ThresholdOverride: Hashable, Sendable {
    public var warning: ThresholdRule?
    public var critical: ThresholdRule?
    public var escalated: ThresholdRule?
}

/// `alerting.json`: thresholds, silence, routing (docs/rules.md §7.5). Every part optional.
public struct AlertingPolicy: Sendable {
    public var thresholds: [SLAClass: Thresholds]
    public var procedures: [String: ThresholdOverride]
    public var defaultSla: SLA
    /// `source_silent` after this much working time without events from a unit (the default; see
    /// `silenceWorkingMinutes(unit:block:)` for the per-block and per-unit overrides).
    public var silenceWorkingMinutes: Int
    /// `silence.blocks`: the silence threshold of a block's units (a ward that sends a few events a day is quiet
    /// for longer than a district without being down).
    public var silenceBlocks: [Block: Int] = [:]
    /// `silence.units`: one unit's own threshold, by unit code; wins over its block's.
    public var silenceUnits: [String: Int] = [:]
    /// A dossier stopped, or waiting for a supplement, with no event for this many calendar days leaves the paused
    /// stock as abandoned (docs/rules.md §4.8).
    public var staleAfterDays: Int
    /// `feesPauseTheClock` (default true): `fee_requested` … `fee_paid` stops the clock (docs/rules.md §4.4). A city
    /// whose desks count the time a citizen takes to pay against the deadline sets it to false; the two events are then
    /// recorded and change nothing.
    public var feesPauseTheClock = true
    /// `extensions`: the fields (lĩnh vực) whose dossiers an `extended` event may give more time, and how much at
    /// most (docs/rules.md §4.6). Decree 23/2015 (certification) lets a desk that cannot certify many copies, many
    /// pages or a complex paper within the day extend by at most two working days.
    public var extensionFields: Set<String> = ["Chứng thực"]
    public var extensionMaxWorkingDays = 2
    /// `atRisk`: the blocks whose units' same-day dossiers the queue forecast watches (`at_risk`, docs/rules.md
    /// §5.6; all by default, none turns it off) and the confidence it flags at.
    public var atRiskBlocks: Set<Block> = Set(Block.allCases)
    public var atRiskConfidence = QueueForecast.Settings().confidence
    public var levels: [AlertLevel: [Role]]
    public var unitPeople: [String: [Role: [String]]]
    public var blockPeople: [Block: [Role: [String]]]
    /// `recipients.parentRoles`: roles whose holders in a unit's parent units (its district, for a ward) also receive
    /// the unit's alerts of the levels that go to that role (docs/rules.md §2.5). Empty: none.
    public var parentRoles: Set<Role> = []

    /// The policy without an `alerting.json` (docs/rules.md §7.1): the §5.1 defaults, `days:1` for unlisted procedures,
    /// no recipients.
    public static let defaults = AlertingPolicy(
        thresholds: Dictionary(uniqueKeysWithValues: SLAClass.allCases.map { ($0, Thresholds.defaults(for: $0)) }),
        procedures: [:], defaultSla: .days(1), silenceWorkingMinutes: 120, staleAfterDays: 60,
        levels: [
            .atRisk: [.specialist, .officeHead], .warning: [.specialist], .critical: [.specialist, .officeHead],
            .overdue: [.specialist, .officeHead, .unitHead], .escalated: [.unitHead, .citySupervisor],
            .cleared: [.specialist], .resolvedLate: [.officeHead, .unitHead],
            .sourceSilent: [.reception, .citySupervisor],
        ],
        unitPeople: [:], blockPeople: [:])

    /// The working minutes of silence after which a unit is reported: the unit's own, else its block's, else the
    /// default (`silence.workingMinutes`).
    public func silenceWorkingMinutes(unit: String, block: Block) -> Int {
        silenceUnits[unit] ?? silenceBlocks[block] ?? silenceWorkingMinutes
    }

    /// Thresholds for a procedure of a given SLA class, with the procedure's override applied.
    public func thresholds(for procedure: String, sla: SLA) -> Thresholds {
        var t = thresholds[sla.slaClass] ?? Thresholds.defaults(for: sla.slaClass)
        if let o = procedures[procedure] {
            if let w = o.warning { t.warning = w }
            if let c = o.critical { t.critical = c }
            if let e = o.escalated { t.escalated = e }
        }
        return t
    }

    /// Recipients of `level` for a unit: per role, the unit's people, else its block's; then, for the roles in
    /// `parentRoles`, the people each ancestor lists for that role itself (`ancestors`: parent first, up the tree).
    /// Order kept, no repeats.
    public func recipients(level: AlertLevel, unit: String, block: Block, ancestors: [String] = []) -> [String] {
        var out: [String] = []
        let roles = levels[level] ?? []
        for role in roles {
            let people = unitPeople[unit]?[role].flatMap { $0.isEmpty ? nil : $0 } ?? blockPeople[block]?[role] ?? []
            for p in people where !out.contains(p) { out.append(p) }
        }
        for ancestor in ancestors {
            for role in roles where parentRoles.contains(role) {
                for p in unitPeople[ancestor]?[role] ?? [] where !out.contains(p) { out.append(p) }
            }
        }
        return out
    }
}
