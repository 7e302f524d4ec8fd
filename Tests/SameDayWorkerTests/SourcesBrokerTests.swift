import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayTestKit
import SameDayWorker
import Synchronization
import Testing

/// A private copy of the topology with three shards, a `sameday sources` folder, and a supervisor's queue bound to
/// the alerts exchange; `cleanUp()` removes everything.
struct SourcesHarness {
    let topology: SameDayTopology
    let folder: String
    let watchQueue: String
    var settings: WorkerConfiguration

    init(_ purpose: String) throws {
        topology = SameDayTopology(shards: 3, namePrefix: LocalBroker.uniqueName(purpose) + ".")
        folder = temporaryFolder(purpose)
        watchQueue = topology.namePrefix + "watch"
        settings = WorkerConfiguration()
        settings.brokers = [LocalBroker.url.description.replacingOccurrences(of: "guest@", with: "guest:guest@")]
        settings.namePrefix = topology.namePrefix
        settings.shards = 3
        settings.stateDirectory = folder + "/state"
        settings.sourcesDirectory = folder + "/sources"
        settings.domainConfig = hcmcConfiguration
        settings.clock = .events
        settings.sourcesMetricsListen = ""
        settings.batchDelayMilliseconds = 50
        let connection = try Connection.open(LocalBroker.configuration(name: "sources harness \(purpose)"))
        defer { connection.close() }
        try topology.topology.declare(on: connection)
        try Topology(
            queues: [.init(watchQueue, kind: .classic, autoDelete: false)],
            bindings: [.init(from: topology.alertsExchange, to: .queue(watchQueue), routingKey: "#")]
        ).declare(on: connection)
    }

