import Foundation
import SameDayStore
import SameDayTestKit
import Synchronization
import Testing

@testable import SameDayWorker

/// An outbox in memory: the relay's logic, apart from SQLite and PostgreSQL (both pass the store suites).
final class InMemoryOutbox: AlertOutboxStore {
    struct Row {
        var alert: OutboxAlert
        var published = false
        var filed = false
    }
    private let state = Mutex((alerts: [Row](), deadLetters: [DeadLetter](), sentDeadLetters: Set<Int64>()))

    /// One commit: new alerts (an id already held is kept as it was) and dead letters, with the marks.
    func commit(alerts: [OutboxAlert] = [], deadLetters: [DeadLetter] = [], marks: AlertRelay.Marks = .init()) {
        state.withLock { s in
            for alert in alerts where !s.alerts.contains(where: { $0.alert.alertID == alert.alertID }) {
                s.alerts.append(Row(alert: alert))
            }
            for var letter in deadLetters {
                letter.seq = Int64(s.deadLetters.count + 1)
                s.deadLetters.append(letter)
            }
            for i in s.alerts.indices {
                if marks.published.contains(s.alerts[i].alert.alertID) { s.alerts[i].published = true }
                if marks.filed.contains(s.alerts[i].alert.alertID) { s.alerts[i].filed = true }
            }
            s.sentDeadLetters.formUnion(marks.deadLettersSent)
        }
    }

    /// Run before each read of unpublished alerts but the first: a commit landing between two pages of a resync.
    let betweenPages = Mutex<(@Sendable () -> Void)?>(nil)
    private let pagesRead = Mutex(0)

    /// Rows are numbered from 1 in the order stored.
    func unpublishedAlerts(limit: Int, after seq: Int64) throws -> [(seq: Int64, alert: OutboxAlert)] {
        if pagesRead.withLock({
            $0 += 1; return $0
        }) > 1, let hook = betweenPages.withLock({ $0 }) {
            hook()
        }
        return state.withLock { s in
            Array(
                s.alerts.enumerated().lazy
                    .filter { Int64($0.offset + 1) > seq && !$0.element.published }
                    .prefix(limit)
                    .map { (seq: Int64($0.offset + 1), alert: $0.element.alert) })
        }
    }
    func unfiledAlerts(limit: Int) throws -> [OutboxAlert] {
        state.withLock { Array($0.alerts.filter { !$0.filed }.map(\.alert).prefix(limit)) }
    }
    func pendingDeadLetters(limit: Int) throws -> [DeadLetter] {
        state.withLock { s in Array(s.deadLetters.filter { !s.sentDeadLetters.contains($0.seq) }.prefix(limit)) }
    }
    func markPublished(_ ids: [String]) throws { commit(marks: .init(published: ids)) }
    func markFiled(_ ids: [String]) throws { commit(marks: .init(filed: ids)) }

    var unpublishedCount: Int { state.withLock { $0.alerts.filter { !$0.published }.count } }
    var unfiledCount: Int { state.withLock { $0.alerts.filter { !$0.filed }.count } }
}

/// A broker that confirms when told to, and can drop what it has queued (a broker blocked past the queue's bound).
final class RecordingPublisher: AlertPublishing {
    var sent: [String] = []
    var sentDeadLetters: [Int64] = []
    var queued: [String] = []
    var queuedDeadLetters: [Int64] = []
    var confirmed: (alerts: [String], deadLetters: [Int64]) = ([], [])
    var needsResync = false

    func send(_ alerts: [OutboxAlert]) {
        sent += alerts.map(\.alertID)
        queued += alerts.map(\.alertID)
    }
    func send(deadLetters: [DeadLetter]) {
        sentDeadLetters += deadLetters.map(\.seq)
        queuedDeadLetters += deadLetters.map(\.seq)
    }
    /// The broker confirms everything queued.
    func confirmAll() {
        confirmed.alerts += queued
        confirmed.deadLetters += queuedDeadLetters
        queued.removeAll()
        queuedDeadLetters.removeAll()
    }
    /// The queue is dropped unsent; the outbox must be read again.
    func dropQueue() {
        queued.removeAll()
        queuedDeadLetters.removeAll()
        needsResync = true
    }
    func takeConfirmed() -> (alerts: [String], deadLetters: [Int64]) {
        defer { confirmed = ([], []) }
        return confirmed
    }
    var hasConfirmed: Bool { !confirmed.alerts.isEmpty || !confirmed.deadLetters.isEmpty }
    func resynced() { needsResync = false }
    func finish(timeout: Duration) { confirmAll() }
}

