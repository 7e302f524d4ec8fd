import GRDB
import GRDBSQLite

/// A prepared statement run once per row through SQLite's C API: each value is bound from its Swift storage, then
/// the statement is stepped and reset. The per-row statements of a worker's commit (each event, each alert, each
/// delivery mark, each saved dossier row) went through GRDB's arguments, which box every value into an array and
/// copy each blob into `Data` before SQLite copies it again: about a fifth of the commit thread's time.
///
/// Texts and blobs are bound with `SQLITE_TRANSIENT` (SQLite takes its own copy at once), so nothing bound outlives
/// the Swift value it came from. The statement comes from GRDB's cache, is only run here, and is reset after each
/// row, so it never holds a read open.
struct RowStatement {
    private let statement: Statement
    private let raw: OpaquePointer
    private let db: Database

    init(_ db: Database, sql: String) throws {
        statement = try db.cachedStatement(sql: sql)
        raw = statement.sqliteStatement
        self.db = db
    }

    /// Binds parameter `index` (from 1).
    func bind(_ index: Int32, _ number: Int64) throws {
        try check(sqlite3_bind_int64(raw, index, number))
    }

    func bind(_ index: Int32, _ text: String) throws {
        var text = text
        try text.withUTF8 { bytes in
            guard let start = bytes.baseAddress else {
                // An empty buffer may have no address, which SQLite would bind as NULL.
                return try check(sqlite3_bind_text(raw, index, "", 0, rowStatementTransient))
            }
            let chars = UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)
            try check(sqlite3_bind_text(raw, index, chars, Int32(bytes.count), rowStatementTransient))
        }
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            try check(
                buffer.isEmpty
                    ? sqlite3_bind_zeroblob(raw, index, 0)
                    : sqlite3_bind_blob(raw, index, buffer.baseAddress, Int32(buffer.count), rowStatementTransient))
        }
    }

    /// Steps the bound row and resets the statement. Throws SQLite's error as GRDB reports it (`DatabaseError`), so
    /// callers tell a full disk from a constraint as before.
    func step() throws {
        let code = sqlite3_step(raw)
        sqlite3_reset(raw)
        guard code == SQLITE_DONE else { throw error(code) }
    }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw error(code) }
    }

    private func error(_ code: Int32) -> DatabaseError { sqliteError(code, statement, db) }
}

/// Steps `statement` through SQLite's C API, handing `body` the raw statement at each row (read its columns with
/// `sqlite3_column_*`). For reads of many rows at start: GRDB's row cursor boxes every value and copies each blob
/// twice (into `Data`, then into an array).
func forEachRawRow(of statement: Statement, in db: Database, _ body: (OpaquePointer) throws -> Void) throws {
    let raw = statement.sqliteStatement
    while true {
        let step = sqlite3_step(raw)
        if step == SQLITE_DONE { return }
        guard step == SQLITE_ROW else { throw sqliteError(step, statement, db) }
        try body(raw)
    }
}

/// A failed call of SQLite's C API on `statement` as GRDB reports errors, so callers see one error type.
func sqliteError(_ code: Int32, _ statement: Statement, _ db: Database) -> DatabaseError {
    DatabaseError(
        resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
        sql: statement.sql)
}

/// SQLite's `SQLITE_TRANSIENT` (the C macro is not imported): copy the bound value at once.
private let rowStatementTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
