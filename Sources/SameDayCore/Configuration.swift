/// A configuration error: which file, where (CSV line, or JSON line, column and key path), what is wrong. Every file
/// an operator writes reports its errors with this type (docs/configuration.md):
/// `worker.json:12:5: key "prefetch": expected an integer, found "abc"`.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line (CSV record line, or the line a JSON value starts on), when known.
    public var line: Int?
    /// 1-based column of the JSON value (characters, not bytes), when known.
    public var column: Int?
    /// JSON key path such as `calendars[0].days.mon.sessions[1]` (JSON files only; `$` is the whole document).
    public var path: String?
    public var field: String?
    public var message: String

    public init(
        file: String, line: Int? = nil, column: Int? = nil, path: String? = nil, field: String? = nil,
        message: String
    ) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.field = field
        self.message = message
    }

    /// The key an error names: the JSON path, or the field at the top of the document; nil for the whole document.
    public var keyPath: String? {
        guard let path else { return nil }
        if path == "$" { return field }
        guard let field else { return path }
        let last = path.split(separator: ".").last ?? Substring(path)
        return path.hasSuffix(field) || last.hasPrefix(field + "[") ? path : path + "." + field
    }

    public var description: String {
        var s = file
        if let line {
            s += ":\(line)"
            if let column { s += ":\(column)" }
        }
        if path != nil {
            if let keyPath { s += ": key \"\(keyPath)\"" }
        } else if let field {
            s += ": field \"\(field)\""
        }
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
    /// `interlevel.csv` is optional: the pairs of units that share dossiers (liên thông).
    public var interlevel: [UInt8]?

    public init(units: [UInt8], catalog: [UInt8], calendars: [UInt8], alerting: [UInt8]?, interlevel: [UInt8]? = nil) {
        self.units = units
        self.catalog = catalog
        self.calendars = calendars
        self.alerting = alerting
        self.interlevel = interlevel
    }

    public static let unitsFile = "units.csv"
    public static let catalogFile = "catalog.csv"
    public static let calendarsFile = "calendars.json"
    public static let alertingFile = "alerting.json"
    public static let interlevelFile = "interlevel.csv"
}

/// A validated configuration (docs/rules.md §7): units, catalog, calendars and alerting, with integer ids for units and
/// catalog entries so that per-dossier state stays small.
public struct Configuration: Sendable {
    public let units: [Unit]
    public let catalog: [CatalogEntry]
    /// Calendars as configured (merged with their bases), in file order; `Unit.calendar` indexes them.
    public let calendarDefinitions: [CalendarDefinition]
    /// The regular-session view of each calendar (what `hours:N`/`days:N` dossiers and source silence count).
    public let calendars: [WorkCalendar]
    public let alerting: AlertingPolicy
    /// The catalog's fields (lĩnh vực) in the order they first appear, then `Configuration.unlistedField` for
    /// procedures outside the catalog: the rows of Biểu 06 within a unit.
    public let fields: [String]
    /// Field per catalog entry.
    let catalogField: [FieldID]
    let unitIndex: CodeTable
    /// The catalog's distinct procedure codes, and the catalog indices of each (one code may have a city entry and
    /// entries scoped to units).
    let catalogCodes: CodeTable
    let catalogEntriesByCode: [[UInt32]]
    /// Thresholds per catalog entry, resolved once (the alert path asks for them on every event).
    let catalogThresholds: [Thresholds]
    /// Recipients per unit and level (`unit * levels + level`), resolved once.
    let recipientTable: [[String]]
    /// Same-day views of the calendars: regular sessions plus the extra sessions that serve a procedure.
    let sameDayViews: [WorkCalendar]
    /// View per calendar and catalog entry (`calendar * catalog.count + entry`): an index into `sameDayViews`, or -1
    /// for the regular view (entries that are not same-day, and calendars without extra sessions for them).
    let catalogView: [Int32]
    /// Same-day procedures not in the catalog: the view per calendar for a code no extra session names, and for
    /// the codes some extra session names.
    let unlistedView: [Int32]
    let namedUnlistedView: [String: [Int32]]
    /// Declared inter-level pairs (`interlevel.csv`): `receiving * units.count + resolving`.
    let sharedDossierPairs: Set<Int>
    public let interlevel: [InterlevelPair]
    /// The earliest instant at which a unit's calendar has run out of listed holidays (`holidaysThrough`): before it,
    /// every unit's calendar is inside its listed years, which the worker checks with one comparison per event.
    public let earliestHolidaysEnd: Instant?
    /// The blocks the registry has units of (no district since the 2025 map).
    public let blocks: Set<Block>