    func cleanUp() {
        LocalBroker.deleteQueues([watchQueue])
        if let connection = try? Connection.open(LocalBroker.configuration(name: "sources harness cleanup")) {
            try? topology.topology.delete(on: connection)
            connection.close()
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Publishes events (and raw messages) to the events exchange with confirms, in this order.
    func publish(_ events: [DossierEvent], configuration: Configuration, raw: [OutboundMessage] = []) throws {
        let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "sources harness publisher")))
        defer { publisher.close() }
        for event in events {
            try publisher.publish(EventMessage.make(event, configuration: configuration, names: topology.producerNames))
        }
        for message in raw { try publisher.publish(message) }
        try publisher.waitForConfirms(timeout: .seconds(30))
    }

    /// Runs `sameday sources` in this process until `done` holds (checked every 50 ms); throws `WaitTimedOut`, once
    /// the service stopped, if `timeout` passes first.
    func run(
        configuration: Configuration, metrics: WorkerMetrics, clock: (any WorkerClock)? = nil,
        timeout: Duration = .seconds(20), fileID: String = #fileID, line: Int = #line,
        until done: @escaping @Sendable (SourcesStore) -> Bool
    ) async throws {
        let stop = StopFlag()
        let settings = settings
        async let run: Void = BlockingThread.run(name: "test sources") {
            try SourcesService(configuration: settings, domain: configuration, metrics: metrics, clock: clock)
                .run(until: stop)
        }
        let deadline = ContinuousClock.now + timeout
        var store: SourcesStore?
        var reached = false
        while ContinuousClock.now < deadline {
            // The store exists once the service has started.
            if store == nil, FileManager.default.fileExists(atPath: settings.sourcesDatabasePath) {
                store = try? SourcesStore(path: settings.sourcesDatabasePath)
            }
            if let store, done(store) {
                reached = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop.request()
        try await run
        guard reached else {
            throw WaitTimedOut(
                what: "`sameday sources` to reach the condition given at \(fileID):\(line)"
                    + (store == nil ? " (its store never appeared)" : ""), after: timeout)
        }
    }

    /// Every message on the supervisor's queue, acked.
    func drainWatchQueue() throws -> [Delivery] { try drain(watchQueue) }

    /// Every message on `queue`, acked.
    func drain(_ queue: String) throws -> [Delivery] {
        let consumer = try Consumer(
            .init(connection: LocalBroker.configuration(name: "sources harness drain"), queue: queue))
        defer { consumer.close() }
        var deliveries: [Delivery] = []
        while let delivery = try consumer.next(timeout: .milliseconds(500)) {
            deliveries.append(delivery)
            try consumer.ack(delivery.tag)
        }
        return deliveries
    }
}

@Suite("sameday sources against the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct SourcesBrokerTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test(
        "one unit of two goes quiet: exactly one source_silent, in the outbox, the file and on the alerts exchange; a restart resumes after the stored offset and raises nothing again"
    )
    func quietUnitAcrossShards() async throws {
        let harness = try SourcesHarness("sources")
        defer { harness.cleanUp() }
        // Wednesday 2022-05-18. Quận 12 (761) sends at 08:00 and stops; Quận 1 (760) goes on until 10:30, which moves
        // the events clock past 761's silence (120 working minutes: 10:00). Dossiers differ, so the events spread
        // over the three shard queues; the stream holds them all.
        let quiet = receivedEvent("761-220518-0001", at: "2022-05-18T08:00:00+07:00", unit: "761")
        let busy = (0..<6).map { i in
            receivedEvent(
                "760-220518-\(3000 + i)",
                at: "2022-05-18T\(["08:00", "08:30", "09:00", "09:30", "10:00", "10:30"][i]):00+07:00")
        }
        // Bounded like the worker: an undecodable body and an event whose key names another unit are counted and
        // passed over (a stream cannot dead-letter), and the service goes on.
        let liar = receivedEvent("761-220518-0002", at: "2022-05-18T10:20:00+07:00", unit: "761")
        // Quận 12's adapter sends Sở Y tế's dossier under its own key and header: not Quận 12's, so it must not keep
        // 761 looking alive either.
        let foreign = receivedEvent("000.00.18.H29-220516-0101", at: "2022-05-18T10:25:00+07:00", unit: "761")
        let raw = [
            EventMessage.make(foreign, configuration: configuration, names: harness.topology.producerNames),
            OutboundMessage(
                exchange: harness.topology.eventsExchange, routingKey: "district.760.received",
                body: Array("{not json".utf8), messageID: "poison", headers: [(SameDayTopology.shardHeader, "x")]),
            OutboundMessage(
                exchange: harness.topology.eventsExchange, routingKey: "district.760.received",
                body: Array(liar.encoded().utf8), messageID: liar.eventId,
                headers: [(SameDayTopology.shardHeader, liar.dossier)]),
        ]
        try harness.publish([quiet] + Array(busy[0..<5]), configuration: configuration, raw: raw)
        try harness.publish([busy[5]], configuration: configuration)
        let published = 1 + 5 + 3 + 1

        // No worker runs here: the shard queues hold what the workers would have had, each a part.
        let shardDepths = try (0..<3).map { try harness.drain(harness.topology.workQueue($0)).count }
        #expect(shardDepths.reduce(0, +) == published, "every event also reached a shard queue: \(shardDepths)")
        #expect(shardDepths.filter { $0 > 0 }.count >= 2, "the events went to several shards: \(shardDepths)")

        let first = WorkerMetrics()
        try await harness.run(configuration: configuration, metrics: first) { store in
            (try? store.offset()) == Int64(published - 1) && (try? store.allAlerts().count) == 1
                && (try? store.unpublishedAlerts().isEmpty) == true && (try? store.unfiledAlerts().isEmpty) == true
        }
        var store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        let outbox = try store.allAlerts()
        let expectedID = Alert.id(
            subject: "761@" + RFC3339.format(quiet.occurredAt), episode: 0, level: .sourceSilent)
        #expect(outbox.map(\.alertID) == [expectedID], "the id a worker (and replay --source-silence) would give it")
        #expect(outbox.map(\.routingKey) == ["source_silent.district.761"])
        #expect(outbox.first?.json.contains("\"thresholdAt\":\"2022-05-18T10:00:00+07:00\"") == true)
        #expect(try store.offset() == Int64(published - 1))
        let units = Dictionary(uniqueKeysWithValues: try store.units().map { ($0.code, $0) })
        #expect(units["761"]?.alerted == true && units["760"]?.alerted == false)
        #expect(units["760"]?.lastEventAt == busy[5].occurredAt)
        #expect(
            units["761"]?.lastEventAt == quiet.occurredAt,
            "neither the event under 760's key nor Sở Y tế's dossier under 761's counted for 761")
        #expect(first.value(.sourcesEventsTotal) == 7)
        #expect(first.value(.sourcesInvalidEventsTotal) == 3)
        #expect(first.value(.sourcesRefusalsTotal, "foreign_dossier") == 1)
        #expect(first.value(.sourcesRefusalsTotal, "routing_key_mismatch") == 1)
        #expect(try alertIDs(inFolder: harness.settings.sourcesAlertsDirectory) == [expectedID])
        #expect(try harness.drainWatchQueue().compactMap(\.messageID) == [expectedID])

        // Restart: one more event from 760; only it is consumed (stored offset + 1), nothing is raised again.
        try harness.publish(
            [receivedEvent("760-220518-3100", at: "2022-05-18T10:45:00+07:00")], configuration: configuration)
        let second = WorkerMetrics()
        try await harness.run(configuration: configuration, metrics: second) { store in
            (try? store.offset()) == Int64(published)
        }
        store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        #expect(second.value(.sourcesEventsTotal) == 1)
        #expect(second.value(.sourcesSkippedDeliveriesTotal) == 0)
        #expect(second.value(.sourcesInvalidEventsTotal) == 0)
        #expect(try store.allAlerts().map(\.alertID) == [expectedID])
        #expect(try store.units().first { $0.code == "760" }?.lastEventAt == RFC3339.parse("2022-05-18T10:45:00+07:00"))
        #expect(try alertIDs(inFolder: harness.settings.sourcesAlertsDirectory) == [expectedID])
        #expect(try harness.drainWatchQueue().isEmpty)
    }

    @Test(
        "on the wall clock a silence fires with no event arriving; one that came due while the service was down fires once at its start, late-fired"
    )
    func wallClockAndDowntime() async throws {
        var harness = try SourcesHarness("sources-wall")
        defer { harness.cleanUp() }
        harness.settings.clock = .wall
        let clock = StepClock(RFC3339.parse("2022-05-18T09:30:00+07:00")!)
        try harness.publish(
            [
                receivedEvent("760-220518-4001", at: "2022-05-18T08:00:00+07:00"),
                receivedEvent("761-220518-4001", at: "2022-05-18T08:00:00+07:00", unit: "761"),
                receivedEvent("761-220518-4002", at: "2022-05-18T09:30:00+07:00", unit: "761"),
            ], configuration: configuration)
        let first = WorkerMetrics()
        try await harness.run(configuration: configuration, metrics: first, clock: clock) { store in
            if (try? store.offset()) == 2 { clock.set("2022-05-18T10:00:00+07:00") }  // 760: 120 minutes
            return (try? store.allAlerts().count) == 1 && (try? store.unpublishedAlerts().isEmpty) == true
        }
        var store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        let onTime = try store.allAlerts()
        #expect(onTime.map(\.routingKey) == ["source_silent.district.760"])
        #expect(onTime.first?.json.contains("\"firedAt\":\"2022-05-18T10:00:00+07:00\"") == true)
        #expect(onTime.first?.json.contains("\"lateFired\":false") == true)

        // Down from 10:00 to 13:00: 761 went silent at 11:30 meanwhile.
        clock.set("2022-05-18T13:00:00+07:00")
        let second = WorkerMetrics()
        try await harness.run(configuration: configuration, metrics: second, clock: clock) { store in
            (try? store.allAlerts().count) == 2 && (try? store.unpublishedAlerts().isEmpty) == true
                && (try? store.unfiledAlerts().isEmpty) == true
        }
        store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        let all = try store.allAlerts()
        #expect(all.map(\.routingKey) == ["source_silent.district.760", "source_silent.district.761"])
        let late = all.last?.json ?? ""
        #expect(late.contains("\"thresholdAt\":\"2022-05-18T11:30:00+07:00\"") && late.contains("\"lateFired\":true"))
        #expect(late.contains("\"firedAt\":\"2022-05-18T13:00:00+07:00\""))
        #expect(second.value(.sourcesEventsTotal) == 0, "nothing consumed twice")
        #expect(try harness.drainWatchQueue().compactMap(\.messageID) == all.map(\.alertID))
        #expect(try alertIDs(inFolder: harness.settings.sourcesAlertsDirectory) == all.map(\.alertID))
    }

    @Test(
        "on the wall clock a restart reads the stream's backlog before judging silence: a unit whose newer events wait there is not flagged"
    )
    func wallClockBacklogFirst() async throws {
        var harness = try SourcesHarness("sources-backlog")
        defer { harness.cleanUp() }
        harness.settings.clock = .wall
        let clock = StepClock(RFC3339.parse("2022-05-18T08:00:00+07:00")!)
        try harness.publish(
            [receivedEvent("760-220518-5001", at: "2022-05-18T08:00:00+07:00")], configuration: configuration)
        try await harness.run(configuration: configuration, metrics: WorkerMetrics(), clock: clock) { store in
            (try? store.offset()) == 0
        }
        // Down until 10:30. Stored, 760 was last heard at 08:00 (silent at 10:00); the stream has its 09:50 event.
        try harness.publish(
            [receivedEvent("760-220518-5002", at: "2022-05-18T09:50:00+07:00")], configuration: configuration)
        clock.set("2022-05-18T10:30:00+07:00")
        let caughtUpAt = Mutex<ContinuousClock.Instant?>(nil)
        try await harness.run(configuration: configuration, metrics: WorkerMetrics(), clock: clock) { store in
            guard (try? store.offset()) == 1 else { return false }
            // Then a few idle waits, in which a silence due by the wall clock would fire.
            let since = caughtUpAt.withLock {
                $0 = $0 ?? .now; return $0!
            }
            return ContinuousClock.now - since > .seconds(2)
        }
        let store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        #expect(try store.allAlerts().isEmpty, "760 sent at 09:50: silent only at 11:50")
        #expect(try store.units().first?.lastEventAt == RFC3339.parse("2022-05-18T09:50:00+07:00"))
        #expect(try harness.drainWatchQueue().isEmpty)
    }

    @Test("a stream deleted and declared again is read from its first event, not skipped up to the old offset")
    func recreatedStream() async throws {
        let harness = try SourcesHarness("sources-recreated")
        defer { harness.cleanUp() }
        try harness.publish(
            (0..<3).map { receivedEvent("760-220518-600\($0)", at: "2022-05-18T08:0\($0):00+07:00") },
            configuration: configuration)
        try await harness.run(configuration: configuration, metrics: WorkerMetrics()) { store in
            (try? store.offset()) == 2
        }
        LocalBroker.deleteQueues([harness.topology.eventsStream])
        let connection = try Connection.open(LocalBroker.configuration(name: "sources recreate"))
        try harness.topology.topology.declare(on: connection)
        connection.close()
        try harness.publish(
            [receivedEvent("761-220518-6000", at: "2022-05-18T09:00:00+07:00", unit: "761")],
            configuration: configuration)
        let metrics = WorkerMetrics()
        try await harness.run(configuration: configuration, metrics: metrics) { store in
            (try? store.units().count) == 2
        }
        let store = try SourcesStore(path: harness.settings.sourcesDatabasePath)
        #expect(try store.offset() == 0)
        #expect(metrics.value(.sourcesEventsTotal) == 1)
    }
}
