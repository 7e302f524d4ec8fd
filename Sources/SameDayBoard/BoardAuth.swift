import Foundation
import SameDayCore
import Synchronization

/// The board's password file: one `person:hash` per line, the person as `alerting.json` names her, the hash a
/// bcrypt hash (`$2b$…`, from `sameday board password`). Blank lines and lines starting with `#` are skipped.
public struct PasswordFile: Sendable, Equatable {
    public private(set) var hashes: [String: String] = [:]

    public static let maxBytes = 4 * 1024 * 1024

    public init(hashes: [String: String] = [:]) { self.hashes = hashes }

    public static func load(path: String, people: Set<String>) throws -> PasswordFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, message: "cannot read the file")
        }
        return try parse(Array(data), file: path, people: people)
    }

    /// Every error names the file and the line; a person `alerting.json` does not name is refused (her board would
    /// be empty, and a typo would go unnoticed).
    public static func parse(_ bytes: [UInt8], file: String, people: Set<String>) throws(ConfigurationError)
        -> PasswordFile
    {
        guard bytes.count <= maxBytes else {
            throw ConfigurationError(file: file, message: "larger than \(maxBytes) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(file: file, message: "not UTF-8")
        }
        var file_ = PasswordFile()
        // "\r\n" is one Character in Swift: split on it as well as on "\n".
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (index, line) in lines.enumerated() {
            let number = index + 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw ConfigurationError(file: file, line: number, message: "expected person:bcrypt-hash")
            }
            let person = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard people.contains(person) else {
                throw ConfigurationError(
                    file: file, line: number,
                    message: "\"\(Printable.escaped(person, limit: 80))\" is not a person alerting.json names")
            }
            guard Self.isBcrypt(hash) else {
                throw ConfigurationError(
                    file: file, line: number,
                    message: "not a bcrypt hash ($2b$NN$ and 53 characters; see "
                        + "`sameday board password`)")
            }
            guard file_.hashes[person] == nil else {
                throw ConfigurationError(file: file, line: number, message: "\(person) is listed twice")
            }
            file_.hashes[person] = hash
        }
        return file_
    }

    /// The cost most of the file's hashes have (12 when there are none): what a check for an unknown person costs.
    public var typicalCost: UInt8 {
        var counts: [UInt8: Int] = [:]
        for hash in hashes.values {
            if let cost = UInt8(hash.dropFirst(4).prefix(2)) { counts[cost, default: 0] += 1 }
        }
        return counts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key ?? 12
    }

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost from 04 to 31, then 53 characters of bcrypt's base 64.
    static func isBcrypt(_ hash: String) -> Bool {
        let b = Array(hash.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(b[2]), b[3] == UInt8(ascii: "$"),
            b[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: b[4..<6], as: UTF8.self)),
            (4...31).contains(cost)
        else { return false }
        return b[7...].allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x2F
        }
    }
}

/// How many wrong passwords lock a person out, for how long, and how many attempts one address may make.
public struct LoginPolicy: Sendable, Equatable {
    public var maxFailures = 5
    public var lockoutSeconds: Int64 = 15 * 60
    public var perAddressPerMinute = 20

    public init() {}
}

/// Login throttling, pure (time passed in): a person locked out after `maxFailures` wrong passwords in a row for
/// `lockoutSeconds`, an address limited to `perAddressPerMinute` attempts. Bounded: people are those of the password
/// file, addresses are forgotten after a minute of quiet, and at most `maxAddresses` are tracked (past that, new
/// addresses share one budget, so a flood from many addresses cannot grow the state).
public struct LoginThrottle: Sendable {
    public enum Verdict: Sendable, Equatable {
        case allowed
        /// Refused without checking the password; retry after this many seconds.
        case locked(retryAfter: Int64)
    }

    public let policy: LoginPolicy
    public static let maxAddresses = 10_000
    private var failures: [String: (count: Int, lockedUntil: Instant?)] = [:]
    private var attempts: [String: (windowStart: Instant, count: Int)] = [:]

    public init(policy: LoginPolicy) { self.policy = policy }

    /// Before checking a password: may this address try this person now? Counts the attempt.
    public mutating func check(person: String, address: String, now: Instant) -> Verdict {
        if attempts.count >= Self.maxAddresses { attempts = attempts.filter { now - $0.value.windowStart < 60 } }
        let key = attempts[address] != nil || attempts.count < Self.maxAddresses ? address : "*"
        var window = attempts[key] ?? (now, 0)
        if now - window.windowStart >= 60 { window = (now, 0) }
        window.count += 1
        attempts[key] = window
        if window.count > policy.perAddressPerMinute { return .locked(retryAfter: 60 - (now - window.windowStart)) }
        if let until = failures[person]?.lockedUntil, until > now { return .locked(retryAfter: until - now) }
        return .allowed
    }

    /// After checking: a right password clears the person's failures; a wrong one counts, and locks at the limit.
    public mutating func record(person: String, succeeded: Bool, now: Instant) {
        if succeeded {
            failures[person] = nil
            return
        }
        var f = failures[person] ?? (0, nil)
        if let until = f.lockedUntil, until <= now { f = (0, nil) }
        f.count += 1
        if f.count >= policy.maxFailures { f.lockedUntil = now + policy.lockoutSeconds }
        failures[person] = f
    }
}

/// The sessions of logged-in supervisors, in memory (a restart of the board asks everyone to log in again). A
/// session is a 256-bit random token in an `HttpOnly` cookie; at most `maxSessions` are held, the oldest dropped.
public final class SessionStore: Sendable {
    public struct Session: Sendable, Equatable {
        public var person: String
        public var expires: Instant
    }

    public let lifetimeSeconds: Int64
    public let maxSessions: Int
    private let sessions = Mutex<[String: Session]>([:])

    public init(lifetimeSeconds: Int64, maxSessions: Int = 50_000) {
        self.lifetimeSeconds = lifetimeSeconds
        self.maxSessions = maxSessions
    }

    /// A new session's token.
    public func open(person: String, now: Instant) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = rng.next() }
        let token = Self.base64url(bytes)
        sessions.withLock { all in
            if all.count >= maxSessions {
                all = all.filter { $0.value.expires > now }
                if all.count >= maxSessions, let oldest = all.min(by: { $0.value.expires < $1.value.expires }) {
                    all[oldest.key] = nil
                }
            }
            all[token] = Session(person: person, expires: now + lifetimeSeconds)
        }
        return token
    }

    /// The person of a live session.
    public func person(token: String, now: Instant) -> String? {
        sessions.withLock { all in
            guard let s = all[token] else { return nil }
            if s.expires <= now {
                all[token] = nil
                return nil
            }
            return s.person
        }
    }

    public func close(token: String) { _ = sessions.withLock { $0.removeValue(forKey: token) } }

    public var count: Int { sessions.withLock { $0.count } }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// `application/x-www-form-urlencoded`.
struct FormBody {
    private var values: [String: String] = [:]

    init(_ text: String) {
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            let key = decode(parts[0])
            if values[key] == nil { values[key] = parts.count > 1 ? decode(parts[1]) : "" }
        }
    }

    subscript(key: String) -> String? { values[key] }
}