    public init(
        units: [Unit], catalog: [CatalogEntry], calendars: [CalendarDefinition], alerting: AlertingPolicy,
        interlevel: [InterlevelPair] = []
    ) {
        self.units = units
        self.interlevel = interlevel
        self.catalog = catalog
        self.calendarDefinitions = calendars
        self.calendars = calendars.map { WorkCalendar(definition: $0) }
        self.alerting = alerting
        blocks = Set(units.map(\.block))
        earliestHolidaysEnd = Set(units.map(\.calendar)).compactMap { calendars[$0].holidaysThrough }.min().map {
            LocalTime.start(ofDay: $0 + 1)
        }
        let unitTable = CodeTable(codes: units.map(\.code))
        unitIndex = unitTable
        var procedureTable = CodeTable(codes: [])
        var entriesByCode: [[UInt32]] = []
        for (i, c) in catalog.enumerated() {
            if let known = procedureTable.find(c.procedure) {
                entriesByCode[known].append(UInt32(i))
            } else {
                procedureTable.append(c.procedure)
                entriesByCode.append([UInt32(i)])
            }
        }
        catalogCodes = procedureTable
        catalogEntriesByCode = entriesByCode
        sharedDossierPairs = Set(
            interlevel.compactMap { pair in
                unitTable.find(pair.receiving).flatMap { r in
                    unitTable.find(pair.resolving).map { r * units.count + $0 }
                }
            })
        var fieldNames: [String] = []
        var fieldIndex: [String: FieldID] = [:]
        catalogField = catalog.map { entry in
            if let known = fieldIndex[entry.field] { return known }
            fieldNames.append(entry.field)
            fieldIndex[entry.field] = FieldID(fieldNames.count - 1)
            return FieldID(fieldNames.count - 1)
        }
        fields = fieldNames + [Configuration.unlistedField]
        catalogThresholds = catalog.map { alerting.thresholds(for: $0.procedure, sla: $0.sla) }
        let parentOf = Dictionary(units.map { ($0.code, $0.parent) }, uniquingKeysWith: { a, _ in a })
        recipientTable = units.flatMap { u in
            // Up the unit tree, stopping at a loop (the loader refuses one; a policy built in code might not).
            var ancestors: [String] = []
            var next = u.parent
            while let code = next, code != u.code, !ancestors.contains(code) {
                ancestors.append(code)
                next = parentOf[code] ?? nil
            }
            return AlertLevel.allCases.map {
                alerting.recipients(level: $0, unit: u.code, block: u.block, ancestors: ancestors)
            }
        }
        // Views are shared by every procedure an equal set of extra sessions serves: a handful per calendar.
        var views: [WorkCalendar] = []
        var viewIndex: [String: [Set<[String]>: Int32]] = [:]
        func view(_ c: Int, code: String, field: String?) -> Int32 {
            let def = calendars[c]
            let served = def.services(code: code, field: field)
            if served.isEmpty { return -1 }
            if let v = viewIndex[def.id]?[served] { return v }
            views.append(WorkCalendar(definition: def, serving: served))
            viewIndex[def.id, default: [:]][served] = Int32(views.count - 1)
            return Int32(views.count - 1)
        }
        var catalogView = [Int32](repeating: -1, count: calendars.count * catalog.count)
        for c in calendars.indices {
            for (i, e) in catalog.enumerated() where e.sla == .sameDay {
                catalogView[c * catalog.count + i] = view(c, code: e.procedure, field: e.field)
            }
        }
        let unlistedSameDay = alerting.defaultSla == .sameDay
        unlistedView = calendars.indices.map { unlistedSameDay ? view($0, code: "", field: nil) : -1 }
        var named: [String: [Int32]] = [:]
        let namedCodes = Set(calendars.flatMap { $0.extraServiceLists.joined() }.filter { !$0.hasPrefix("field:") })
        for code in namedCodes.sorted() where unlistedSameDay {
            named[code] = calendars.indices.map { view($0, code: code, field: nil) }
        }
        self.catalogView = catalogView
        self.namedUnlistedView = named
        self.sameDayViews = views
    }

    /// The row procedures outside the catalog count in (docs/rules.md §2.2: tracked with the default SLA).
    public static let unlistedField = "Ngoài danh mục"

    /// The field a procedure counts in.
    public func field(_ ref: ProcedureRef) -> FieldID {
        switch ref {
        case .catalog(let entry): catalogField[Int(entry)]
        case .unlisted: FieldID(fields.count - 1)
        }
    }

    /// A field by name (a stored retired stock); names the catalog no longer has count as unlisted.
    public func fieldID(named name: String) -> FieldID {
        FieldID(fields.firstIndex(of: name) ?? fields.count - 1)
    }

    /// Rollup cells: one per unit and field, `unit * fields.count + field`.
    public var cellCount: Int { units.count * fields.count }
    @inline(__always) public func cellIndex(_ cell: RollupCell) -> Int {
        Int(cell.unit) * fields.count + Int(cell.field)
    }

    /// Who receives `level` alerts for a unit (see `AlertingPolicy.recipients`).
    public func recipients(_ level: AlertLevel, unit: UnitID) -> [String] {
        recipientTable[Int(unit) * AlertLevel.allCases.count + Int(level.rawValue)]
    }

    /// The units whose alerts (any level) reach each person named in `alerting.json`, in units.csv order: a
    /// supervisor's scope, for her daily summary and her board.
    public func unitsByPerson() -> [String: [UnitID]] {
        var units: [String: [UnitID]] = [:]
        for id in self.units.indices.map({ UnitID($0) }) {
            var seen = Set<String>()
            for level in AlertLevel.allCases {
                for person in recipients(level, unit: id) where seen.insert(person).inserted {
                    units[person, default: []].append(id)
                }
            }
        }
        return units
    }

    /// The thresholds for a procedure (its class's, with the procedure's override).
    public func thresholds(_ ref: ProcedureRef, sla: SLA) -> Thresholds {
        if case .catalog(let i) = ref { return catalogThresholds[Int(i)] }
        return alerting.thresholds(for: procedureCode(ref), sla: sla)
    }

    /// The unit whose code is `code`, byte for byte: Swift compares strings by canonical equivalence (the Kelvin
    /// sign equals "K"), while routing keys, SQL and other systems compare bytes, so a code must be the same bytes.
    public func unitID(_ code: String) -> UnitID? { unitIndex.find(code).map(UnitID.init) }

    /// The unit whose code has these bytes (a stored record's codes are found without making strings of them).
    func unitID(bytes: UnsafeBufferPointer<UInt8>) -> UnitID? { unitIndex.find(bytes: bytes).map(UnitID.init) }

