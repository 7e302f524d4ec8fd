import Foundation
import SameDayBroker
import SameDayCore

/// The unit systems wired to SameDay (`deploy/adapters/unit-systems.json`): for each, the units it may publish
/// for and the SHA-256 of its HTTP bearer token; plus the supervisors who read alert queues. The same file gives
/// the HTTP receiver its tokens and the broker its users (`sameday topology users`).
///
/// ```json
/// {"unitSystems": [{"name": "motcua-q1", "units": ["760", "26734"], "tokenSHA256": "<64 hex digits>"}],
///  "supervisors": ["sonoivu"]}
/// ```
/// Tokens are never stored: `sameday receive --hash-token` prints the hash of a new one.
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

    public var systems: [System]
    public var supervisors: [String]
    private var byTokenHash: [String: Int]

    public init(systems: [System], supervisors: [String] = []) {
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

    /// Reads a registry; errors name the file, line, column and key path (docs/configuration.md).
    public static func parse(_ bytes: [UInt8], file: String) throws -> UnitSystemRegistry {
        do throws(ConfigurationError) {
            return try read(bytes, file: file)
        } catch {
            throw AdapterError(error.description)
        }
    }

    static func read(_ bytes: [UInt8], file: String) throws(ConfigurationError) -> UnitSystemRegistry {
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
        let supervisors = try object.strings("supervisors") ?? []
        return UnitSystemRegistry(systems: systems, supervisors: supervisors)
    }

    /// The tokens whose hashes deploy/adapters/unit-systems.json ships for the demonstration. They are written in
    /// the repository (docs, tests, scripts), so anyone can present them.
    public static let demoTokens = ["demo-token-motcua-q1", "demo-token-dvc-so-tu-phap"]

    /// Reads a registry. One that holds a demo token's hash is refused unless `allowDemoTokens` (a demonstration,
    /// `SAMEDAY_DEMO=1`), naming each such unit system.
    public static func load(path: String, allowDemoTokens: Bool) throws -> UnitSystemRegistry {
        guard let data = FileManager.default.contents(atPath: path) else { throw AdapterError("\(path): cannot read") }
        let registry = try parse([UInt8](data), file: path)
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
