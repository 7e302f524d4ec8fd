import Foundation
import GRDB
import Testing

@testable import SameDayStore

@Suite("A worker store's commit writes each value as given")
struct StoreCommitTests {
    @Test("texts (Vietnamese and empty), blobs (empty too) and delivery marks read back as committed")
    func valuesReadBackAsCommitted() throws {
        let folder = temporaryFolder("store-commit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        var batch = CommitBatch()
        let body = Array(#"{"unit":"Quận 1","note":"hồ sơ"}"#.utf8)
        batch.events = [("e-1", "760-220518-0001", 42, body), ("", "760-220518-0002", 43, [])]
        batch.dossiers = [(1, "760-220518-0001", [1, 2, 3]), (2, "760-220518-0002", [])]
        let alerts = [
            OutboxAlert(
                alertID: "a1", level: "warning", routingKey: "alert.warning.district.760", day: "2022-05-18",
                json: #"{"unit":"Quận 1"}"#),
            OutboxAlert(alertID: "a2", level: "", routingKey: "", day: "", json: ""),
        ]
        batch.alerts = alerts
        try store.commit(batch)
        var marks = CommitBatch()
        marks.publishedAlertIDs = ["a1"]
        marks.filedAlertIDs = ["a2"]
        try store.commit(marks)

        var logged: [(Int64, [UInt8], Int64)] = []
        try store.forEachLoggedEvent { logged.append(($0, $1, $2)) }
        #expect(logged.map(\.1) == [body, []])
        #expect(logged.map(\.2) == [42, 43])
        var rows: [Int64: (String, [UInt8])] = [:]
        try store.forEachDossier { rows[$0] = ($1, $2) }
        #expect(rows[1]?.0 == "760-220518-0001" && rows[1]?.1 == [1, 2, 3])
        #expect(rows[2]?.0 == "760-220518-0002" && rows[2]?.1 == [])
        #expect(try store.allAlerts() == alerts)
        #expect(try store.unpublishedAlerts(limit: 10).map(\.alertID) == ["a2"])
        #expect(try store.unfiledAlerts(limit: 10).map(\.alertID) == ["a1"])
        // The same alert id again is kept as it was.
        var again = CommitBatch()
        again.alerts = [OutboxAlert(alertID: "a1", level: "critical", routingKey: "", day: "", json: "")]
        try store.commit(again)
        #expect(try store.allAlerts() == alerts)
    }

    /// Alert ids as `Alert.id` makes them (16 hex digits), so the outbox keeps them as numbers.
    private func alert(_ n: Int, day: String = "2022-05-18") -> OutboxAlert {
        let id = String(repeating: "0", count: 12) + String(format: "%04x", n)
        return OutboxAlert(alertID: id, level: "warning", routingKey: "alert.warning", day: day, json: "{}")
    }

    /// The rows of `alert_undelivered`: [seq, published, filed].
    private func waitingMarks(_ reader: DatabaseQueue) throws -> [[Int64]] {
        try reader.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, published, filed FROM alert_undelivered ORDER BY seq").map {
                [$0[0], $0[1], $0[2]] as [Int64]
            }
        }
    }

    private func delivery(_ store: WorkerStore) throws -> [String: (published: Bool, filed: Bool)] {
        let unpublished = Set(try store.unpublishedAlerts(limit: 100).map(\.alertID))
        let unfiled = Set(try store.unfiledAlerts(limit: 100).map(\.alertID))
        var marks: [String: (published: Bool, filed: Bool)] = [:]
        for alert in try store.allAlerts() {
            marks[alert.alertID] = (!unpublished.contains(alert.alertID), !unfiled.contains(alert.alertID))
        }
        return marks
    }

    @Test("the outbox finds its alerts by id without an index: once each, marked one way, both ways, or not at all")
    func outboxIdsHeldInMemory() throws {
        let folder = temporaryFolder("store-outbox")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try WorkerStore(path: folder + "/state.sqlite")
        var batch = CommitBatch()
        // The same id twice in one batch, an id that is not 16 hex digits, one in capitals (not `Alert.id`'s form).
        let odd = OutboxAlert(
            alertID: "silence-760", level: "source_silent", routingKey: "", day: "2022-05-18", json: "")
        let capitals = OutboxAlert(alertID: "00000000000000AB", level: "", routingKey: "", day: "2022-05-18", json: "")
        batch.alerts = [alert(1), alert(2), alert(1), alert(3), odd, capitals, alert(0xab)]
        try store.commit(batch)
        #expect(
            try store.allAlerts().map(\.alertID)
                == [alert(1), alert(2), alert(3), odd, capitals, alert(0xab)].map(\.alertID))

        var marks = CommitBatch()
        marks.publishedAlertIDs = [alert(1).alertID, alert(2).alertID, "silence-760", "ffffffffffffffff"]
        marks.filedAlertIDs = [alert(2).alertID, alert(3).alertID, "00000000000000AB"]
        try store.commit(marks)
        let marked = try delivery(store)
        #expect(marked[alert(1).alertID]! == (true, false))
        #expect(marked[alert(2).alertID]! == (true, true))
        #expect(marked[alert(3).alertID]! == (false, true))
        #expect(marked["silence-760"]! == (true, false))
        #expect(marked["00000000000000AB"]! == (false, true))
        #expect(marked[alert(0xab).alertID]! == (false, false))

        // Delivered both ways and of a past day: pruned, and forgotten (a mark of it finds nothing), so the same id
        // raised again is a new row.
        try store.markFiled([alert(1).alertID])
        let pruned = try store.prune(eventsBefore: 0, tombstonesBefore: 0, alertsBeforeDay: "2022-05-19", limit: 100)
        #expect(pruned.alerts == 2)
        try store.markPublished([alert(1).alertID])
        var raisedAgain = CommitBatch()
        raisedAgain.alerts = [alert(1), alert(3)]
        try store.commit(raisedAgain)
        let ids = try store.allAlerts().map(\.alertID)
        #expect(ids == [alert(3), odd, capitals, alert(0xab), alert(1)].map(\.alertID))
        #expect(try delivery(store)[alert(1).alertID]! == (false, false))
    }