/// Files in memory, recording what was filed; `failNext` makes the next write fail as a full disk does.
final class RecordingFiler: AlertFiling {
    var filed: [String] = []
    private var untaken: [String] = []
    var failNext = false

    func file(_ alerts: [OutboxAlert]) throws {
        if failNext {
            failNext = false
            throw CocoaError(.fileWriteOutOfSpace)
        }
        filed += alerts.map(\.alertID)
        untaken += alerts.map(\.alertID)
    }
    var hasFiled: Bool { !untaken.isEmpty }
    func takeFiled() -> [String] {
        defer { untaken.removeAll() }
        return untaken
    }
}

@Suite("Alert relay: outbox → files → broker, marked by the next commit")
struct AlertRelayTests {
    func alert(_ id: String, day: String = "2022-05-18") -> OutboxAlert {
        OutboxAlert(
            alertID: id, level: "warning", routingKey: "warning.district.760", day: day,
            json: "{\"alertId\":\"\(id)\",\"level\":\"warning\"}")
    }

    func letter(_ id: String) -> DeadLetter {
        DeadLetter(messageID: id, routingKey: "district.760", queue: "sameday.work.0", reason: "bad", body: [0x7B])
    }

    @Test(
        "at start, what a previous run left unfiled goes to the files and is marked; the unconfirmed goes to the broker"
    )
    func backlogAtStart() throws {
        let folder = temporaryFolder("relay")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = InMemoryOutbox()
        store.commit(alerts: [alert("a1"), alert("a2"), alert("a3", day: "2022-05-19")])
        store.commit(marks: .init(filed: ["a1"]))
        try AlertRelay.fileBacklog(store: store, files: AlertFileSink(folder: folder))
        #expect(store.unfiledCount == 0)
        #expect(try alertIDs(inFolder: folder) == ["a2", "a3"])

        let publisher = RecordingPublisher()
        let relay = AlertRelay(
            store: store, filer: RecordingFiler(), publisher: publisher, metrics: WorkerMetrics())
        try relay.deliverOutbox()
        #expect(publisher.sent == ["a1", "a2", "a3"])
    }

    @Test("a resync pages through the unconfirmed by row: confirms of earlier sends marked between two pages skip none")
    func resyncPagesByRow() throws {
        let store = InMemoryOutbox()
        let ids = (1...2500).map { "a\($0)" }
        store.commit(alerts: ids.map { alert($0) })
        // A commit in flight at the resync lands after the first page: it marks 300 alerts of that page published.
        store.betweenPages.withLock { hook in
            hook = { [store] in
                store.betweenPages.withLock { $0 = nil }
                store.commit(marks: .init(published: Array(ids.prefix(300))))
            }
        }
        let publisher = RecordingPublisher()
        let relay = AlertRelay(store: store, filer: RecordingFiler(), publisher: publisher, metrics: WorkerMetrics())
        try relay.deliverOutbox()
        // Paged by offset, the second page began 300 rows late: a1001…a1300 waited for the next resync or start.
        #expect(publisher.sent == ids)
    }

    @Test("a committed alert reaches the files before the broker, and each mark is handed to one commit only")
    func committedThenMarked() throws {
        let store = InMemoryOutbox()
        let filer = RecordingFiler()
        let publisher = RecordingPublisher()
        let metrics = WorkerMetrics()
        let relay = AlertRelay(store: store, filer: filer, publisher: publisher, metrics: metrics)
        store.commit(alerts: [alert("a1"), alert("a2")])
        filer.failNext = true
        // A file that cannot be written stops the relay before the broker sees the alert: the outbox keeps it.
        #expect(throws: CocoaError.self) { try relay.committed([alert("a1"), alert("a2")], deadLettersStaged: false) }
        #expect(publisher.sent.isEmpty)
        try relay.committed([alert("a1"), alert("a2")], deadLettersStaged: false)
        #expect(filer.filed == ["a1", "a2"])
        #expect(publisher.sent == ["a1", "a2"])
        #expect(metrics.value(.alertsTotal, "warning") == 2)

        #expect(relay.hasMarks)  // filed, not yet confirmed
        let first = relay.takeMarks()
        #expect(first == .init(published: [], filed: ["a1", "a2"], deadLettersSent: []))
        #expect(!relay.hasMarks)
        publisher.confirmAll()
        #expect(relay.hasMarks)
        let second = relay.takeMarks()
        #expect(second == .init(published: ["a1", "a2"], filed: [], deadLettersSent: []))
        #expect(relay.takeMarks() == .init())
    }

