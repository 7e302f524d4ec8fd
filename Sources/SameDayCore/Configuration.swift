/// A configuration error: which file, where (CSV line or JSON path, with its line), which field, what is wrong.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line (CSV record line, or the line a JSON value starts on), when known.
    public var line: Int?
    /// JSON path such as `calendars[0].days.mon.sessions[1]` (JSON files only).
    public var path: String?
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, path: String? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.path = path
        self.field = field
        self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let path { s += " at \(path)" }
        if let field { s += ": field \"\(field)\"" }
        return s + ": " + message
    }
}

/// The raw bytes of a configuration folder; the core does no I/O, the caller reads the files.
public struct ConfigurationFiles: Sendable {
    public var units: [UInt8]
    public var catalog: [UInt8]
    public var calendars: [UInt8]
    /// `alerting.json` is optional.
    public var alerting: [UInt8]?

    public init(units: [UInt8], catalog: [UInt8], calendars: [UInt8], alerting: [UInt8]?) {
        self.units = units
        self.catalog = catalog
        self.calendars = calendars
        self.alerting = alerting
    }

    public static let unitsFile = "units.csv"
    public static let catalogFile = "catalog.csv"
    public static let calendarsFile = "calendars.json"
    public static let alertingFile = "alerting.json"
}

/// A validated configuration (DOMAIN.md §7): units, catalog, calendars and alerting, with integer ids for units and
/// catalog entries so that per-dossier state stays small.
public struct Configuration: Sendable {
    public let units: [Unit]
    public let catalog: [CatalogEntry]
    public let calendars: [WorkCalendar]
    public let alerting: AlertingPolicy
    let unitIndex: [String: UnitID]
    let catalogIndex: [String: UInt32]
    /// Thresholds per catalog entry, resolved once (the alert path asks for them on every event).
    let catalogThresholds: [Thresholds]
    /// Recipients per unit and level (`unit * levels + level`), resolved once.
    let recipientTable: [[String]]

    public init(units: [Unit], catalog: [CatalogEntry], calendars: [WorkCalendar], alerting: AlertingPolicy) {
        self.units = units
        self.catalog = catalog
        self.calendars = calendars
        self.alerting = alerting
        var ui: [String: UnitID] = [:]
        for (i, u) in units.enumerated() { ui[u.code] = UnitID(i) }
        var ci: [String: UInt32] = [:]
        for (i, c) in catalog.enumerated() { ci[c.procedure] = UInt32(i) }
        unitIndex = ui
        catalogIndex = ci
        catalogThresholds = catalog.map { alerting.thresholds(for: $0.procedure, sla: $0.sla) }
        recipientTable = units.flatMap { u in
            AlertLevel.allCases.map { alerting.recipients(level: $0, unit: u.code, block: u.block) }
        }
    }

    /// Who receives `level` alerts for a unit (see `AlertingPolicy.recipients`).
    public func recipients(_ level: AlertLevel, unit: UnitID) -> [String] {
        recipientTable[Int(unit) * AlertLevel.allCases.count + Int(level.rawValue)]
    }

    /// The thresholds for a procedure (its class's, with the procedure's override).
    public func thresholds(_ ref: ProcedureRef, sla: SLA) -> Thresholds {
        if case .catalog(let i) = ref { return catalogThresholds[Int(i)] }
        return alerting.thresholds(for: procedureCode(ref), sla: sla)
    }

    public func unitID(_ code: String) -> UnitID? { unitIndex[code] }
    public func unit(_ id: UnitID) -> Unit { units[Int(id)] }
    public func calendar(of unit: UnitID) -> WorkCalendar { calendars[units[Int(unit)].calendar] }
    public func calendar(id: String) -> WorkCalendar? { calendars.first { $0.id == id } }

    public func procedureRef(_ code: String) -> ProcedureRef {
        if let i = catalogIndex[code] { return .catalog(i) }
        return .unlisted(code)
    }

