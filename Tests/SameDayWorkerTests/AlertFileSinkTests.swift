import Dispatch
import Foundation
import SameDayFiles
import SameDayStore
import Testing

@testable import SameDayWorker

@Suite("Alert files")
struct AlertFileSinkTests {
    func alert(_ id: String) -> OutboxAlert {
        OutboxAlert(
            alertID: id, level: "warning", routingKey: "warning.district.760", day: "2022-05-18",
            json: "{\"alertId\":\"\(id)\",\"level\":\"warning\"}")
    }

    @Test("a half-written last line left by a killed process is cut, and its alert written whole again")
    func partialLine() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sink = AlertFileSink(folder: folder)
        let path = sink.path(day: "2022-05-18")
        try Data("{\"alertId\":\"a1\",\"level\":\"warning\"}\n{\"alertId\":\"a2\",\"lev".utf8).write(
            to: URL(fileURLWithPath: path))
        _ = try AlertFileSink(folder: folder).write([alert("a1"), alert("a2"), alert("a3")])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(
            lines == [
                "{\"alertId\":\"a1\",\"level\":\"warning\"}", "{\"alertId\":\"a2\",\"level\":\"warning\"}",
                "{\"alertId\":\"a3\",\"level\":\"warning\"}",
            ])
    }

    @Test("alerts already in the file are not written twice")
    func noDuplicates() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        _ = try AlertFileSink(folder: folder).write([alert("a1")])
        _ = try AlertFileSink(folder: folder).write([alert("a1"), alert("a2")])
        #expect(try alertIDs(inFolder: folder) == ["a1", "a2"])
    }

    @Test(
        "a worker paused between its lease check and its append: the new holder waits for that write, then skips its lines"
    )
    func pausedHolderAndStandby() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let checked = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
        // The old holder: its lease check passes, then it is "frozen" before the append.
        // Each sink is used by one thread at a time, as in a worker (its files thread).
        nonisolated(unsafe) let old = AlertFileSink(folder: folder) {
            checked.signal()
            resume.wait()
            return true
        }
        nonisolated(unsafe) let standby = AlertFileSink(folder: folder, lockWait: .seconds(30))
        _ = try standby.write([alert("a0")])  // the standby has read the file before: its index is warm
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { _ = try? old.write([alert("a1"), alert("a2")]) }
        checked.wait()
        let standbyDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async(group: group) {
            _ = try? standby.write([alert("a1"), alert("a2"), alert("a3")])
            standbyDone.signal()
        }
        // The standby cannot write while the old holder is inside its append.
        #expect(standbyDone.wait(timeout: .now() + 0.3) == .timedOut)
        resume.signal()
        group.wait()
        #expect(try alertIDs(inFolder: folder) == ["a0", "a1", "a2", "a3"])
    }

    @Test("a lock held past lockWait fails the write naming the file; nothing is appended")
    func lockHeldTooLong() throws {
        let folder = temporaryFolder("alertfiles")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let sink = AlertFileSink(folder: folder, lockWait: .milliseconds(100))
        _ = try sink.write([alert("a1")])
        let fd = open(sink.path(day: "2022-05-18"), O_RDONLY)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(throws: FileError.self) { try sink.write([alert("a2")]) }
        #expect(try alertIDs(inFolder: folder) == ["a1"])
    }
}
