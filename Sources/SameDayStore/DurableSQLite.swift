import Foundation
import GRDB

/// Opens a SQLite database that holds durable state (the worker's shard, `sameday sources`): its folder made, WAL,
/// `synchronous=FULL`, readers and a second opener waiting for the lock instead of failing; then the schema brought up
/// to date by `migrator`. `tuning` adds a store's own pragmas on each connection.
///
/// Switching to WAL and migrating happen under an exclusive `flock` on `<path>-open.lock`: two openers meeting on a new
/// or older file (a service starting while `sameday report` or a test opens it) would otherwise both run the
/// migrations, and SQLite refuses the second's journal switch at once instead of waiting. The second opener waits for
/// the first and finds the work done. The lock file is empty and stays beside the database.
enum DurableSQLite {
    static func open(
        path: String, migrator: DatabaseMigrator, tuning: @escaping @Sendable (Database) throws -> Void = { _ in }
    ) throws -> DatabaseQueue {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        // A report, the demo's sqlite3 or a test reading the file waits for the lock rather than failing.
        configuration.busyMode = lockWait
        configuration.prepareDatabase { db in
            // FULL: what a commit acknowledges (an acked delivery, a stream offset) must survive a power cut, not only
            // a process crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try tuning(db)
        }
        let database = try DatabaseQueue(path: path, configuration: configuration)
        try whileHoldingOpenLock(of: path) {
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
            try migrator.migrate(database)
        }
        return database
    }

    /// A read-only connection to a database `open` made, beside the one `open` returned (WAL lets a reader run
    /// alongside it); it waits for locks as that one does. `tuning` adds the store's own pragmas.
    static func openReadOnly(path: String, tuning: @escaping @Sendable (Database) throws -> Void = { _ in }) throws
        -> DatabaseQueue
    {
        var configuration = GRDB.Configuration()
        configuration.readonly = true
        configuration.busyMode = lockWait
        configuration.prepareDatabase { db in try tuning(db) }
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    private static let lockWait = Database.BusyMode.timeout(10)

    /// Runs `body` holding the exclusive lock beside `path`, waiting for another opener to finish first. `flock` locks
    /// are separate from SQLite's own `fcntl` locks on the database, and are released if the holder dies.
    private static func whileHoldingOpenLock(of path: String, _ body: () throws -> Void) throws {
        let lockPath = path + "-open.lock"
        let descriptor = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw DurableSQLiteError.openLock(path: lockPath, reason: String(cString: strerror(errno)))
        }
        defer { Glibc.close(descriptor) }  // Closing releases the lock.
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw DurableSQLiteError.openLock(path: lockPath, reason: String(cString: strerror(errno)))
            }
        }
        try body()
    }
}

public enum DurableSQLiteError: Error, CustomStringConvertible {
    case openLock(path: String, reason: String)

    public var description: String {
        switch self {
        case .openLock(let path, let reason): "cannot lock \(path) to open its database: \(reason)"
        }
    }
}
