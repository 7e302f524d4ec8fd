import Foundation
import GRDB

/// A dossier's stored state read from a worker's shard store, read-only, without the worker's lock: for the board's
/// timeline (`sameday board`), which explains a dossier as `sameday explain` does. The dossier table has no index on
/// the code (the worker's commits would pay for it), so a lookup reads the table: a fraction of a second for a
/// shard's open dossiers, once per click.
public enum DossierLookup {
    /// The dossier's encoded state (`DossierRecord`), or nil when this store does not hold it.
    public static func state(code: String, storePath: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: storePath) else { return nil }
        var configuration = GRDB.Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let database = try DatabaseQueue(path: storePath, configuration: configuration)
        defer { try? database.close() }
        return try database.read { db in
            try Data.fetchOne(db, sql: "SELECT state FROM dossier WHERE code = ?", arguments: [code]).map { Array($0) }
        }
    }
}
