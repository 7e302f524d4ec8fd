import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SameDayFiles
import SameDayStore

/// Where the shared store lives: `postgres://user@host[:port]/database[?sslmode=disable|require|verify-full]
/// [&sslrootcert=/path/ca.pem]`. With TLS the server's certificate is always verified, against the system's trust
/// store or the CA file `sslrootcert` names (a city's private CA). The password never appears in the URL (nor on a
/// command line): it is read from a file (`storePasswordFile`).
public struct PostgresStoreURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var requireTLS: Bool
    /// A PEM file of the CA certificates that sign the server's (nil: the system's trust store).
    public var rootCertificateFile: String?

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
        var rootCertificateFile: String?
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"): requireTLS = false
            case ("sslmode", "require"), ("sslmode", "verify-full"): requireTLS = true
            case ("sslrootcert", let path?) where path.hasPrefix("/"): rootCertificateFile = path
            default:
                throw Invalid(
                    description:
                        "store URL option \(item.name)=\(item.value ?? ""): only sslmode=disable|require|verify-full and "
                        + "sslrootcert=/absolute/path/ca.pem are understood"
                )
            }
        }
        if rootCertificateFile != nil && !requireTLS {
            throw Invalid(description: "store URL: sslrootcert needs sslmode=require or verify-full")
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
        self.rootCertificateFile = rootCertificateFile
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
    /// The wait in progress, if any: `abandon` fails it at once.
    private let pending = NIOLockedValueBox<(@Sendable (String) -> Void)?>(nil)
    /// Set by `abandon`: every later statement fails at once with this reason.
    private let abandoned = NIOLockedValueBox<String?>(nil)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(url: PostgresStoreURL, password: String, name: String, logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "postgres.connection"] = "\(name)"
        self.logger = logger
        let tls: PostgresConnection.Configuration.TLS
        if url.requireTLS {
            var client = TLSConfiguration.makeClientConfiguration()
            if let file = url.rootCertificateFile {
                guard FileManager.default.isReadableFile(atPath: file) else {
                    throw Failure(description: "sslrootcert \(file): cannot read the CA file")
                }
                client.trustRoots = .file(file)
            }
            tls = .require(try NIOSSLContext(configuration: client))
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
        // Bounded waits on both sides. The server drops a session whose client went silent (keepalives, a TCP user
        // timeout) or left a transaction open (a frozen worker holding its lease row), and ends a statement that
        // runs too long; the client gives up a round trip the server never answers (`queryTimeout`).
        for setting in [
            "statement_timeout = '\(Self.queryTimeout.components.seconds - 5)s'",
            "idle_in_transaction_session_timeout = '3s'", "tcp_keepalives_idle = 5", "tcp_keepalives_interval = 2",
            "tcp_keepalives_count = 3", "tcp_user_timeout = 10000",
        ] {
            // SET takes no parameters: the values are this file's constants.
            try execute(PostgresQuery(unsafeSQL: "SET " + setting))
        }
    }

    /// The longest the client waits for one statement's answer before it closes the connection: past it the
    /// caller gets an error instead of a thread blocked for the kernel's two hours.
    static let queryTimeout: Duration = .seconds(30)

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

    /// A transaction that first checks the lease `lease` is still held at `epoch` (its row locked FOR SHARE until
    /// the transaction ends, so a take waits for it): the epoch must be ours and the lease unexpired, or it rolls
    /// back with `LeaseLost`. A holder frozen past its expiry commits nothing, even if no standby has taken over yet.
    /// With `epoch` nil (tools that only read, an operator's retry) there is no check.
    func fencedTransaction<T>(lease: String, epoch: Int64?, _ body: (Statements) throws -> T) throws -> T {
        try transaction { execute in
            if let epoch {
                let rows = try execute(
                    "SELECT epoch, expires_at > now() FROM shard_lease WHERE shard = \(lease) FOR SHARE")
                let current = try rows.first?.decode((Int64, Bool).self)
                guard let current, current.0 == epoch, current.1 else {
                    throw LeaseLost(shard: lease, heldEpoch: epoch, currentEpoch: current?.0)
                }
            }
            return try body(execute)
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
        // A statement sent on a closed connection was seen to wait for its whole deadline: refuse it here.
        if let reason = abandoned.withLockedValue({ $0 }) { throw Failure(description: reason) }
        guard !connection.isClosed else { throw Failure(description: "PostgreSQL: the connection is closed") }
        // The wait itself has the deadline: a query sent on a connection the server has already dropped (a frozen
        // worker's session ended by idle_in_transaction_session_timeout) was seen never to complete, and closing
        // the connection did not complete it either.
        let future = connection.query(query, logger: logger)
        let loop = future.eventLoop
        let answer = loop.makePromise(of: PostgresQueryResult.self)
        let settled = NIOLockedValueBox(false)
        /// True for the first of the answer and the deadline, false for the other.
        @Sendable func settle() -> Bool {
            settled.withLockedValue { done in
                if done { return false }
                done = true
                return true
            }
        }
        future.whenComplete { result in if settle() { answer.completeWith(result) } }
        let connection = connection
        let sql = query.sql
        @Sendable func giveUp(_ reason: String) {
            guard settle() else { return }
            answer.fail(Failure(description: reason))
            let _: EventLoopFuture<Void> = connection.close()
        }
        let deadline = loop.scheduleTask(in: .seconds(Int64(Self.queryTimeout.components.seconds))) {
            giveUp(Self.describeTimeout(statement: sql))
        }
        pending.withLockedValue { $0 = giveUp }
        defer {
            deadline.cancel()
            pending.withLockedValue { $0 = nil }
        }
        do {
            return try answer.futureResult.wait()
        } catch let error as PSQLError {
            throw Failure(description: Self.describe(error, statement: query.sql))
        }
    }

    static func describeTimeout(statement: String) -> String {
        let words = statement.split(whereSeparator: \.isWhitespace).prefix(6).joined(separator: " ")
        return "PostgreSQL: no answer within \(queryTimeout) (in \(words) …): the connection is closed"
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

    /// Fails the statement being waited for at once and closes the connection: what a worker that lost its lease
    /// does, rather than wait up to `queryTimeout` for an answer that may never come.
    func abandon(_ reason: String) {
        abandoned.withLockedValue { $0 = $0 ?? reason }
        if let giveUp = pending.withLockedValue({ $0 }) {
            giveUp(reason)
        } else {
            let _: EventLoopFuture<Void> = connection.close()
        }
    }
}

/// Reads the store's password: the first line of a file only its owner reads (like the broker credentials file).
func readPassword(file: String?) throws -> String {
    guard let file else { return "" }
    let text = try SecretFile.read(file, holding: "the store password")
    return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        .trimmingCharacters(in: .whitespaces)
}