    @Test("without a broker, an alert handed to the files counts as published in the next commit")
    func withoutPublisher() throws {
        let store = InMemoryOutbox()
        store.commit(alerts: [alert("old")])
        let relay = AlertRelay(store: store, filer: RecordingFiler(), publisher: nil, metrics: WorkerMetrics())
        try relay.deliverOutbox()
        #expect(store.unpublishedCount == 0)
        store.commit(alerts: [alert("a1")])
        try relay.committed([alert("a1")], deadLettersStaged: false)
        #expect(relay.takeMarks() == .init(published: ["a1"], filed: ["a1"], deadLettersSent: []))
    }

    @Test("dead letters go out once each, and all of them again after the publisher dropped its queue")
    func deadLettersAndResync() throws {
        let store = InMemoryOutbox()
        let publisher = RecordingPublisher()
        let relay = AlertRelay(store: store, filer: RecordingFiler(), publisher: publisher, metrics: WorkerMetrics())
        store.commit(deadLetters: [letter("m1")])
        try relay.committed([], deadLettersStaged: true)
        store.commit(deadLetters: [letter("m2")])
        try relay.committed([], deadLettersStaged: true)
        #expect(publisher.sentDeadLetters == [1, 2])

        store.commit(alerts: [alert("a1"), alert("a2")])
        try relay.committed([alert("a1"), alert("a2")], deadLettersStaged: false)
        publisher.dropQueue()
        store.commit(alerts: [alert("a3")])
        try relay.committed([alert("a3")], deadLettersStaged: false)
        // The resync read the whole unconfirmed outbox again, dead letters included.
        #expect(publisher.sent == ["a1", "a2", "a3", "a1", "a2", "a3"])
        #expect(publisher.sentDeadLetters == [1, 2, 1, 2])
        #expect(!publisher.needsResync)
    }

    /// A fresh process: what the outbox holds from before goes out first.
    func start(store: InMemoryOutbox, folder: String) throws -> (AlertRelay, RecordingPublisher) {
        let files = AlertFileSink(folder: folder)
        try AlertRelay.fileBacklog(store: store, files: files)
        let publisher = RecordingPublisher()
        let relay = AlertRelay(
            store: store, filer: ImmediateAlertFiler(sink: files), publisher: publisher, metrics: WorkerMetrics())
        try relay.deliverOutbox()
        return (relay, publisher)
    }

    /// The protocol as a service runs it, on a manual clock: deliveries batch until the commit is due; a commit
    /// stores the alerts and the marks; the relay sends; a crash loses whatever was not committed. After restarts at
    /// every point, each alert is in the files once and reached the broker (whose consumers dedupe by id).
    @Test("a service killed at any point of the loop files every alert once and publishes every one")
    func crashAnywhere() throws {
        let folder = temporaryFolder("relay-crash")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = ManualClock()
        let store = InMemoryOutbox()
        var delivered = Set<String>()
        var next = 0
        for crashAfterStep in 0..<12 {
            let (relay, publisher) = try start(store: store, folder: folder)
            var machine = BatchingStateMachine<ManualClock.Instant>(
                settings: .init(batchSize: 3, batchDelay: .milliseconds(50)))
            var inHand: [OutboxAlert] = []
            for step in 0...crashAfterStep {
                // One delivery raises one alert; the clock moves on.
                inHand.append(alert("a\(next)", day: next % 2 == 0 ? "2022-05-18" : "2022-05-19"))
                next += 1
                machine.delivered(at: clock.now)
                clock.advance(by: .milliseconds(20))
                if machine.next(now: clock.now, otherChanges: relay.hasMarks) == .commit {
                    store.commit(alerts: inHand, marks: relay.takeMarks())
                    machine.committed()
                    let committed = inHand
                    inHand.removeAll()
                    if step == crashAfterStep && crashAfterStep % 3 == 0 { break }  // killed before sending
                    try relay.committed(committed, deadLettersStaged: false)
                }
                if step % 2 == 0 { publisher.confirmAll() }
            }
            // Killed: deliveries in hand were never acked, so the broker delivers them again to the next process.
            next -= inHand.count
            delivered.formUnion(publisher.sent)
        }
        // A last clean run empties the outbox.
        let (relay, publisher) = try start(store: store, folder: folder)
        publisher.confirmAll()
        store.commit(marks: relay.takeMarks())
        delivered.formUnion(publisher.sent)

        let expected = (0..<next).map { "a\($0)" }
        let inFiles = try alertIDs(inFolder: folder)
        #expect(inFiles.count == Set(inFiles).count, "an alert was filed twice")
        #expect(Set(inFiles) == Set(expected))
        #expect(delivered == Set(expected))
        #expect(store.unpublishedCount == 0 && store.unfiledCount == 0)
    }
}