    public func procedureCode(_ ref: ProcedureRef) -> String {
        switch ref {
        case .catalog(let i): catalog[Int(i)].procedure
        case .unlisted(let c): c
        }
    }

    public func catalogEntry(_ ref: ProcedureRef) -> CatalogEntry? {
        if case .catalog(let i) = ref { return catalog[Int(i)] }
        return nil
    }

    /// The catalog entry's own cut-off, if any (read in place: copying the entry would retain its strings).
    public func cutoff(_ ref: ProcedureRef) -> Int32? {
        if case .catalog(let i) = ref { return catalog[Int(i)].cutoff }
        return nil
    }

    /// The SLA in force: the catalog's, else `defaultSla` (DOMAIN.md §2: "not in catalog" is still tracked).
    public func sla(_ ref: ProcedureRef) -> SLA {
        if case .catalog(let i) = ref { return catalog[Int(i)].sla }
        return alerting.defaultSla
    }

    // MARK: Loading

    /// Parses and validates all files. The first error found is thrown.
    public static func parse(_ files: ConfigurationFiles) throws(ConfigurationError) -> Configuration {
        let calendars = try parseCalendars(files.calendars)
        let units = try parseUnits(files.units, calendars: calendars)
        let catalog = try parseCatalog(files.catalog, units: units)
        let alerting =
            try files.alerting.map { (b) throws(ConfigurationError) in try parseAlerting(b, units: units) }
            ?? .defaults
        return Configuration(units: units, catalog: catalog, calendars: calendars, alerting: alerting)
    }