    @Test("a commit that fails after storing alerts leaves the ids in memory as they were: the retry stores them")
    func failedCommitForgetsItsAlerts() throws {
        let folder = temporaryFolder("store-outbox-fail")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let store = try WorkerStore(path: path)
        // A trigger on the dead-letter outbox, written after the alerts in the same transaction, fails the commit.
        let saboteur = try DatabaseQueue(path: path)
        try saboteur.write { db in
            try db.execute(
                sql: "CREATE TRIGGER refuse AFTER INSERT ON dead_letter BEGIN SELECT RAISE(ABORT, 'refused'); END")
        }
        var batch = CommitBatch()
        batch.alerts = [alert(7)]
        batch.deadLetters = [
            DeadLetter(seq: 0, messageID: "m", routingKey: "k", queue: "q", reason: "r", refusal: "", body: [1])
        ]
        #expect(throws: DatabaseError.self) { try store.commit(batch) }
        #expect(try store.allAlerts().isEmpty)
        try saboteur.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        try store.commit(batch)
        #expect(try store.allAlerts().map(\.alertID) == [alert(7).alertID])
    }

    @Test("alerts another opener of the file stored are known to the store: not stored twice, marked")
    func alertsOfAnotherOpener() throws {
        let folder = temporaryFolder("store-outbox-two")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let store = try WorkerStore(path: path)
        var first = CommitBatch()
        first.alerts = [alert(1)]
        try store.commit(first)
        let other = try WorkerStore(path: path)
        var second = CommitBatch()
        second.alerts = [alert(2)]
        try other.commit(second)

        var both = CommitBatch()
        both.alerts = [alert(1), alert(2), alert(3)]
        both.publishedAlertIDs = [alert(2).alertID]
        try store.commit(both)
        #expect(try store.allAlerts().map(\.alertID) == [alert(1), alert(2), alert(3)].map(\.alertID))
        #expect(try delivery(store)[alert(2).alertID]! == (true, false))
    }

