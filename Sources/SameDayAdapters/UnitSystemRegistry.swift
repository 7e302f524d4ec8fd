import Foundation
import SameDayBroker
import SameDayCore

/// The unit systems wired to SameDay (`deploy/adapters/unit-systems.json`): for each, the units it may publish
/// for and the SHA-256 of its HTTP bearer token; plus the supervisors who read alerts, each with her units. The same
/// file gives the HTTP receiver its tokens and the broker its users (`sameday topology users`).
///
/// ```json
/// {"unitSystems": [{"name": "motcua-q1", "units": ["760", "26734"], "tokenSHA256": "<64 hex digits>"}],
///  "supervisors": ["sonoivu", {"name": "q1-lanh-dao", "units": ["760"], "includeSubunits": true}]}
/// ```
/// A supervisor given as a bare name is city-level: every unit's alerts. One given as an object reads the alerts of
/// her `units` only and, with `includeSubunits`, of every unit under them in the unit tree (`units.csv`'s `parent`:
/// a district's wards). Tokens are never stored: `sameday receive --hash-token` prints the hash of a new one.
public struct UnitSystemRegistry: Sendable {
    public struct System: Sendable, Equatable {
        public var name: String
        public var units: Set<String>
        public var tokenSHA256: String?

        public init(name: String, units: Set<String>, tokenSHA256: String?) {
            self.name = name
            self.units = units
            self.tokenSHA256 = tokenSHA256
        }
    }

    /// A supervisor of the registry.
    public struct Supervisor: Sendable, Equatable {
        public var name: String
        /// Her units as the registry lists them, then, when the registry was read with the configuration's units
        /// and she has `includeSubunits`, every unit under them; nil: every unit (a city-level supervisor).
        public var units: [String]?
        public var includeSubunits: Bool
        /// Set when she has `includeSubunits` but the registry was read without the configuration's units, so
        /// `units` lacks her subunits: the error (file, line, column) that `brokerSupervisors()` reports.
        public var missingUnitTree: ConfigurationError?

        public init(
            name: String, units: [String]? = nil, includeSubunits: Bool = false,
            missingUnitTree: ConfigurationError? = nil
        ) {
            self.name = name
            self.units = units
            self.includeSubunits = includeSubunits
            self.missingUnitTree = missingUnitTree
        }
    }

    public var systems: [System]
    public var supervisors: [Supervisor]
    private var byTokenHash: [String: Int]

    public init(systems: [System], supervisors: [Supervisor] = []) {
        self.systems = systems
        self.supervisors = supervisors
        var index: [String: Int] = [:]
        for (i, system) in systems.enumerated() { if let hash = system.tokenSHA256 { index[hash] = i } }
        byTokenHash = index
    }

    /// The system that holds `token`, compared by hash (the registry never holds a token itself).
    public func system(bearerToken token: String) -> System? {
        byTokenHash[SHA256.hex(Array(token.utf8))].map { systems[$0] }
    }

    public var brokerUsers: [SameDayBrokerUsers.UnitSystem] {
        systems.map { .init(name: $0.name, units: $0.units.sorted()) }
    }

    /// The supervisors as broker users, each with her units (subunits included). Fails when one asks for her
    /// subunits and the registry was read without the configuration's unit tree.
    public func brokerSupervisors() throws -> [SameDayBrokerUsers.Supervisor] {
        try supervisors.map { supervisor in
            if let error = supervisor.missingUnitTree { throw AdapterError(error.description) }
            return .init(name: supervisor.name, units: supervisor.units)
        }
    }

    /// The supervisor whose broker user is `supervisor.<name>`, if the registry has her.
    public func supervisor(named name: String) -> Supervisor? { supervisors.first { $0.name == name } }

    /// Reads a registry; errors name the file, line, column and key path (docs/configuration.md). With `units` (the
    /// configuration's), every supervisor's unit must be one of them, and `includeSubunits` adds the units below.
    public static func parse(_ bytes: [UInt8], file: String, units: [SameDayCore.Unit]? = nil) throws
        -> UnitSystemRegistry
    {
        do throws(ConfigurationError) {
            return try read(bytes, file: file, units: units)
        } catch {
            throw AdapterError(error.description)
        }
    }