    static func csvRecords(_ bytes: [UInt8], file: String, header: [String]) throws(ConfigurationError) -> [CSVRecord] {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw ConfigurationError(file: file, line: error.line, message: error.message)
        }
        guard let first = records.first else { throw ConfigurationError(file: file, line: 1, message: "empty file") }
        let got = first.fields.map { $0.trimmingSpaces }
        guard got == header else {
            throw ConfigurationError(
                file: file, line: 1,
                message: "header must be \"\(header.joined(separator: ","))\", found \"\(got.joined(separator: ","))\"")
        }
        for r in records.dropFirst() where r.fields.count != header.count {
            throw ConfigurationError(
                file: file, line: r.line, message: "expected \(header.count) fields, found \(r.fields.count)")
        }
        return Array(records.dropFirst())
    }

    static func parseUnits(_ bytes: [UInt8], calendars: [WorkCalendar]) throws(ConfigurationError) -> [Unit] {
        let file = ConfigurationFiles.unitsFile
        let records = try csvRecords(bytes, file: file, header: ["code", "name", "block", "parent", "calendar"])
        var seen: [String: Int] = [:]
        var units: [Unit] = []
        for r in records {
            let f = r.fields.map { $0.trimmingSpaces }
            func err(_ field: String, _ m: String) -> ConfigurationError {
                ConfigurationError(file: file, line: r.line, field: field, message: m)
            }
            guard !f[0].isEmpty else { throw err("code", "empty") }
            guard f[0].utf8.count <= DossierEvent.maxCodeLength else { throw err("code", "longer than 64 bytes") }
            if let prev = seen[f[0]] { throw err("code", "unit \"\(f[0])\" already defined on line \(prev)") }
            seen[f[0]] = r.line
            guard !f[1].isEmpty else { throw err("name", "empty") }
            guard let block = Block(rawValue: f[2]) else {
                throw err("block", "\"\(f[2])\" is not one of district, commune, department, vertical")
            }
            if f[3] == f[0] { throw err("parent", "a unit cannot be its own parent") }
            guard let cal = calendars.firstIndex(where: { $0.id == f[4] }) else {
                throw err("calendar", "no calendar \"\(f[4])\" in \(ConfigurationFiles.calendarsFile)")
            }
            units.append(Unit(code: f[0], name: f[1], block: block, parent: f[3].isEmpty ? nil : f[3], calendar: cal))
        }
        return units
    }

    static func parseCatalog(_ bytes: [UInt8], units: [Unit]) throws(ConfigurationError) -> [CatalogEntry] {
        let file = ConfigurationFiles.catalogFile
        let records = try csvRecords(
            bytes, file: file, header: ["procedure", "name", "field", "sla", "cutoff", "scope"])
        let unitCodes = Set(units.map(\.code))
        var seen: [String: Int] = [:]
        var out: [CatalogEntry] = []
        for r in records {
            let f = r.fields.map { $0.trimmingSpaces }
            func err(_ field: String, _ m: String) -> ConfigurationError {
                ConfigurationError(file: file, line: r.line, field: field, message: m)
            }
            guard !f[0].isEmpty else { throw err("procedure", "empty") }
            guard f[0].utf8.count <= DossierEvent.maxCodeLength else { throw err("procedure", "longer than 64 bytes") }
            if let prev = seen[f[0]] { throw err("procedure", "\"\(f[0])\" already listed on line \(prev)") }
            seen[f[0]] = r.line
            guard !f[1].isEmpty else { throw err("name", "empty") }
            guard let sla = SLA(f[3]) else {
                throw err("sla", "\"\(f[3])\" is not same-day, hours:N or days:N (1 ≤ N ≤ 1000)")
            }
            var cutoff: Int32? = nil
            if !f[4].isEmpty {
                guard let c = ClockTime.parse(f[4]) else { throw err("cutoff", "\"\(f[4])\" is not HH:MM") }
                guard sla == .sameDay else { throw err("cutoff", "a cut-off applies to same-day procedures only") }
                cutoff = Int32(c)
            }
            let scope: Scope
            if f[5] == "city" {
                scope = .city
            } else if unitCodes.contains(f[5]) {
                scope = .unit(f[5])
            } else {
                throw err("scope", "\"\(f[5])\" is neither city nor a unit code of \(ConfigurationFiles.unitsFile)")
            }
            out.append(CatalogEntry(procedure: f[0], name: f[1], field: f[2], sla: sla, cutoff: cutoff, scope: scope))
        }
        return out
    }

    // MARK: calendars.json

    static let weekdayKeys = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    private struct RawCalendar {
        var id: String
        var base: String?
        var days: [Int: DaySchedule]
        var holidays: Set<Int64>
        var dates: [Int64: DaySchedule]
        var path: String
        var line: Int
    }

    static func parseJSON(_ bytes: [UInt8], file: String) throws(ConfigurationError) -> JSONNode {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw ConfigurationError(file: file, line: error.line, message: "invalid JSON: " + error.message)
        }
    }

    static func parseCalendars(_ bytes: [UInt8]) throws(ConfigurationError) -> [WorkCalendar] {
        let file = ConfigurationFiles.calendarsFile
        let root = try parseJSON(bytes, file: file)
        let r = JSONReader(file: file)
        let top = try r.object(root, "$")
        try r.onlyKeys(top, ["calendars"], "$")
        guard let calsNode = root["calendars"] else {
            throw ConfigurationError(file: file, line: root.line, path: "$", field: "calendars", message: "missing")
        }
        let cals = try r.array(calsNode, "calendars")
        var raws: [RawCalendar] = []
        for (i, c) in cals.enumerated() {
            let p = "calendars[\(i)]"
            let members = try r.object(c, p)
            try r.onlyKeys(members, ["id", "base", "days", "holidays", "dates"], p)
            guard let idNode = c["id"] else {
                throw ConfigurationError(file: file, line: c.line, path: p, field: "id", message: "missing")
            }
            let id = try r.string(idNode, p + ".id")
            guard !id.isEmpty else { throw r.error(idNode, p + ".id", "empty") }
            if raws.contains(where: { $0.id == id }) {
                throw r.error(idNode, p + ".id", "duplicate calendar id \"\(id)\"")
            }
            var base: String? = nil
            if let b = c["base"], b.value != .null { base = try r.string(b, p + ".base") }
            var days: [Int: DaySchedule] = [:]
            if let d = c["days"] {
                let dm = try r.object(d, p + ".days")
                try r.onlyKeys(dm, weekdayKeys, p + ".days")
                for (k, v) in dm {
                    days[weekdayKeys.firstIndex(of: k)!] = try daySchedule(v, p + ".days." + k, r)
                }
            }
            var holidays = Set<Int64>()
            if let h = c["holidays"] {
                for (j, hn) in try r.array(h, p + ".holidays").enumerated() {
                    let s = try r.string(hn, p + ".holidays[\(j)]")
                    guard let d = LocalDate(s) else {
                        throw r.error(hn, p + ".holidays[\(j)]", "\"\(s)\" is not a YYYY-MM-DD date")
                    }
                    holidays.insert(d.dayNumber)
                }
            }
            var dates: [Int64: DaySchedule] = [:]
            if let dn = c["dates"] {
                for (k, v) in try r.object(dn, p + ".dates") {
                    guard let d = LocalDate(k) else {
                        throw r.error(v, p + ".dates", "key \"\(k)\" is not a YYYY-MM-DD date")
                    }
                    dates[d.dayNumber] = try daySchedule(v, p + ".dates." + k, r)
                }
            }
            raws.append(
                RawCalendar(id: id, base: base, days: days, holidays: holidays, dates: dates, path: p, line: c.line))
        }
        guard !raws.isEmpty else { throw r.error(calsNode, "calendars", "no calendar defined") }
        // Resolve `base` chains: own days/dates replace the base's, holidays add up.
        var out: [WorkCalendar] = []
        for raw in raws {
            var chain: [RawCalendar] = [raw]
            var seen: Set<String> = [raw.id]
            while let b = chain.last!.base {
                guard let parent = raws.first(where: { $0.id == b }) else {
                    throw ConfigurationError(
                        file: file, line: chain.last!.line, path: chain.last!.path + ".base", field: "base",
                        message: "no calendar \"\(b)\"")
                }
                guard seen.insert(b).inserted else {
                    throw ConfigurationError(
                        file: file, line: raw.line, path: raw.path + ".base", field: "base",
                        message: "base calendars form a cycle")
                }
                chain.append(parent)
            }
            var weekly = [DaySchedule](repeating: .none, count: 7)
            var dates: [Int64: DaySchedule] = [:]
            var holidays = Set<Int64>()
            for c in chain.reversed() {
                for (k, v) in c.days { weekly[k] = v }
                for (k, v) in c.dates { dates[k] = v }
                holidays.formUnion(c.holidays)
            }
            let cal = WorkCalendar(id: raw.id, weekly: weekly, dates: dates, holidays: holidays)
            guard cal.hasWeeklyWork else {
                throw ConfigurationError(
                    file: file, line: raw.line, path: raw.path + ".days", field: "days",
                    message: "no weekday has sessions")
            }
            out.append(cal)
        }
        return out
    }

    private static func daySchedule(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError)
        -> DaySchedule
    {
        if n.value == .null { return .none }
        let m = try r.object(n, p)
        try r.onlyKeys(m, ["sessions", "cutoff"], p)
        guard let sn = n["sessions"] else {
            throw ConfigurationError(file: r.file, line: n.line, path: p, field: "sessions", message: "missing")
        }
        var sessions: [Stretch] = []
        for (i, s) in try r.array(sn, p + ".sessions").enumerated() {
            let sp = p + ".sessions[\(i)]"
            let text = try r.string(s, sp)
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = ClockTime.parse(parts[0]), let b = ClockTime.parse(parts[1]) else {
                throw r.error(s, sp, "\"\(text)\" is not HH:MM-HH:MM")
            }
            guard a < b else { throw r.error(s, sp, "session \"\(text)\" ends before it starts") }
            if let last = sessions.last, Int32(a) < last.end {
                throw r.error(s, sp, "session \"\(text)\" overlaps or precedes the one before it")
            }
            sessions.append(Stretch(start: Int32(a), end: Int32(b)))
        }
        var cutoff: Int32? = nil
        if let c = n["cutoff"], c.value != .null {
            let text = try r.string(c, p + ".cutoff")
            guard let v = ClockTime.parse(text) else { throw r.error(c, p + ".cutoff", "\"\(text)\" is not HH:MM") }
            cutoff = Int32(v)
        }
        return DaySchedule(sessions: sessions, cutoff: cutoff)
    }

    // MARK: alerting.json

    static func parseAlerting(_ bytes: [UInt8], units: [Unit]) throws(ConfigurationError) -> AlertingPolicy {
        let file = ConfigurationFiles.alertingFile
        let root = try parseJSON(bytes, file: file)
        let r = JSONReader(file: file)
        var policy = AlertingPolicy.defaults
        let top = try r.object(root, "$")
        try r.onlyKeys(top, ["thresholds", "procedures", "defaultSla", "silence", "levels", "recipients"], "$")
        if let t = root["thresholds"] {
            for (k, v) in try r.object(t, "thresholds") {
                guard let cls = SLAClass(rawValue: k) else {
                    throw r.error(v, "thresholds", "unknown SLA class \"\(k)\" (same-day, days, hours)")
                }
                let o = try thresholdOverride(v, "thresholds." + k, r)
                var base = policy.thresholds[cls]!
                if let w = o.warning { base.warning = w }
                if let c = o.critical { base.critical = c }
                if let e = o.escalated { base.escalated = e }
                policy.thresholds[cls] = base
            }
        }
        if let pn = root["procedures"] {
            for (k, v) in try r.object(pn, "procedures") {
                policy.procedures[k] = try thresholdOverride(v, "procedures." + k, r)
            }
        }
        if let d = root["defaultSla"] {
            let s = try r.string(d, "defaultSla")
            guard let sla = SLA(s) else {
                throw r.error(d, "defaultSla", "\"\(s)\" is not same-day, hours:N or days:N")
            }
            policy.defaultSla = sla
        }
        if let s = root["silence"] {
            let m = try r.object(s, "silence")
            try r.onlyKeys(m, ["workingMinutes"], "silence")
            if let w = s["workingMinutes"] {
                policy.silenceWorkingMinutes = try r.positiveInt(w, "silence.workingMinutes")
            }
        }
        if let l = root["levels"] {
            for (k, v) in try r.object(l, "levels") {
                guard let level = AlertLevel(name: k) else {
                    throw r.error(v, "levels", "unknown alert level \"\(k)\"")
                }
                policy.levels[level] = try roles(v, "levels." + k, r)
            }
        }
        if let rc = root["recipients"] {
            let m = try r.object(rc, "recipients")
            try r.onlyKeys(m, ["units", "blocks"], "recipients")
            let codes = Set(units.map(\.code))
            if let un = rc["units"] {
                for (k, v) in try r.object(un, "recipients.units") {
                    guard codes.contains(k) else {
                        throw r.error(v, "recipients.units", "unit \"\(k)\" is not in \(ConfigurationFiles.unitsFile)")
                    }
                    policy.unitPeople[k] = try people(v, "recipients.units." + k, r)
                }
            }
            if let bn = rc["blocks"] {
                for (k, v) in try r.object(bn, "recipients.blocks") {
                    guard let b = Block(rawValue: k) else {
                        throw r.error(v, "recipients.blocks", "unknown block \"\(k)\"")
                    }
                    policy.blockPeople[b] = try people(v, "recipients.blocks." + k, r)
                }
            }
        }
        return policy
    }

    private static func thresholdOverride(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError)
        -> ThresholdOverride
    {
        let m = try r.object(n, p)
        try r.onlyKeys(m, ["warning", "critical", "escalated"], p)
        var o = ThresholdOverride()
        for (k, v) in m {
            let lp = p + "." + k
            let rm = try r.object(v, lp)
            guard rm.count == 1, let (key, valueNode) = rm.first.map({ ($0.key, $0.value) }) else {
                throw r.error(v, lp, "expected exactly one of minutesBefore, percentUsed, minutesAfter")
            }
            let value = try r.positiveInt(valueNode, lp + "." + key, allowZero: true)
            let rule: ThresholdRule
            switch (k, key) {
            case ("escalated", "minutesAfter"): rule = .minutesAfter(value)
            case ("warning", "minutesBefore"), ("critical", "minutesBefore"): rule = .minutesBefore(value)
            case ("warning", "percentUsed"), ("critical", "percentUsed"):
                guard value <= 100 else { throw r.error(valueNode, lp + "." + key, "a percentage must be 0…100") }
                rule = .percentUsed(value)
            default:
                throw r.error(valueNode, lp + "." + key, "\"\(key)\" is not allowed for \(k)")
            }
            switch k {
            case "warning": o.warning = rule
            case "critical": o.critical = rule
            default: o.escalated = rule
            }
        }
        return o
    }

    private static func roles(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError) -> [Role] {
        var out: [Role] = []
        for (i, x) in try r.array(n, p).enumerated() {
            let s = try r.string(x, p + "[\(i)]")
            guard let role = Role(rawValue: s) else {
                throw r.error(
                    x, p + "[\(i)]", "unknown role \"\(s)\" (\(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            out.append(role)
        }
        return out
    }

    private static func people(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError) -> [Role:
        [String]]
    {
        var out: [Role: [String]] = [:]
        for (k, v) in try r.object(n, p) {
            guard let role = Role(rawValue: k) else { throw r.error(v, p, "unknown role \"\(k)\"") }
            var list: [String] = []
            for (i, x) in try r.array(v, p + "." + k).enumerated() {
                let s = try r.string(x, p + ".\(k)[\(i)]")
                guard !s.isEmpty else { throw r.error(x, p + ".\(k)[\(i)]", "empty recipient") }
                list.append(s)
            }
            out[role] = list
        }
        return out
    }
}

/// Typed access to JSON nodes that throws errors naming the file, JSON path and line.
struct JSONReader {
    let file: String

    func error(_ n: JSONNode, _ path: String, _ m: String) -> ConfigurationError {
        let field = path.split(separator: ".").last.map { String($0.split(separator: "[").first ?? $0) }
        return ConfigurationError(file: file, line: n.line, path: path, field: field, message: m)
    }

    func object(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> [(key: String, value: JSONNode)] {
        guard case .object(let m) = n.value else { throw error(n, p, "expected an object, found \(n.kindName)") }
        return m
    }

    func array(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> [JSONNode] {
        guard case .array(let a) = n.value else { throw error(n, p, "expected an array, found \(n.kindName)") }
        return a
    }

    func string(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> String {
        guard case .string(let s) = n.value else { throw error(n, p, "expected a string, found \(n.kindName)") }
        return s
    }

    func positiveInt(_ n: JSONNode, _ p: String, allowZero: Bool = false) throws(ConfigurationError) -> Int {
        guard case .number(let d, _) = n.value, d == d.rounded(), d >= (allowZero ? 0 : 1), d < 1e9 else {
            throw error(n, p, "expected a whole number ≥ \(allowZero ? 0 : 1)")
        }
        return Int(d)
    }

    func onlyKeys(_ m: [(key: String, value: JSONNode)], _ allowed: [String], _ p: String) throws(ConfigurationError) {
        for (k, v) in m where !allowed.contains(k) {
            throw ConfigurationError(
                file: file, line: v.line, path: p == "$" ? k : p + "." + k, field: k,
                message: "unknown key (allowed: \(allowed.joined(separator: ", ")))")
        }
    }
}

extension String {
    /// Spaces and tabs trimmed at both ends (CSV cells written by hand often have them).
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
