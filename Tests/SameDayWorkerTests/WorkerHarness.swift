import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayTestKit
import SameDayWorker

/// A private copy of SameDay's topology (one shard) on the local broker, a state folder, and a worker
/// configuration pointing at both; `cleanUp()` removes everything.
struct WorkerHarness {
    let topology: SameDayTopology
    let folder: String
    var settings: WorkerConfiguration

    init(_ purpose: String) throws {
        topology = SameDayTopology(shards: 1, namePrefix: LocalBroker.uniqueName(purpose) + ".")
        folder = temporaryFolder(purpose)
        settings = WorkerConfiguration()
        settings.brokers = [LocalBroker.url.description.replacingOccurrences(of: "guest@", with: "guest:guest@")]
        settings.namePrefix = topology.namePrefix
        settings.stateDirectory = folder + "/state"
        settings.domainConfig = hcmcConfiguration
        settings.clock = .events
        settings.metricsListen = ""
        settings.batchDelayMilliseconds = 50
        // replay (the reference the tests compare with) does not watch for silence unless asked.
        settings.sourceSilence = false
        let connection = try Connection.open(LocalBroker.configuration(name: "harness \(purpose)"))
        defer { connection.close() }
        try topology.topology.declare(on: connection)
    }

    var environment: [String: String] {
        [
            "SAMEDAY_AMQP_URL": settings.brokers[0], "SAMEDAY_NAME_PREFIX": settings.namePrefix,
            "SAMEDAY_STATE_DIR": settings.stateDirectory, "SAMEDAY_DOMAIN_CONFIG": settings.domainConfig,
            "SAMEDAY_CLOCK": settings.clock.rawValue, "SAMEDAY_METRICS_LISTEN": "", "SAMEDAY_SOURCE_SILENCE": "0",
        ]
    }

    func cleanUp() {
        if let connection = try? Connection.open(LocalBroker.configuration(name: "harness cleanup")) {
            try? topology.topology.delete(on: connection)
            connection.close()
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Publishes canonical events (and any raw messages) to the events exchange, with confirms.
    func publish(_ events: [DossierEvent], configuration: Configuration, raw: [OutboundMessage] = []) throws {
        let publisher = try Publisher(.init(connection: LocalBroker.configuration(name: "harness publisher")))
        defer { publisher.close() }
        for event in events {
            try publisher.publish(EventMessage.make(event, configuration: configuration, names: topology.producerNames))
        }
        for message in raw { try publisher.publish(message) }
        try publisher.waitForConfirms(timeout: .seconds(60))
    }

    /// Runs the worker in this process until `done` says so (checked every 100 ms); throws `WaitTimedOut`, once the
    /// worker stopped, if `timeout` passes first.
    func runInProcess(
        configuration: Configuration, timeout: Duration = .seconds(120), fileID: String = #fileID, line: Int = #line,
        until done: @escaping @Sendable (WorkerStore) -> Bool
    ) async throws {
        let stop = StopFlag()
        let settings = settings
        let store = try WorkerStore(path: settings.databasePath)
        async let run: Void = BlockingThread.run(name: "test worker") {
            try WorkerService(configuration: settings, domain: configuration).run(until: stop)
        }
        let deadline = ContinuousClock.now + timeout
        var reached = done(store)
        while !reached && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            reached = done(store)
        }
        stop.request()
        try await run
        guard reached else {
            throw WaitTimedOut(what: "the worker to reach the condition given at \(fileID):\(line)", after: timeout)
        }
    }

    /// Every message on `queue`, acked.
    func drain(_ queue: String) throws -> [Delivery] {
        let consumer = try Consumer(.init(connection: LocalBroker.configuration(name: "harness drain"), queue: queue))
        defer { consumer.close() }
        var deliveries: [Delivery] = []
        while let delivery = try consumer.next(timeout: .seconds(1)) {
            deliveries.append(delivery)
            try consumer.ack(delivery.tag)
        }
        return deliveries
    }
}

/// Every regular file under `root`, by relative path. Throws when `root` is not a folder or a file cannot be read,
/// so two folders that were never written do not compare equal as two empty listings.
func filesUnder(_ root: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    var rootIsFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root, isDirectory: &rootIsFolder), rootIsFolder.boolValue,
        let enumerator = FileManager.default.enumerator(atPath: root)
    else { throw NotAFolder(path: root) }
    while let relative = enumerator.nextObject() as? String {
        var isFolder: ObjCBool = false
        let path = root + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
            !relative.split(separator: "/").last!.hasPrefix(".")
        {
            files[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }
    return files
}

struct NotAFolder: Error, CustomStringConvertible {
    var path: String
    var description: String { "\(path) is not a folder" }
}

/// The alert ids in a folder of `alerts-*.jsonl` files, in file order (duplicates kept, so tests can find them). A
/// folder that does not exist holds no alerts.
func alertIDs(inFolder folder: String) throws -> [String] {
    guard FileManager.default.fileExists(atPath: folder) else { return [] }
    return try filesUnder(folder).sorted { $0.key < $1.key }.flatMap { _, data in
        data.split(separator: 0x0A).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["alertId"] as? String
        }
    }
}

/// `sameday replay` over `events` up to `until`, its daily rollups written under `root`: the reference the worker's
/// files must equal byte for byte.
/// The alerts of an uninterrupted run over the events in the order the worker applied them (its event log), to the
/// clock `until`. The queue forecast (`at_risk`) follows the order of events within one instant, which replay takes by
/// `seq` and a worker as they arrive (docs/rules.md §5.6).
func alertsInAppliedOrder(_ store: WorkerStore, configuration: Configuration, until: Instant?) throws -> [Alert] {
    var applied: [DossierEvent] = []
    try store.forEachLoggedEvent { _, bytes, _ in applied.append(try DossierEvent.decode(bytes: bytes)) }
    return try Replay.run(
        events: applied, config: configuration, options: ReplayOptions(arrivalOrder: true, until: until)
    ).alerts
}

func replayReference(_ events: [DossierEvent], configuration: Configuration, until: Instant?, root: String) throws
    -> Replay
{
    let replay = try Replay.run(events: events, config: configuration, options: ReplayOptions(until: until))
    let times = events.map(\.occurredAt)
    var digests: [String: Int] = [:]
    _ = try RollupFiles.write(
        facts: replay.facts(),
        days: LocalTime.day(of: times.min()!)...LocalTime.day(of: max(replay.clock ?? times.max()!, times.max()!)),
        configuration: configuration, root: root, written: &digests)
    try RollupFiles.markSimulated(root: root, ifAnyOf: events)
    return replay
}
