import Foundation
import SameDayCore

/// `board.json`: how `sameday board` serves the supervisors' live page (docs/board.md, "Configuration"). Who may see
/// which units is `alerting.json`'s (a person sees the units whose alerts reach her); the broker, the name prefix
/// and the domain configuration come from the workers' file, as for `sameday notify`.
public struct BoardSettings: Sendable, Equatable {
    public static let file = "board.json"

    /// The page's address, `HOST:PORT`.
    public var listen = "127.0.0.1:8470"
    /// Served over TLS directly (PEM files); nil: plain HTTP, behind a reverse proxy that terminates TLS.
    public var tls: TLSFiles?
    /// Whether the session cookie is `Secure` (sent over HTTPS only). True when `tls` is set; set it when a proxy
    /// terminates TLS in front of the board.
    public var secureCookies: Bool?
    /// `person:bcrypt-hash` per line (`sameday board password`), readable by the service only.
    public var passwordsFile = "/etc/sameday/board.passwords"
    /// The board's own state (`board-alerts.jsonl`: the alerts its view is built from, for a restart).
    public var stateDirectory = "/var/lib/sameday/board"
    /// The broker user's credentials (the `board` user), when not the workers' (`credentialsFile` of worker.json).
    public var credentialsFile: String?
    /// The workers' alert folders, read at start for what happened before the board's queue existed.
    public var alertFolders: [String] = []
    /// How many days of alert files, back from the newest, are read at start.
    public var alertFileDays = 14
    /// The workers' rollup folders (one per shard), for each unit's figures of the day.
    public var rollups: [String] = []
    /// The workers' SQLite stores (`worker.sqlite`, one per shard), read-only, for a dossier's timeline.
    public var timelineStores: [String] = []
    /// How long a session lasts.
    public var sessionHours = 12
    public var login = LoginPolicy()
    /// `/metrics`, `/healthz` and `/readyz`; empty for none.
    public var metricsListen = "127.0.0.1:9461"
    /// The most live clients at once (each holds one stream).
    public var maxClients = 2_000

    public struct TLSFiles: Sendable, Equatable {
        public var certificateFile: String
        public var keyFile: String
    }

    public init() {}

    public var cookiesAreSecure: Bool { secureCookies ?? (tls != nil) }
    public var statePath: String { (stateDirectory as NSString).appendingPathComponent("board-alerts.jsonl") }
    public var lockPath: String { (stateDirectory as NSString).appendingPathComponent("board.lock") }

    public static func load(path: String) throws -> BoardSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, message: "cannot read the file")
        }
        return try parse(Array(data), file: path)
    }

    /// Reads `board.json`; every error names the file, line, column and key.
    public static func parse(_ bytes: [UInt8], file: String = BoardSettings.file) throws(ConfigurationError)
        -> BoardSettings
    {
        let reader = JSONReader(file: file)
        let root = try reader.root(
            bytes,
            allowed: [
                "listen", "tls", "secureCookies", "passwordsFile", "stateDirectory", "credentialsFile",
                "alertFolders", "alertFileDays", "rollups", "timelineStores", "sessionHours", "login",
                "metricsListen", "maxClients",
            ])
        var s = BoardSettings()
        if let v = try root.string("listen") {
            guard HostPort(v) != nil else { throw root.error("listen", "expected HOST:PORT, found \"\(v)\"") }
            s.listen = v
        }
        if let t = try root.object("tls") {
            try t.only(["certificateFile", "keyFile"])
            guard let cert = try t.string("certificateFile") else { throw t.error("certificateFile", "missing") }
            guard let key = try t.string("keyFile") else { throw t.error("keyFile", "missing") }
            s.tls = TLSFiles(
                certificateFile: try absolute(cert, t, "certificateFile"), keyFile: try absolute(key, t, "keyFile"))
        }
        s.secureCookies = try root.bool("secureCookies")
        if let v = try root.string("passwordsFile") { s.passwordsFile = try absolute(v, root, "passwordsFile") }
        if let v = try root.string("stateDirectory") { s.stateDirectory = try absolute(v, root, "stateDirectory") }
        if let v = try root.string("credentialsFile") { s.credentialsFile = try absolute(v, root, "credentialsFile") }
        for (key, path) in [
            ("alertFolders", \BoardSettings.alertFolders), ("rollups", \.rollups),
            ("timelineStores", \.timelineStores),
        ] {
            if let list = try root.strings(key) {
                guard list.count <= 256 else { throw root.error(key, "more than 256 paths") }
                s[keyPath: path] = try list.map { (p) throws(ConfigurationError) in try absolute(p, root, key) }
            }
        }
        if let v = try root.int("alertFileDays", in: 1...366) { s.alertFileDays = v }
        if let v = try root.int("sessionHours", in: 1...168) { s.sessionHours = v }
        if let v = try root.int("maxClients", in: 1...100_000) { s.maxClients = v }
        if let v = try root.string("metricsListen") {
            guard v.isEmpty || HostPort(v) != nil else {
                throw root.error("metricsListen", "expected HOST:PORT or \"\", found \"\(v)\"")
            }
            s.metricsListen = v
        }
        if let l = try root.object("login") {
            try l.only(["maxFailures", "lockoutMinutes", "attemptsPerAddressPerMinute"])
            if let v = try l.int("maxFailures", in: 1...100) { s.login.maxFailures = v }
            if let v = try l.int("lockoutMinutes", in: 1...1440) { s.login.lockoutSeconds = Int64(v) * 60 }
            if let v = try l.int("attemptsPerAddressPerMinute", in: 1...10_000) { s.login.perAddressPerMinute = v }
        }
        return s
    }

    private static func absolute(_ path: String, _ o: JSONObject, _ key: String) throws(ConfigurationError) -> String {
        guard path.hasPrefix("/") || path.hasPrefix(".") else {
            throw o.error(key, "expected a path starting with / or ., found \"\(path)\"")
        }
        return path
    }
}

/// `HOST:PORT`, the host possibly in brackets (IPv6).
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), colon > text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}
