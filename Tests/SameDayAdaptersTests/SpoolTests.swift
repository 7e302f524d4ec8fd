import Foundation
import SameDayAdapters
import SameDayCore
import Testing

@Suite("Spool (no broker)")
struct SpoolTests {
    static func event(_ i: Int) -> DossierEvent {
        DossierEvent(
            eventId: "spool-\(i)", dossier: "760-220518-\(i)", unit: "760", procedure: "2.000815.000.00.00.H29",
            type: .received, occurredAt: RFC3339.parse("2022-05-18T08:00:00+07:00")! + Int64(i), source: "test")
    }

    @Test("survives a reopen, cuts a torn last line, flushes in order, keeps a failed batch, empties when done")
    func lifecycle() throws {
        let dir = temporaryFolder("spool")
        do {
            let spool = try Spool(directory: dir)
            try spool.append((0..<5).map(Self.event))
            try spool.append((5..<8).map(Self.event))
        }
        // A crash in the middle of an append leaves half a line: it was never acknowledged, so it goes.
        let handle = FileHandle(forWritingAtPath: dir + "/spool.jsonl")!
        handle.seekToEndOfFile()
        handle.write(Data(#"{"schema":"sameday.dossier-event/1","eventId":"torn"#.utf8))
        try handle.close()
        let spool = try Spool(directory: dir)
        #expect(spool.status.pendingEvents == 8)
        struct Down: Error {}
        #expect(throws: Down.self) {
            try spool.flush(batchSize: 3) { _ in throw Down() }
        }
        #expect(spool.status.pendingEvents == 8, "a batch that was not confirmed stays")
        var seen: [String] = []
        let flushed = try spool.flush(batchSize: 3) { batch in seen += batch.map(\.eventId) }
        #expect(flushed == 8 && seen == (0..<8).map { "spool-\($0)" })
        #expect(spool.status.pendingEvents == 0 && spool.status.pendingBytes == 0)
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/spool.jsonl")[.size] as? Int
        #expect(size == 0)
    }

    @Test("the bound: a full spool refuses with a clear error and keeps what it has")
    func bound() throws {
        let spool = try Spool(directory: temporaryFolder("spool-bound"), capacityBytes: 1000)
        try spool.append([Self.event(1), Self.event(2), Self.event(3)])
        #expect {
            try spool.append([Self.event(4), Self.event(5)])
        } throws: { error in
            "\(error)".contains("is full") && "\(error)".contains("events are refused, not lost")
        }
        #expect(spool.status.pendingEvents == 3)
        #expect(spool.status.description.contains("3 events waiting for the broker"))
    }
}
