import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Where the shared store lives: `postgres://user@host[:port]/database[?sslmode=disable|require]`. The password
/// never appears in the URL (nor on a command line): it is read from a file (`storePasswordFile`).
public struct PostgresStoreURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var requireTLS: Bool

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(_ text: String) throws {
        guard Self.isPostgres(text), let components = URLComponents(string: text), let host = components.host,
            !host.isEmpty
        else {
            throw Invalid(description: "store \(text.prefix(200)): expected postgres://user@host[:port]/database")
        }
        guard components.password == nil else {
            throw Invalid(
                description:
                    "store URL carries a password: put it in the file named by storePasswordFile instead (the URL is logged)"
            )
        }
        guard let user = components.user, !user.isEmpty else {
            throw Invalid(description: "store \(text.prefix(200)): no user (postgres://user@host/database)")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw Invalid(description: "store \(text.prefix(200)): no database name (postgres://user@host/database)")
        }
        var requireTLS = false
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"): requireTLS = false
            case ("sslmode", "require"), ("sslmode", "verify-full"): requireTLS = true
            default:
                throw Invalid(
                    description:
                        "store URL option \(item.name)=\(item.value ?? ""): only sslmode=disable|require|verify-full is understood"
                )
            }
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else {
            throw Invalid(description: "store \(text.prefix(200)): port out of range")
        }
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.requireTLS = requireTLS
    }

    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }
}

/// One PostgreSQL connection used from ordinary threads: each call blocks until the server answered (the worker's
/// threads are its own, never Swift's cooperative pool), and a transaction holds the connection for its duration,
/// so that two threads never interleave their statements.
final class BlockingConnection: @unchecked Sendable {
    private let connection: PostgresConnection
    private let lock = NSLock()
    let logger: Logger

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(url: PostgresStoreURL, password: String, name: String, logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "postgres.connection"] = "\(name)"
        self.logger = logger
        let tls: PostgresConnection.Configuration.TLS
        if url.requireTLS {
            tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        } else {
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: password, database: url.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        do {
            connection = try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                id: Int.random(in: 1...Int.max), logger: logger
            ).wait()
        } catch {
            throw Failure(description: "cannot connect to \(url): \(String(reflecting: error).prefix(400))")
        }
    }

    var isClosed: Bool { connection.isClosed }

    /// One statement, outside any transaction of another thread.
    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        lock.lock()
        defer { lock.unlock() }
        return try execute(query)
    }

    /// Statements in one transaction: committed if `body` returns, rolled back if it throws.
    func transaction<T>(_ body: (_ execute: Statements) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        try execute("BEGIN")
        do {
            let value = try body(Statements(connection: self))
            try execute("COMMIT")
            return value
        } catch {
            // The connection may be gone; the server rolls back what it had of the transaction either way.
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs statements inside `transaction` (the connection's lock is held).
    struct Statements {
        let connection: BlockingConnection
        @discardableResult
        func callAsFunction(_ query: PostgresQuery) throws -> PostgresQueryResult { try connection.execute(query) }
    }

    @discardableResult
    fileprivate func execute(_ query: PostgresQuery) throws -> PostgresQueryResult {
        do {
            return try connection.query(query, logger: logger).wait()
        } catch let error as PSQLError {
            throw Failure(description: Self.describe(error, statement: query.sql))
        }
    }

    /// What the server said (state and message) and the statement's first words: enough for ops, without the
    /// bound values, which may hold a dossier's data.
    static func describe(_ error: PSQLError, statement: String) -> String {
        let words = statement.split(whereSeparator: \.isWhitespace).prefix(6).joined(separator: " ")
        if let server = error.serverInfo {
            return "PostgreSQL \(server[.sqlState] ?? "?"): \(server[.message] ?? "?") (in \(words) …)"
        }
        return "PostgreSQL \(error.code) (in \(words) …)"
    }

    deinit {
        // A connection must be closed before it goes (postgres-nio checks); an init that failed after connecting
        // leaves it open.
        if !connection.isClosed { _ = try? connection.close().wait() }
    }

    func close() {
        _ = try? connection.close().wait()
    }
}

/// Reads the store's password: the first line of a file only its owner reads (like the broker credentials file).
func readPassword(file: String?) throws -> String {
    guard let file else { return "" }
    guard let data = FileManager.default.contents(atPath: file), data.count <= 4096,
        let text = String(data: data, encoding: .utf8)
    else {
        throw BlockingConnection.Failure(description: "\(file): cannot read the store password (at most 4 KiB of UTF-8)")
    }
    return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        .trimmingCharacters(in: .whitespaces)
}