    /// Whether `resolving` may act on dossiers that `receiving` registered (liên thông, docs/rules.md §1.4: a ward
    /// receives, the district resolves), as `interlevel.csv` declares. One direction only.
    public func sharesDossiers(receiving: UnitID, resolving: UnitID) -> Bool {
        sharedDossierPairs.contains(Int(receiving) * units.count + Int(resolving))
    }
    public func unit(_ id: UnitID) -> Unit { units[Int(id)] }
    /// How much working time of silence makes a unit `source_silent` (`alerting.json`: the unit's own threshold,
    /// else its block's, else the default).
    public func silenceWorkingMinutes(of unit: UnitID) -> Int {
        let u = units[Int(unit)]
        return alerting.silenceWorkingMinutes(unit: u.code, block: u.block)
    }

    /// The regular-session view of a unit's calendar (`hours:N`/`days:N`, source silence).
    public func calendar(of unit: UnitID) -> WorkCalendar { calendars[units[Int(unit)].calendar] }
    public func calendar(id: String) -> WorkCalendar? { calendars.first { $0.id == id } }
    public func calendarDefinition(of unit: UnitID) -> CalendarDefinition {
        calendarDefinitions[units[Int(unit)].calendar]
    }

    /// The calendar id of a unit whose calendar lists no holidays for the day of `t` (past its `holidaysThrough`),
    /// or nil while it does: past that day weekdays count as working days whatever the law says, so the answer is
    /// reported, never silent.
    public func calendarRunOut(unit: UnitID, at t: Instant) -> String? {
        if let earliest = earliestHolidaysEnd, t < earliest { return nil }
        let definition = calendarDefinition(of: unit)
        return definition.isBeyondHolidays(day: LocalTime.day(of: t)) ? definition.id : nil
    }

    /// The view of the unit's calendar that times a dossier of this procedure: regular sessions only for
    /// `hours:N`/`days:N`; for `same-day`, also the extra sessions that serve it (docs/rules.md §2.3, §4).
    public func workingCalendar(unit: UnitID, procedure ref: ProcedureRef) -> WorkCalendar {
        let c = units[Int(unit)].calendar
        let v: Int32
        switch ref {
        case .catalog(let i): v = catalogView[c * catalog.count + Int(i)]
        case .unlisted(let code): v = namedUnlistedView[code]?[c] ?? unlistedView[c]
        }
        return v < 0 ? calendars[c] : sameDayViews[Int(v)]
    }

    /// The deadline of an episode of a dossier of this unit and procedure whose clock starts at `received`.
    public func deadline(unit: UnitID, procedure ref: ProcedureRef, received: Instant) -> Deadline {
        workingCalendar(unit: unit, procedure: ref).deadline(sla: sla(ref), received: received, cutoff: cutoff(ref))
    }

    /// The catalog entry in force for a procedure at a unit (docs/rules.md §2.2): the unit's own entry, else one its
    /// parent registered, else the city's; a procedure only other units registered is not in the catalog here.
    public func procedureRef(_ code: String, unit: UnitID) -> ProcedureRef {
        guard let listed = catalogCodes.find(code), let i = catalogIndex(listed: listed, unit: unit) else {
            return .unlisted(code)
        }
        return .catalog(i)
    }

    /// The number of a procedure code in the catalog's distinct codes (for `catalogIndex(listed:unit:)`), compared
    /// as bytes: nil when no catalog entry has it.
    func listedProcedure(bytes: UnsafeBufferPointer<UInt8>) -> Int? { catalogCodes.find(bytes: bytes) }