    @Test("a state folder from before v9 keeps its outbox and its marks, which move beside it; no index is left")
    func outboxMigratedWithoutIdIndex() throws {
        let folder = temporaryFolder("store-outbox-v9")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        _ = try WorkerStore(path: path)
        // The outbox as v1 to v8 left it: a unique index on the id, rows delivered one way or not at all.
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            try db.execute(
                sql: """
                    DROP TABLE alert;
                    DROP TABLE alert_undelivered;
                    CREATE TABLE alert (
                        seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL UNIQUE, level TEXT NOT NULL,
                        routing_key TEXT NOT NULL, day TEXT NOT NULL, json TEXT NOT NULL,
                        published INTEGER NOT NULL DEFAULT 0, filed INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX alert_unpublished ON alert(published) WHERE published = 0;
                    CREATE INDEX alert_unfiled ON alert(filed) WHERE filed = 0;
                    INSERT INTO alert VALUES (5, '0000000000000001', 'warning', 'k', '2022-05-18', '{}', 1, 0);
                    INSERT INTO alert VALUES (9, '0000000000000002', 'critical', 'k', '2022-05-18', '{}', 0, 0);
                    INSERT INTO alert VALUES (12, '0000000000000004', 'overdue', 'k', '2022-05-18', '{}', 0, 1);
                    DELETE FROM grdb_migrations WHERE identifier LIKE 'v9%' OR identifier LIKE 'v10%';
                    """)
        }
        try old.close()
        let store = try WorkerStore(path: path)
        #expect(
            try store.allAlerts().map(\.alertID) == ["0000000000000001", "0000000000000002", "0000000000000004"])
        #expect(
            try store.unpublishedAlerts(limit: 10).map(\.alertID) == [
                "0000000000000002", "0000000000000004",
            ])
        #expect(try store.unfiledAlerts(limit: 10).map(\.alertID) == ["0000000000000001", "0000000000000002"])
        let reader = try DatabaseQueue(path: path)
        let (indexes, columns) = try reader.read { db in
            (
                try String.fetchAll(
                    db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alert'"),
                try db.columns(in: "alert").map(\.name)
            )
        }
        #expect(indexes == [])
        #expect(columns == ["seq", "alert_id", "level", "routing_key", "day", "json"])
        #expect(try waitingMarks(reader) == [[5, 1, 0], [9, 0, 0], [12, 0, 1]])
        try reader.close()
        var again = CommitBatch()
        again.alerts = [alert(1), alert(3)]
        again.filedAlertIDs = ["0000000000000001"]
        try store.commit(again)
        #expect(
            try store.allAlerts().map(\.alertID)
                == ["0000000000000001", "0000000000000002", "0000000000000004", alert(3).alertID])
        #expect(try delivery(store)["0000000000000001"]! == (true, true))
        #expect(try delivery(store)["0000000000000004"]! == (false, true))
    }

    @Test("an alert waits in alert_undelivered until delivered both ways, in any order; a prune keeps waiting alerts")
    func marksAddUpAndLeaveWithTheirAlerts() throws {
        let folder = temporaryFolder("store-marks")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let store = try WorkerStore(path: path)
        let reader = try DatabaseQueue(path: path)
        defer { try? reader.close() }
        var batch = CommitBatch()
        batch.alerts = [alert(1), alert(2), alert(3, day: "2022-05-19"), alert(4)]
        batch.filedAlertIDs = [alert(1).alertID]  // stored and filed in one commit
        try store.commit(batch)
        #expect(try waitingMarks(reader) == [[1, 0, 1], [2, 0, 0], [3, 0, 0], [4, 0, 0]])
        // Published after filed; a confirm seen twice; published and filed at once.
        try store.markPublished([alert(1).alertID, alert(2).alertID, alert(3).alertID])
        try store.markPublished([alert(1).alertID])
        #expect(try waitingMarks(reader) == [[2, 1, 0], [3, 1, 0], [4, 0, 0]])
        var filed = CommitBatch()
        filed.filedAlertIDs = [alert(2).alertID, alert(3).alertID]
        try store.commit(filed)
        #expect(try waitingMarks(reader) == [[4, 0, 0]])
        // Only the day before 2022-05-19 goes, and of it only what was delivered both ways.
        let pruned = try store.prune(eventsBefore: 0, tombstonesBefore: 0, alertsBeforeDay: "2022-05-19", limit: 100)
        #expect(pruned.alerts == 2)
        #expect(try store.allAlerts().map(\.alertID) == [alert(3), alert(4)].map(\.alertID))
        #expect(try store.unpublishedAlerts(limit: 10).map(\.alertID) == [alert(4).alertID])
        var both = CommitBatch()
        both.publishedAlertIDs = [alert(4).alertID]
        both.filedAlertIDs = [alert(4).alertID]
        try store.commit(both)
        #expect(try waitingMarks(reader) == [])
    }

    @Test("what waits for delivery is read by walking alert_undelivered, never every alert kept")
    func waitingReadWalksTheNarrowTable() throws {
        let folder = temporaryFolder("store-waiting-plan")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        let store = try WorkerStore(path: path)
        var batch = CommitBatch()
        batch.alerts = (1...50).map { alert($0) }
        try store.commit(batch)
        let delivered = (1...49).map { alert($0).alertID }
        try store.markPublished(delivered)
        try store.markFiled(delivered)
        #expect(try store.unpublishedAlerts(limit: 10).map(\.alertID) == [alert(50).alertID])
        #expect(try store.unfiledAlerts(limit: 10).map(\.alertID) == [alert(50).alertID])
        // A store never runs ANALYZE: without statistics, a plain join walked `alert` and probed the narrow table.
        let reader = try DatabaseQueue(path: path)
        defer { try? reader.close() }
        for selection in [SQLiteAlertOutbox.Selection.unpublished, .unfiled] {
            let plan = try reader.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + selection.sql, arguments: [0, 10]).map {
                    $0["detail"] as String
                }
            }
            #expect(plan.first?.hasPrefix("SEARCH u USING INTEGER PRIMARY KEY (rowid>?)") == true, "\(plan)")
            #expect(plan.dropFirst().allSatisfy { $0.hasPrefix("SEARCH a USING INTEGER PRIMARY KEY (rowid=?)") })
        }
    }

    @Test("a sources store from before its v2 keeps its outbox, its marks and the unique index on the alert id")
    func sourcesOutboxMigrated() throws {
        let folder = temporaryFolder("sources-outbox-v2")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/sources.sqlite"
        // The store as its v1 left it (the outbox's first table, with its mark columns and their indexes).
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1: units, stream offset, alert outbox');
                    CREATE TABLE unit_source (unit TEXT PRIMARY KEY, last_event_at INTEGER NOT NULL,
                        alerted INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE alert (
                        seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL UNIQUE, level TEXT NOT NULL,
                        routing_key TEXT NOT NULL, day TEXT NOT NULL, json TEXT NOT NULL,
                        published INTEGER NOT NULL DEFAULT 0, filed INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX alert_unpublished ON alert(published) WHERE published = 0;
                    CREATE INDEX alert_unfiled ON alert(filed) WHERE filed = 0;
                    CREATE TABLE sources_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    INSERT INTO alert VALUES (1, 'silence-760', 'source_silent', 'k', '2022-05-18', '{}', 1, 1);
                    INSERT INTO alert VALUES (2, 'silence-761', 'source_silent', 'k', '2022-05-18', '{}', 1, 0);
                    INSERT INTO alert VALUES (3, 'silence-762', 'source_silent', 'k', '2022-05-19', '{}', 0, 0);
                    INSERT INTO sources_state VALUES ('offset', 41);
                    """)
        }
        try old.close()
        let store = try SourcesStore(path: path)
        #expect(try store.offset() == 41)
        #expect(try store.allAlerts().map(\.alertID) == ["silence-760", "silence-761", "silence-762"])
        #expect(try store.unpublishedAlerts().map(\.alertID) == ["silence-762"])
        #expect(try store.unfiledAlerts().map(\.alertID) == ["silence-761", "silence-762"])
        #expect(try store.pruneAlerts(before: "2022-05-19") == 1)
        try store.markFiled(["silence-761"])
        #expect(try store.unfiledAlerts().map(\.alertID) == ["silence-762"])
        let reader = try DatabaseQueue(path: path)
        let indexes = try reader.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alert'")
        }
        try reader.close()
        #expect(indexes.count == 1 && indexes[0].hasPrefix("sqlite_autoindex_alert"))
    }
}
