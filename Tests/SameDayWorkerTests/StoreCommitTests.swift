import Foundation
import SameDayStore
import Testing

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
        #expect(try store.unpublishedAlerts(limit: 10, offset: 0).map(\.alertID) == ["a2"])
        #expect(try store.unfiledAlerts(limit: 10).map(\.alertID) == ["a1"])
        // The same alert id again is kept as it was.
        var again = CommitBatch()
        again.alerts = [OutboxAlert(alertID: "a1", level: "critical", routingKey: "", day: "", json: "")]
        try store.commit(again)
        #expect(try store.allAlerts() == alerts)
    }
}