    /// The catalog entry in force at `unit` for the distinct catalog code `listed` (§2.2), or nil when only other
    /// units registered it.
    func catalogIndex(listed: Int, unit: UnitID) -> UInt32? {
        let u = units[Int(unit)]
        var best: (rank: Int, index: UInt32)?
        for i in catalogEntriesByCode[listed] {
            let rank: Int
            switch catalog[Int(i)].scope {
            case .unit(let owner) where owner == u.code: rank = 0
            case .unit(let owner) where owner == u.parent: rank = 1
            case .unit: continue
            case .city: rank = 2
            }
            if best.map({ rank < $0.rank }) ?? true { best = (rank, i) }
        }
        return best?.index
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

    /// The SLA in force: the catalog's, else `defaultSla` (docs/rules.md §2.2: "not in catalog" is still tracked).
    public func sla(_ ref: ProcedureRef) -> SLA {
        if case .catalog(let i) = ref { return catalog[Int(i)].sla }
        return alerting.defaultSla
    }

    /// Whether an `extended` event may move a dossier of this procedure's deadline: its field is one of
    /// The queue forecast's settings (`alerting.json` `atRisk`), or nil when no block has it on.
    public var forecast: QueueForecast.Settings? {
        guard !alerting.atRiskBlocks.isEmpty else { return nil }
        var settings = QueueForecast.Settings()
        settings.confidence = alerting.atRiskConfidence
        return settings
    }

    /// Whether the forecast watches the same-day dossiers of a block's units.
    public func forecastsBlock(_ block: Block) -> Bool { alerting.atRiskBlocks.contains(block) }
    /// Whether the queue forecast watches the unit (its block has `at_risk` on).
    public func forecastsUnit(_ unit: UnitID) -> Bool { forecastsBlock(units[Int(unit)].block) }

    /// `extensions.fields` (docs/rules.md §4.6a).
    public func allowsExtension(_ ref: ProcedureRef) -> Bool {
        catalogEntry(ref).map { alerting.extensionFields.contains($0.field) } ?? false
    }

    /// Rows of `units.csv` and `catalog.csv` whose `source` says `unconfirmed` or `illustrative`: what a worker
    /// states at start, so a deployment knows how much of its registry rests on no source.
    public var unconfirmedRows: (units: Int, catalog: Int) {
        (units.filter { $0.source.isUnconfirmed }.count, catalog.filter { $0.source.isUnconfirmed }.count)
    }

    // MARK: Loading

    /// Parses and validates all files. The first error found is thrown.
    public static func parse(_ files: ConfigurationFiles) throws(ConfigurationError) -> Configuration {
        let calendars = try parseCalendars(files.calendars)
        let units = try parseUnits(files.units, calendars: calendars.map(\.id))
        let catalog = try parseCatalog(files.catalog, units: units)
        let alerting =
            try files.alerting.map { (b) throws(ConfigurationError) in try parseAlerting(b, units: units) }
            ?? .defaults
        let interlevel =
            try files.interlevel.map { (b) throws(ConfigurationError) in try parseInterlevel(b, units: units) } ?? []
        return Configuration(
            units: units, catalog: catalog, calendars: calendars, alerting: alerting, interlevel: interlevel)
    }

    /// Rows of a CSV file whose header is `header`, or `header` followed by `source` (see `Provenance`); each row's
    /// provenance comes with it, `.unstated` when the file has no `source` column.
    static func sourcedRecords(_ bytes: [UInt8], file: String, header: [String]) throws(ConfigurationError) -> [(
        CSVRecord, Provenance
    )] {
        let (records, width) = try csvRecords(bytes, file: file, headers: [header, header + ["source"]])
        guard width > header.count else { return records.map { ($0, .unstated) } }
        return try records.map { (r) throws(ConfigurationError) in
            let cell = r.fields[header.count].trimmingSpaces
            guard let p = Provenance(cell: cell) else {
                throw ConfigurationError(
                    file: file, line: r.line, field: "source",
                    message: cell.isEmpty
                        ? "empty: give a citation, or unconfirmed or illustrative (each may add \": why\")"
                        : "longer than \(Provenance.maxCellBytes) bytes")
            }
            return (r, p)
        }
    }

    static func csvRecords(_ bytes: [UInt8], file: String, header: [String]) throws(ConfigurationError) -> [CSVRecord] {
        try csvRecords(bytes, file: file, headers: [header]).records
    }

    /// Rows after a header that is one of `headers`, each row as wide as it; returns the header's width.
    static func csvRecords(_ bytes: [UInt8], file: String, headers: [[String]]) throws(ConfigurationError) -> (
        records: [CSVRecord], width: Int
    ) {
        let records: [CSVRecord]
        do {
            records = try CSV.parse(bytes)
        } catch {
            throw ConfigurationError(file: file, line: error.line, message: error.message)
        }
        guard let first = records.first else { throw ConfigurationError(file: file, line: 1, message: "empty file") }
        let got = first.fields.map { $0.trimmingSpaces }
        guard let header = headers.first(where: { $0 == got }) else {
            throw ConfigurationError(
                file: file, line: 1,
                message: "header must be "
                    + headers.map { "\"\($0.joined(separator: ","))\"" }.joined(separator: " or ")
                    + ", found \"\(got.joined(separator: ","))\"")
        }
        for r in records.dropFirst() where r.fields.count != header.count {
            throw ConfigurationError(
                file: file, line: r.line, message: "expected \(header.count) fields, found \(r.fields.count)")
        }
        return (Array(records.dropFirst()), header.count)
    }

    static func parseUnits(_ bytes: [UInt8], calendars: [String]) throws(ConfigurationError) -> [Unit] {
        let file = ConfigurationFiles.unitsFile
        let records = try sourcedRecords(bytes, file: file, header: ["code", "name", "block", "parent", "calendar"])
        var seen: [String: Int] = [:]
        var routingWords: [String: (String, Int)] = [:]
        var units: [Unit] = []
        for (r, source) in records {
            let f = r.fields.map { $0.trimmingSpaces }
            func err(_ field: String, _ m: String) -> ConfigurationError {
                ConfigurationError(file: file, line: r.line, field: field, message: m)
            }
            guard !f[0].isEmpty else { throw err("code", "empty") }
            guard f[0].utf8.count <= DossierEvent.maxCodeLength else { throw err("code", "longer than 64 bytes") }
            guard Unit.isValidCode(f[0]) else {
                throw err("code", "\"\(f[0])\" may hold only ASCII letters, digits, \".\", \"_\" and \"-\"")
            }
            if let prev = seen[f[0]] { throw err("code", "unit \"\(f[0])\" already defined on line \(prev)") }
            seen[f[0]] = r.line
            let word = Unit.routingWord(f[0])
            if let (other, line) = routingWords[word] {
                throw err(
                    "code",
                    "unit \"\(f[0])\" and unit \"\(other)\" (line \(line)) are the same routing-key word \"\(word)\" "
                        + "(a dot becomes \"_\" in a key), so their events and alerts could not be told apart")
            }
            routingWords[word] = (f[0], r.line)
            guard !f[1].isEmpty else { throw err("name", "empty") }
            guard let block = Block(rawValue: f[2]) else {
                throw err("block", "\"\(f[2])\" is not one of district, commune, department, vertical")
            }
            if f[3] == f[0] { throw err("parent", "a unit cannot be its own parent") }
            guard let cal = calendars.firstIndex(of: f[4]) else {
                throw err("calendar", "no calendar \"\(f[4])\" in \(ConfigurationFiles.calendarsFile)")
            }
            units.append(
                Unit(
                    code: f[0], name: f[1], block: block, parent: f[3].isEmpty ? nil : f[3], calendar: cal,
                    source: source))
        }
        // A parent is a unit of this file (alerts go up the tree: a parent that is not here reaches no one), and
        // the tree has no loop: what check-config.py checks, refused at load too.
        // Each unit is walked up once: a walk stops at a unit already known to reach a root.
        let parentOf = Dictionary(units.map { ($0.code, $0.parent) }, uniquingKeysWith: { a, _ in a })
        var reachesRoot: Set<String> = []
        for unit in units {
            guard let parent = unit.parent else { continue }
            let line = seen[unit.code] ?? 0
            guard seen[parent] != nil else {
                throw ConfigurationError(
                    file: file, line: line, field: "parent",
                    message: "\"\(parent)\" is neither empty nor a unit code in this file")
            }
            var path: [String] = [unit.code]
            var onPath: Set<String> = [unit.code]
            var next: String? = parent
            while let code = next, !reachesRoot.contains(code) {
                if !onPath.insert(code).inserted {
                    throw ConfigurationError(
                        file: file, line: line, field: "parent", message: "the parents loop through \"\(code)\"")
                }
                path.append(code)
                next = parentOf[code] ?? nil
            }
            reachesRoot.formUnion(path)
        }
        return units
    }

    /// `interlevel.csv`: header `receiving,resolving`, one declared pair of units a line (both in the registry,
    /// distinct, listed once).
    static func parseInterlevel(_ bytes: [UInt8], units: [Unit]) throws(ConfigurationError) -> [InterlevelPair] {
        let file = ConfigurationFiles.interlevelFile
        let records = try csvRecords(bytes, file: file, header: ["receiving", "resolving"])
        let codes = Set(units.map(\.code))
        var seen: [InterlevelPair: Int] = [:]
        var pairs: [InterlevelPair] = []
        for r in records {
            let f = r.fields.map { $0.trimmingSpaces }
            for (i, name) in ["receiving", "resolving"].enumerated() where !codes.contains(f[i]) {
                throw ConfigurationError(
                    file: file, line: r.line, field: name,
                    message: "unit \"\(f[i].prefix(100))\" is not in \(ConfigurationFiles.unitsFile)")
            }
            guard f[0] != f[1] else {
                throw ConfigurationError(
                    file: file, line: r.line, field: "resolving", message: "a unit always acts on its own dossiers")
            }
            let pair = InterlevelPair(receiving: f[0], resolving: f[1])
            if let prev = seen[pair] {
                throw ConfigurationError(
                    file: file, line: r.line, field: "receiving", message: "pair already declared on line \(prev)")
            }
            seen[pair] = r.line
            pairs.append(pair)
        }
        return pairs
    }

    /// Distinct fields (lĩnh vực) a catalog may have: each is a rollup row per unit.
    public static let maxCatalogFields = 200

    static func parseCatalog(_ bytes: [UInt8], units: [Unit]) throws(ConfigurationError) -> [CatalogEntry] {
        let file = ConfigurationFiles.catalogFile
        let records = try sourcedRecords(
            bytes, file: file, header: ["procedure", "name", "field", "sla", "cutoff", "scope"])
        let unitCodes = Set(units.map(\.code))
        var seen: [String: Int] = [:]  // "code|scope" → line: one code may be listed once per scope
        var fields: Set<String> = []  // rollups keep a row per unit and field: bounded
        var out: [CatalogEntry] = []
        for (r, source) in records {
            let f = r.fields.map { $0.trimmingSpaces }
            func err(_ field: String, _ m: String) -> ConfigurationError {
                ConfigurationError(file: file, line: r.line, field: field, message: m)
            }
            guard !f[0].isEmpty else { throw err("procedure", "empty") }
            guard f[0].utf8.count <= DossierEvent.maxCodeLength else { throw err("procedure", "longer than 64 bytes") }
            guard f[0].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw err("procedure", "\"\(f[0])\" may hold only printable ASCII without spaces")
            }
            if let prev = seen[f[0] + "|" + f[5]] {
                throw err("procedure", "\"\(f[0])\" already listed for scope \"\(f[5])\" on line \(prev)")
            }
            seen[f[0] + "|" + f[5]] = r.line
            guard !f[1].isEmpty else { throw err("name", "empty") }
            guard f[2].utf8.count <= 256 else { throw err("field", "longer than 256 bytes") }
            fields.insert(f[2])
            guard fields.count <= maxCatalogFields else {
                throw err("field", "more than \(maxCatalogFields) distinct fields in the catalog")
            }
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
            out.append(
                CatalogEntry(
                    procedure: f[0], name: f[1], field: f[2], sla: sla, cutoff: cutoff, scope: scope, source: source))
        }
        return out
    }

