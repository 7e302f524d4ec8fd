/// The one reader of the JSON files operators write (`worker.json`, `receiver.json`, `calendars.json`,
/// `alerting.json`, mapping profiles, `unit-systems.json`; docs/configuration.md): it parses with `JSONParser`, bounds
/// the file's size, and gives typed access whose every error is a `ConfigurationError` naming the file, line, column
/// and key path: `worker.json:12:5: key "prefetch": expected an integer, found "abc"`.
///
/// Two levels of access: by node and path (`string(node, "levels.warning[0]")`), and by key on an object
/// (`object.int("prefetch")`), which is what most files need. A key set to `null` reads as absent.
public struct JSONReader: Sendable {
    /// The file's name as errors show it.
    public let file: String

    /// Files larger than this are refused before they are parsed: operator files are a few kilobytes.
    public static let maxFileBytes = 4 << 20

    public init(file: String) { self.file = file }

    /// Parses a whole file (at most `maxBytes`).
    public func document(_ bytes: [UInt8], maxBytes: Int = JSONReader.maxFileBytes) throws(ConfigurationError)
        -> JSONNode
    {
        guard bytes.count <= maxBytes else {
            throw ConfigurationError(
                file: file,
                message: "the file is \(bytes.count) bytes, more than the \(maxBytes) a configuration may be")
        }
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw ConfigurationError(
                file: file, line: error.line, column: error.column, message: "not valid JSON: " + error.message)
        }
    }

    /// Parses a whole file that must be one JSON object with only the `allowed` keys.
    public func root(_ bytes: [UInt8], allowed: [String], maxBytes: Int = JSONReader.maxFileBytes)
        throws(ConfigurationError) -> JSONObject
    {
        let object = try JSONObject(reader: self, node: try document(bytes, maxBytes: maxBytes), path: "$")
        try object.only(allowed)
        return object
    }

    // MARK: By node and path

    public func error(_ n: JSONNode, _ path: String, _ m: String) -> ConfigurationError {
        let field =
            path == "$" ? nil : path.split(separator: ".").last.map { String($0.split(separator: "[").first ?? $0) }
        return ConfigurationError(file: file, line: n.line, column: n.column, path: path, field: field, message: m)
    }

    public func object(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> [(key: String, value: JSONNode)] {
        guard case .object(let m) = n.value else { throw error(n, p, "expected an object, found \(n.found)") }
        return m
    }

    public func array(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> [JSONNode] {
        guard case .array(let a) = n.value else { throw error(n, p, "expected an array, found \(n.found)") }
        return a
    }

    public func string(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> String {
        guard case .string(let s) = n.value else { throw error(n, p, "expected a string, found \(n.found)") }
        return s
    }

    public func bool(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> Bool {
        guard case .bool(let b) = n.value else { throw error(n, p, "expected true or false, found \(n.found)") }
        return b
    }

    /// A whole number (written without a fraction or with `.0`), within ±2⁵³.
    public func int(_ n: JSONNode, _ p: String) throws(ConfigurationError) -> Int {
        guard case .number(let d, _) = n.value, d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else {
            throw error(n, p, "expected an integer, found \(n.found)")
        }
        return Int(d)
    }

    public func positiveInt(_ n: JSONNode, _ p: String, allowZero: Bool = false) throws(ConfigurationError) -> Int {
        guard case .number(let d, _) = n.value, d == d.rounded(), d >= (allowZero ? 0 : 1), d < 1e9 else {
            throw error(n, p, "expected a whole number ≥ \(allowZero ? 0 : 1), found \(n.found)")
        }
        return Int(d)
    }

    public func onlyKeys(_ m: [(key: String, value: JSONNode)], _ allowed: [String], _ p: String)
        throws(ConfigurationError)
    {
        for (k, v) in m where !allowed.contains(k) {
            throw ConfigurationError(
                file: file, line: v.line, column: v.column, path: p == "$" ? k : p + "." + k, field: k,
                message: "unknown key (allowed: \(allowed.joined(separator: ", ")))")
        }
    }
}

/// A JSON object of an operator file, read by key: each accessor returns nil when the key is absent (or `null`) and
/// throws a `ConfigurationError` at the value when it has the wrong type.
public struct JSONObject: Sendable {
    public let reader: JSONReader
    public let node: JSONNode
    /// The object's key path (`$` for the whole document).
    public let path: String
    public let members: [(key: String, value: JSONNode)]

    public init(reader: JSONReader, node: JSONNode, path: String) throws(ConfigurationError) {
        self.reader = reader
        self.node = node
        self.path = path
        members = try reader.object(node, path)
    }

    /// The keys in the order of the text.
    public var keys: [String] { members.map(\.key) }

    /// The key path of a member: `spool.directory`, or `prefetch` at the top.
    public func path(_ key: String) -> String { path == "$" ? key : path + "." + key }

    /// The member's value; nil when it is absent or `null`.
    public subscript(key: String) -> JSONNode? {
        guard let n = members.first(where: { $0.key == key })?.value, n.value != .null else { return nil }
        return n
    }

    /// Refuses any key not in `allowed`, listing the allowed ones (a misspelt key must not silently mean a default).
    public func only(_ allowed: [String]) throws(ConfigurationError) {
        try reader.onlyKeys(members, allowed, path)
    }

    /// An error about a member: at its value when present, else at the object.
    public func error(_ key: String, _ message: String) -> ConfigurationError {
        var e = reader.error(self[key] ?? node, path(key), message)
        e.field = key
        return e
    }

    /// An error about the object itself.
    public func error(_ message: String) -> ConfigurationError { reader.error(node, path, message) }

    /// The member's value, or "missing" naming what it should be.
    public func required(_ key: String, _ what: String? = nil) throws(ConfigurationError) -> JSONNode {
        guard let n = self[key] else { throw error(key, "missing" + (what.map { ": " + $0 } ?? "")) }
        return n
    }

    public func string(_ key: String) throws(ConfigurationError) -> String? {
        try self[key].map { (n) throws(ConfigurationError) in try reader.string(n, path(key)) }
    }

    public func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        try self[key].map { (n) throws(ConfigurationError) in try reader.bool(n, path(key)) }
    }

    /// A whole number, within `range` when one is given ("expected an integer 1…65535, found 0").
    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(ConfigurationError) -> Int? {
        guard let n = self[key] else { return nil }
        let v = try reader.int(n, path(key))
        if let range, !range.contains(v) {
            let bounds =
                range.upperBound >= 1 << 40 ? "≥ \(range.lowerBound)" : "\(range.lowerBound)…\(range.upperBound)"
            throw reader.error(n, path(key), "expected an integer \(bounds), found \(n.found)")
        }
        return v
    }

    public func array(_ key: String) throws(ConfigurationError) -> [JSONNode]? {
        try self[key].map { (n) throws(ConfigurationError) in try reader.array(n, path(key)) }
    }

    /// An array of strings.
    public func strings(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let items = try array(key) else { return nil }
        var out: [String] = []
        for (i, n) in items.enumerated() { out.append(try reader.string(n, path(key) + "[\(i)]")) }
        return out
    }

    public func object(_ key: String) throws(ConfigurationError) -> JSONObject? {
        try self[key].map { (n) throws(ConfigurationError) in try JSONObject(reader: reader, node: n, path: path(key)) }
    }

    /// An object whose values are all strings (a map such as `statuses`), in text order.
    public func stringMap(_ key: String) throws(ConfigurationError) -> [(key: String, value: String)] {
        guard let o = try object(key) else { return [] }
        var out: [(key: String, value: String)] = []
        for (k, v) in o.members { out.append((k, try reader.string(v, o.path(k)))) }
        return out
    }
}