    static func read(_ bytes: [UInt8], file: String, units configured: [SameDayCore.Unit]?) throws(ConfigurationError)
        -> UnitSystemRegistry
    {
        let object = try JSONReader(file: file).root(bytes, allowed: ["description", "supervisors", "unitSystems"])
        let reader = object.reader
        guard let list = try object.array("unitSystems") else { throw object.error("unitSystems", "missing: an array") }
        var systems: [System] = []
        var names = Set<String>()
        for (i, item) in list.enumerated() {
            let entry = try JSONObject(reader: reader, node: item, path: "unitSystems[\(i)]")
            try entry.only(["name", "tokenSHA256", "units"])
            guard let name = try entry.string("name"), !name.isEmpty,
                name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            else { throw entry.error("name", "missing or not a simple name (letters, digits, - and _)") }
            guard names.insert(name).inserted else { throw entry.error("name", "\"\(name)\" appears twice") }
            guard let units = try entry.strings("units"), !units.isEmpty else {
                throw entry.error("units", "missing: a non-empty array of unit codes")
            }
            var hash: String?
            if let text = try entry.string("tokenSHA256") {
                guard text.count == 64, text.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                    throw entry.error("tokenSHA256", "must be 64 lower-case hex digits (SHA-256 of the token)")
                }
                hash = text
            }
            systems.append(System(name: name, units: Set(units), tokenSHA256: hash))
        }
        let supervisors = try readSupervisors(object, units: configured)
        return UnitSystemRegistry(systems: systems, supervisors: supervisors)
    }

    /// `supervisors`: each a bare name (city level) or `{"name", "units", "includeSubunits"}`.
    static func readSupervisors(_ object: JSONObject, units configured: [SameDayCore.Unit]?) throws(ConfigurationError)
        -> [Supervisor]
    {
        let reader = object.reader
        guard let list = try object.array("supervisors") else { return [] }
        let tree = configured.map(UnitTree.init)
        var names = Set<String>()
        var supervisors: [Supervisor] = []
        for (i, item) in list.enumerated() {
            let path = "supervisors[\(i)]"
            func simpleName(_ name: String) -> Bool {
                !name.isEmpty
                    && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            }
            if case .string(let name) = item.value {
                guard simpleName(name) else {
                    throw reader.error(item, path, "\"\(name)\" is not a simple name (letters, digits, - and _)")
                }
                guard names.insert(name).inserted else { throw reader.error(item, path, "\"\(name)\" appears twice") }
                supervisors.append(Supervisor(name: name))
                continue
            }
            guard case .object = item.value else {
                throw reader.error(
                    item, path,
                    "expected a name (a city-level supervisor) or an object {\"name\", \"units\", \"includeSubunits\"}, "
                        + "found \(item.found)")
            }
            let entry = try JSONObject(reader: reader, node: item, path: path)
            try entry.only(["includeSubunits", "name", "units"])
            guard let name = try entry.string("name"), simpleName(name) else {
                throw entry.error("name", "missing or not a simple name (letters, digits, - and _)")
            }
            guard names.insert(name).inserted else { throw entry.error("name", "\"\(name)\" appears twice") }
            guard let nodes = try entry.array("units"), !nodes.isEmpty else {
                throw entry.error(
                    "units", "missing: a non-empty array of unit codes (a city-level supervisor is a bare name)")
            }
            var listed: [String] = []
            for (j, node) in nodes.enumerated() {
                let unitPath = entry.path("units") + "[\(j)]"
                let code = try reader.string(node, unitPath)
                guard SameDayCore.Unit.isValidCode(code) else {
                    throw reader.error(
                        node, unitPath, "\"\(code)\" is not a unit code (ASCII letters, digits, ., _ and -)")
                }
                guard !listed.contains(code) else { throw reader.error(node, unitPath, "\"\(code)\" appears twice") }
                if let tree, !tree.contains(code) {
                    throw reader.error(node, unitPath, "unit \"\(code)\" is not in \(ConfigurationFiles.unitsFile)")
                }
                listed.append(code)
            }
            let includeSubunits = try entry.bool("includeSubunits") ?? false
            var supervisor = Supervisor(name: name, units: listed, includeSubunits: includeSubunits)
            if includeSubunits {
                if let tree {
                    supervisor.units = tree.withSubunits(listed)
                } else {
                    supervisor.missingUnitTree = entry.error(
                        "includeSubunits",
                        "her subunits come from the unit tree: give the configuration folder (--config DIR)")
                }
            }
            supervisors.append(supervisor)
        }
        return supervisors
    }

    /// The tokens whose hashes deploy/adapters/unit-systems.json ships for the demonstration. They are written in
    /// the repository (docs, tests, scripts), so anyone can present them.
    public static let demoTokens = ["demo-token-motcua-q1", "demo-token-dvc-so-tu-phap"]

    /// Reads a registry. One that holds a demo token's hash is refused unless `allowDemoTokens` (a demonstration,
    /// `SAMEDAY_DEMO=1`), naming each such unit system. `units`: the configuration's, to check the supervisors'
    /// units and give `includeSubunits` its tree (`parse`).
    public static func load(path: String, allowDemoTokens: Bool, units: [SameDayCore.Unit]? = nil) throws
        -> UnitSystemRegistry
    {
        guard let data = FileManager.default.contents(atPath: path) else { throw AdapterError("\(path): cannot read") }
        let registry = try parse([UInt8](data), file: path, units: units)
        if !allowDemoTokens {
            let demo = Dictionary(uniqueKeysWithValues: demoTokens.map { (SHA256.hex(Array($0.utf8)), $0) })
            let found = registry.systems.compactMap { system in
                system.tokenSHA256.flatMap { demo[$0] }.map {
                    "unit system \"\(system.name)\" has the tokenSHA256 of the shipped demo token \($0)"
                }
            }
            if !found.isEmpty {
                throw AdapterError(
                    "\(path): \(found.joined(separator: "; ")), which anyone can read in the repository: give each "
                        + "system a token of its own (printf %s \"$TOKEN\" | sameday receive --hash-token) or, for a "
                        + "demonstration only, set SAMEDAY_DEMO=1")
            }
        }
        return registry
    }
}

/// The units' tree (`units.csv`'s `parent`: a district's wards, a city police's district offices).
struct UnitTree {
    private let children: [String: [String]]
    private let codes: Set<String>

    init(_ units: [SameDayCore.Unit]) {
        var children: [String: [String]] = [:]
        for unit in units { if let parent = unit.parent { children[parent, default: []].append(unit.code) } }
        self.children = children
        codes = Set(units.map(\.code))
    }

    func contains(_ code: String) -> Bool { codes.contains(code) }

    /// `units` in their order, then every unit below them, each once (a cycle of parents ends too).
    func withSubunits(_ units: [String]) -> [String] {
        var seen = Set(units)
        var out = units
        var stack = Array(units.reversed())
        while let code = stack.popLast() {
            for child in children[code] ?? [] where seen.insert(child).inserted {
                out.append(child)
                stack.append(child)
            }
        }
        return out
    }
}