    // MARK: calendars.json

    static let weekdayKeys = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    private struct RawCalendar {
        var id: String
        var base: String?
        var days: [Int: DayDefinition]
        var holidays: Set<Int64>
        var holidaysThrough: Int64?
        var dates: [Int64: DayDefinition]
        var path: String
        var line: Int
    }

    /// Bounds that keep a hostile or mistaken calendars.json from costing minutes at load (each calendar view
    /// caches every day of 45 years, and dated days multiply the distinct schedules).
    static let maxCalendars = 1000
    static let maxDatedDays = 5000
    static let maxHolidays = 5000

    static func parseJSON(_ bytes: [UInt8], file: String) throws(ConfigurationError) -> JSONNode {
        try JSONReader(file: file).document(bytes)
    }

    static func parseCalendars(_ bytes: [UInt8]) throws(ConfigurationError) -> [CalendarDefinition] {
        let file = ConfigurationFiles.calendarsFile
        let root = try parseJSON(bytes, file: file)
        let r = JSONReader(file: file)
        let top = try r.object(root, "$")
        try r.onlyKeys(top, ["calendars"], "$")
        guard let calsNode = root["calendars"] else {
            throw ConfigurationError(
                file: file, line: root.line, column: root.column, path: "$", field: "calendars", message: "missing")
        }
        let cals = try r.array(calsNode, "calendars")
        guard cals.count <= maxCalendars else {
            throw r.error(calsNode, "calendars", "more than \(maxCalendars) calendars")
        }
        var raws: [RawCalendar] = []
        var rawIndex: [String: Int] = [:]
        for (i, c) in cals.enumerated() {
            let p = "calendars[\(i)]"
            let members = try r.object(c, p)
            try r.onlyKeys(members, ["id", "base", "days", "holidays", "holidaysThrough", "dates"], p)
            guard let idNode = c["id"] else {
                throw ConfigurationError(
                    file: file, line: c.line, column: c.column, path: p, field: "id", message: "missing")
            }
            let id = try r.string(idNode, p + ".id")
            guard !id.isEmpty else { throw r.error(idNode, p + ".id", "empty") }
            if rawIndex[id] != nil { throw r.error(idNode, p + ".id", "duplicate calendar id \"\(id)\"") }
            var base: String? = nil
            if let b = c["base"], b.value != .null { base = try r.string(b, p + ".base") }
            var days: [Int: DayDefinition] = [:]
            if let d = c["days"] {
                let dm = try r.object(d, p + ".days")
                try r.onlyKeys(dm, weekdayKeys, p + ".days")
                for (k, v) in dm {
                    days[weekdayKeys.firstIndex(of: k)!] = try dayDefinition(v, p + ".days." + k, r, dated: false)
                }
            }
            var holidays = Set<Int64>()
            if let h = c["holidays"] {
                let list = try r.array(h, p + ".holidays")
                guard list.count <= maxHolidays else {
                    throw r.error(h, p + ".holidays", "more than \(maxHolidays) holidays")
                }
                for (j, hn) in list.enumerated() {
                    let s = try r.string(hn, p + ".holidays[\(j)]")
                    guard let d = LocalDate(s) else {
                        throw r.error(hn, p + ".holidays[\(j)]", "\"\(s)\" is not a YYYY-MM-DD date")
                    }
                    holidays.insert(d.dayNumber)
                }
            }
            var holidaysThrough: Int64? = nil
            if let t = c["holidaysThrough"] {
                let text = try r.string(t, p + ".holidaysThrough")
                guard let d = LocalDate(text) else {
                    throw r.error(t, p + ".holidaysThrough", "\"\(text)\" is not a YYYY-MM-DD date")
                }
                if let last = holidays.max(), last > d.dayNumber {
                    throw r.error(
                        t, p + ".holidaysThrough",
                        "\(text) is before the holiday \(LocalDate(dayNumber: last)) listed in this calendar")
                }
                holidaysThrough = d.dayNumber
            }
            var dates: [Int64: DayDefinition] = [:]
            if let dn = c["dates"] {
                let list = try r.object(dn, p + ".dates")
                guard list.count <= maxDatedDays else {
                    throw r.error(dn, p + ".dates", "more than \(maxDatedDays) dated days")
                }
                for (k, v) in list {
                    guard let d = LocalDate(k) else {
                        throw r.error(v, p + ".dates", "key \"\(k)\" is not a YYYY-MM-DD date")
                    }
                    dates[d.dayNumber] = try dayDefinition(v, p + ".dates." + k, r, dated: true)
                }
            }
            rawIndex[id] = raws.count
            raws.append(
                RawCalendar(
                    id: id, base: base, days: days, holidays: holidays, holidaysThrough: holidaysThrough, dates: dates,
                    path: p, line: c.line))
        }
        guard !raws.isEmpty else { throw r.error(calsNode, "calendars", "no calendar defined") }
        // Resolve `base` chains: own days/dates replace the base's, holidays add up.
        var out: [CalendarDefinition] = []
        for raw in raws {
            var chain: [RawCalendar] = [raw]
            var seen: Set<String> = [raw.id]
            while let b = chain.last!.base {
                guard let parent = rawIndex[b].map({ raws[$0] }) else {
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
            var weekly = [DayDefinition](repeating: .none, count: 7)
            var dates: [Int64: DayDefinition] = [:]
            var holidays = Set<Int64>()
            // The nearest calendar of the chain that says how far its holidays go.
            var holidaysThrough: Int64? = nil
            for c in chain.reversed() {
                for (k, v) in c.days { weekly[k] = v }
                for (k, v) in c.dates { dates[k] = v }
                holidays.formUnion(c.holidays)
                if let through = c.holidaysThrough { holidaysThrough = through }
            }
            guard dates.count <= maxDatedDays, holidays.count <= maxHolidays else {
                throw ConfigurationError(
                    file: file, line: raw.line, path: raw.path, field: "base",
                    message: "with its bases, more than \(maxDatedDays) dated days or \(maxHolidays) holidays")
            }
            let def = CalendarDefinition(
                id: raw.id, weekly: weekly, dates: dates, holidays: holidays, holidaysThrough: holidaysThrough)
            guard weekly.contains(where: { $0.sessions.contains { !$0.extra } }) else {
                throw ConfigurationError(
                    file: file, line: raw.line, path: raw.path + ".days", field: "days",
                    message: "no weekday has regular sessions")
            }
            out.append(def)
        }
        return out
    }

    /// DAY: `null`, or `{"sessions": [SESSION, …], "cutoff": "HH:MM"?, "extra": bool?}` (docs/rules.md §7.4).
    /// A weekly day and a dated day are both regular unless they say `"extra": true`.
    private static func dayDefinition(_ n: JSONNode, _ p: String, _ r: JSONReader, dated: Bool)
        throws(ConfigurationError) -> DayDefinition
    {
        if n.value == .null { return .none }
        let m = try r.object(n, p)
        try r.onlyKeys(m, ["sessions", "cutoff", "extra"], p)
        guard let sn = n["sessions"] else {
            throw ConfigurationError(
                file: r.file, line: n.line, column: n.column, path: p, field: "sessions", message: "missing")
        }
        var dayExtra = false
        if let e = n["extra"] { dayExtra = try r.bool(e, p + ".extra") }
        var sessions: [Session] = []
        for (i, s) in try r.array(sn, p + ".sessions").enumerated() {
            let sp = p + ".sessions[\(i)]"
            var session: Session
            if case .string = s.value {
                session = Session(time: try stretch(s, sp, r), extra: dayExtra)
            } else {
                session = try sessionObject(s, sp, r, dayExtra: dayExtra)
            }
            if let last = sessions.last, session.time.start < last.time.end {
                throw r.error(s, sp, "session \"\(session.time.text)\" overlaps or precedes the one before it")
            }
            sessions.append(session)
        }
        var cutoff: Int32? = nil
        if let c = n["cutoff"], c.value != .null { cutoff = try clockTime(c, p + ".cutoff", r) }
        return DayDefinition(sessions: sessions, cutoff: cutoff)
    }

    /// `{"time": "17:00-19:00", "extra": true, "procedures": [...]?, "cutoff": "HH:MM"?, "from": date?, "until": date?}`
    private static func sessionObject(_ n: JSONNode, _ p: String, _ r: JSONReader, dayExtra: Bool)
        throws(ConfigurationError) -> Session
    {
        let m = try r.object(n, p)
        try r.onlyKeys(m, ["time", "extra", "procedures", "cutoff", "from", "until"], p)
        guard let t = n["time"] else {
            throw ConfigurationError(
                file: r.file, line: n.line, column: n.column, path: p, field: "time", message: "missing")
        }
        var session = Session(time: try stretch(t, p + ".time", r), extra: dayExtra)
        if let e = n["extra"] { session.extra = try r.bool(e, p + ".extra") || dayExtra }
        if let pn = n["procedures"] {
            guard session.extra else {
                throw r.error(pn, p + ".procedures", "only an extra session may name the procedures it serves")
            }
            for (i, x) in try r.array(pn, p + ".procedures").enumerated() {
                let code = try r.string(x, p + ".procedures[\(i)]")
                guard !code.isEmpty, code != "field:", code.utf8.count <= 256 else {
                    throw r.error(x, p + ".procedures[\(i)]", "expected a procedure code or field:<lĩnh vực>")
                }
                if !session.procedures.contains(code) { session.procedures.append(code) }
            }
            guard !session.procedures.isEmpty else {
                throw r.error(pn, p + ".procedures", "empty (leave the key out to serve every same-day procedure)")
            }
        }
        if let c = n["cutoff"], c.value != .null {
            guard session.extra else {
                throw r.error(c, p + ".cutoff", "only an extra session has a cut-off of its own (use the day's)")
            }
            let v = try clockTime(c, p + ".cutoff", r)
            guard v >= session.time.start, v <= session.time.end else {
                throw r.error(c, p + ".cutoff", "the cut-off must fall inside the session \"\(session.time.text)\"")
            }
            session.cutoff = v
        }
        for key in ["from", "until"] {
            guard let dn = n[key], dn.value != .null else { continue }
            let text = try r.string(dn, p + "." + key)
            guard let d = LocalDate(text) else {
                throw r.error(dn, p + "." + key, "\"\(text)\" is not a YYYY-MM-DD date")
            }
            if key == "from" { session.from = d.dayNumber } else { session.until = d.dayNumber }
        }
        if let f = session.from, let u = session.until, u < f {
            throw r.error(n, p + ".until", "the session ends (until) before it starts (from)")
        }
        return session
    }

    private static func stretch(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError) -> Stretch {
        let text = try r.string(n, p)
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = ClockTime.parse(parts[0]), let b = ClockTime.parse(parts[1]) else {
            throw r.error(n, p, "\"\(text)\" is not HH:MM-HH:MM")
        }
        guard a < b else { throw r.error(n, p, "session \"\(text)\" ends before it starts") }
        return Stretch(start: Int32(a), end: Int32(b))
    }

    private static func clockTime(_ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError) -> Int32 {
        let text = try r.string(n, p)
        guard let v = ClockTime.parse(text) else { throw r.error(n, p, "\"\(text)\" is not HH:MM") }
        return Int32(v)
    }

    // MARK: alerting.json

    static func parseAlerting(_ bytes: [UInt8], units: [Unit]) throws(ConfigurationError) -> AlertingPolicy {
        let file = ConfigurationFiles.alertingFile
        let root = try parseJSON(bytes, file: file)
        let r = JSONReader(file: file)
        var policy = AlertingPolicy.defaults
        let top = try r.object(root, "$")
        try r.onlyKeys(
            top,
            [
                "thresholds", "procedures", "defaultSla", "silence", "staleAfterDays", "feesPauseTheClock",
                "extensions", "atRisk",
                "levels", "recipients",
            ], "$")
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
                try inOrder(base, v, "thresholds." + k, r)
                policy.thresholds[cls] = base
            }
        }
        if let pn = root["procedures"] {
            for (k, v) in try r.object(pn, "procedures") {
                policy.procedures[k] = try thresholdOverride(v, "procedures." + k, r)
            }
            // An override is checked against every class it may meet (the procedure's SLA is the catalog's).
            for (k, v) in try r.object(pn, "procedures") {
                for cls in SLAClass.allCases {
                    let sla: SLA = cls == .sameDay ? .sameDay : cls == .days ? .days(1) : .hours(1)
                    try inOrder(policy.thresholds(for: k, sla: sla), v, "procedures." + k, r)
                }
            }
        }
        if let fees = root["feesPauseTheClock"] { policy.feesPauseTheClock = try r.bool(fees, "feesPauseTheClock") }
        if let ext = root["extensions"] {
            let m = try r.object(ext, "extensions")
            try r.onlyKeys(m, ["fields", "maxWorkingDays"], "extensions")
            if let f = ext["fields"] {
                var fields: Set<String> = []
                for (i, n) in try r.array(f, "extensions.fields").enumerated() {
                    let name = try r.string(n, "extensions.fields[\(i)]")
                    guard !name.isEmpty, name.utf8.count <= 256 else {
                        throw r.error(n, "extensions.fields[\(i)]", "a field name of 1 to 256 bytes")
                    }
                    fields.insert(name)
                }
                policy.extensionFields = fields
            }
            if let d = ext["maxWorkingDays"] {
                let days = try r.positiveInt(d, "extensions.maxWorkingDays")
                guard days <= 30 else { throw r.error(d, "extensions.maxWorkingDays", "at most 30 working days") }
                policy.extensionMaxWorkingDays = days
            }
        }
        if let a = root["atRisk"] {
            let m = try r.object(a, "atRisk")
            try r.onlyKeys(m, ["blocks", "confidence"], "atRisk")
            if let b = a["blocks"] {
                var blocks: Set<Block> = []
                for (i, n) in try r.array(b, "atRisk.blocks").enumerated() {
                    let name = try r.string(n, "atRisk.blocks[\(i)]")
                    guard let block = Block(rawValue: name) else {
                        throw r.error(
                            n, "atRisk.blocks[\(i)]",
                            "unknown block \"\(name)\" (\(Block.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    blocks.insert(block)
                }
                policy.atRiskBlocks = blocks
            }
            if let c = a["confidence"] {
                guard case .number(let v, _) = c.value, v >= 0.05, v <= 0.95 else {
                    throw r.error(c, "atRisk.confidence", "a number from 0.05 to 0.95, found \(c.found)")
                }
                policy.atRiskConfidence = v
            }
        }
        if let st = root["staleAfterDays"] {
            policy.staleAfterDays = try r.positiveInt(st, "staleAfterDays")
            guard policy.staleAfterDays <= 3660 else {
                throw r.error(st, "staleAfterDays", "at most 3660 days (ten years)")
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
            try r.onlyKeys(m, ["workingMinutes", "blocks", "units"], "silence")
            if let w = s["workingMinutes"] {
                policy.silenceWorkingMinutes = try r.positiveInt(w, "silence.workingMinutes")
            }
            // Overrides, as in `recipients`: per block, and per unit (which wins).
            if let bn = s["blocks"] {
                for (k, v) in try r.object(bn, "silence.blocks") {
                    guard let b = Block(rawValue: k) else {
                        throw r.error(
                            v, "silence.blocks." + k,
                            "unknown block \"\(k)\" (\(Block.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    policy.silenceBlocks[b] = try r.positiveInt(v, "silence.blocks." + k)
                }
            }
            if let un = s["units"] {
                let codes = Set(units.map(\.code))
                for (k, v) in try r.object(un, "silence.units") {
                    // The unit code is the field (agency codes have dots, which a path would split).
                    var error = r.error(v, "silence.units." + k, "")
                    error.field = k
                    guard codes.contains(k) else {
                        error.message = "unit \"\(k)\" is not in \(ConfigurationFiles.unitsFile)"
                        throw error
                    }
                    guard let minutes = try? r.positiveInt(v, "silence.units") else {
                        error.message = "expected a whole number ≥ 1 (working minutes)"
                        throw error
                    }
                    policy.silenceUnits[k] = minutes
                }
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
            try r.onlyKeys(m, ["units", "blocks", "parentRoles"], "recipients")
            let codes = Set(units.map(\.code))
            if let un = rc["units"] {
                for (k, v) in try r.object(un, "recipients.units") {
                    guard codes.contains(k) else {
                        throw r.error(v, "recipients.units", "unit \"\(k)\" is not in \(ConfigurationFiles.unitsFile)")
                    }
                    policy.unitPeople[k] = try people(v, "recipients.units." + k, r)
                }
            }
            if let pr = rc["parentRoles"] {
                policy.parentRoles = Set(try roles(pr, "recipients.parentRoles", r))
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

    /// Warning must not come after critical (docs/rules.md §5.2). Rules of the same kind compare directly; a mix
    /// (minutes before one, a percentage the other) is ordered at run time instead.
    private static func inOrder(_ t: Thresholds, _ n: JSONNode, _ p: String, _ r: JSONReader) throws(ConfigurationError)
    {
        switch (t.warning, t.critical) {
        case (.minutesBefore(let w), .minutesBefore(let c)) where w < c:
            throw r.error(
                n, p + ".warning", "warning (\(w) minutes before) would come after critical (\(c) minutes before)")
        case (.percentUsed(let w), .percentUsed(let c)) where w > c:
            throw r.error(n, p + ".warning", "warning (\(w) % used) would come after critical (\(c) % used)")
        default: break
        }
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

extension String {
    /// Spaces and tabs trimmed at both ends (CSV cells written by hand often have them).
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Codes by their bytes (units, the catalog's procedure codes): a `CodeSlotIndex` whose slots are the codes'
/// numbers. Every event looks its unit and procedure up, and a restart every stored record's; a dictionary keyed by
/// `String` hashed with SipHash and compared by canonical equivalence cost several times as much, for an answer that
/// must then be checked as bytes.
struct CodeTable: Sendable {
    private var index = CodeSlotIndex()
    private var codes: [String] = []

    /// The last of a code given twice wins, as it did in a dictionary.
    init(codes: [String]) {
        index.reserveCapacity(codes.count)
        for code in codes { append(code) }
    }

    /// Adds `code` as the next number; it replaces an earlier code with the same bytes.
    mutating func append(_ code: String) {
        let number = codes.count
        codes.append(code)
        var code = code
        code.withUTF8 { bytes in
            let hash = CodeSlotIndex.hash(bytes)
            let isCode = { [codes] in CodeSlotIndex.sameBytes(codes[$0], bytes) }
            _ = index.remove(hash: hash, isCode: isCode)
            _ = index.insert(hash: hash, slot: number, isCode: isCode)
        }
    }

    /// The number of the code that has exactly the bytes of `code`.
    func find(_ code: String) -> Int? {
        var code = code
        return code.withUTF8 { find(bytes: $0) }
    }

    /// The number of the code that has exactly these bytes.
    func find(bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        index.find(hash: CodeSlotIndex.hash(bytes)) { CodeSlotIndex.sameBytes(codes[$0], bytes) }
    }
}
