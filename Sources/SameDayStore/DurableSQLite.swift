import Foundation
import GRDB

/// Opens a SQLite database that holds durable state (the worker's shard, `sameday sources`): its folder made, WAL,
/// `synchronous=FULL`, readers and a second opener waiting for the lock instead of failing; then the schema brought up
/// to date by `migrator`. `tuning` adds a store's own pragmas on each connection.
enum DurableSQLite {
    static func open(
        path: String, migrator: DatabaseMigrator, tuning: @escaping @Sendable (Database) throws -> Void = { _ in }
    ) throws -> DatabaseQueue {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        // A report, the demo's sqlite3 or a test reading the file waits for the lock rather than failing.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // FULL: what a commit acknowledges (an acked delivery, a stream offset) must survive a power cut, not only
            // a process crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try tuning(db)
        }
        let database = try DatabaseQueue(path: path, configuration: configuration)
        try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        try migrator.migrate(database)
        return database
    }
}
