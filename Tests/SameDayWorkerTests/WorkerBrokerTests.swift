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

@Suite("Worker against the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct WorkerBrokerTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test("poison messages are dead-lettered with reasons while the valid events around them are processed")
    func poisonMessages() async throws {
        let harness = try WorkerHarness("poison")
        defer { harness.cleanUp() }
        let valid = (1...6).map { receivedEvent("760-220518-\(1000 + $0)", at: "2022-05-18T09:0\($0):00+07:00") }
        func raw(_ body: [UInt8], id: String) -> OutboundMessage {
            OutboundMessage(
                exchange: harness.topology.eventsExchange, routingKey: "district.760.received", body: body,
                messageID: id,
                headers: [(SameDayTopology.shardHeader, id)])
        }
        let wrongSchema = valid[0].encoded().replacingOccurrences(of: "dossier-event/1", with: "dossier-event/9")
        // District 1's adapter sends Sở Y tế's dossier with a key and header that match the body.
        var foreign = receivedEvent("000.00.18.H29-220516-0101", at: "2022-05-18T09:00:00+07:00", unit: "760")
        foreign.eventId = "poison-foreign"
        try harness.publish(
            Array(valid[0..<3]), configuration: configuration,
            raw: [
                raw(Array("{not json".utf8), id: "poison-json"),
                raw(Array(wrongSchema.utf8), id: "poison-schema"),
                // Over the worker's 64 KiB, under the broker's max_message_size (128 KiB, deploy/local-broker.sh).
                raw([UInt8](repeating: UInt8(ascii: "x"), count: 100 * 1024), id: "poison-huge"),
                EventMessage.make(foreign, configuration: configuration, names: harness.topology.producerNames),
            ])
        try harness.publish(Array(valid[3...]), configuration: configuration)

        try await harness.runInProcess(configuration: configuration) { store in (try? store.eventCount()) == 6 }

        let store = try WorkerStore(path: harness.settings.databasePath)
        #expect(try store.eventCount() == 6)

        // What an operator sees, and a replay that finds them still invalid (they stay). The URL has no password:
        // the credentials file gives user and password (a wrong one is refused by the broker, so it is the one used).
        let credentials = temporaryFolder("operator") + "/operator.credentials"
        let operatorURL = LocalBroker.url.description
        func writeCredentials(_ line: String) throws {
            try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: credentials))
            chmod(credentials, 0o600)
        }
        try writeCredentials("\(LocalBroker.url.user):not-the-password")
        let refused = try runSameday(
            [
                "dead-letters", "list", "--name-prefix", harness.topology.namePrefix, "--url", operatorURL,
                "--credentials-file", credentials,
            ], capturingErrors: true)
        #expect(refused.status == 1 && refused.output.contains("logging in to"), "\(refused.output)")
        try writeCredentials("\(LocalBroker.url.user):\(LocalBroker.url.password)")
        let listing = try runSameday([
            "dead-letters", "list", "--name-prefix", harness.topology.namePrefix, "--url", operatorURL,
            "--credentials-file", credentials,
        ])
        #expect(listing.output.split(separator: "\n").count == 5, "a header and four dead letters")
        #expect(listing.output.contains("poison-schema") && listing.output.contains("schema"))
        #expect(listing.output.contains("poison-foreign\tforeign_dossier\t"))
        let replayed = try runSameday([
            "dead-letters", "replay", "--name-prefix", harness.topology.namePrefix, "--config", hcmcConfiguration,
        ])
        #expect(replayed.output.contains("re-published 0 events; 4 kept"))
        #expect(replayed.output.contains("poison-foreign: refused as foreign_dossier"))

        let dead = try harness.drain(harness.topology.deadLetterQueue)
        #expect(Set(dead.compactMap(\.messageID)) == ["poison-json", "poison-schema", "poison-huge", "poison-foreign"])
        let reasons = Dictionary(
            uniqueKeysWithValues: dead.map { ($0.messageID ?? "", $0.headers["x-sameday-reason"]?.stringValue ?? "") })
        let codes = Dictionary(
            uniqueKeysWithValues: dead.map { ($0.messageID ?? "", $0.headers["x-sameday-refusal"]?.stringValue ?? "") })
        #expect(reasons["poison-schema"]?.contains("schema") == true)
        #expect(reasons["poison-json"]?.hasPrefix("invalid event") == true)
        #expect(codes["poison-json"] == "invalid_event")
        #expect(codes["poison-huge"] == "too_large")
        #expect(reasons["poison-huge"]?.contains("larger than the 65536 bytes") == true)
        #expect(codes["poison-foreign"] == "foreign_dossier")
        #expect(reasons["poison-foreign"]?.contains("belongs to unit \"000.00.18.H29\"") == true)
        #expect(dead.first { $0.messageID == "poison-huge" }?.body.count == 100 * 1024)
        // Larger than max_message_size: the broker refuses it to its publisher, nothing reaches a queue.
        #expect(throws: (any Error).self) {
            try harness.publish(
                [], configuration: configuration,
                raw: [raw([UInt8](repeating: UInt8(ascii: "x"), count: 200 * 1024), id: "poison-giant")])
        }
        #expect(try harness.drain(harness.topology.workQueue(0)).isEmpty, "everything was acked")
    }

    @Test("alerts go to the alerts exchange and to the day's file, each once")
    func alertOutputs() async throws {
        var harness = try WorkerHarness("alerts")
        defer { harness.cleanUp() }
        harness.settings.clock = .events
        // A supervisor's queue bound before the alerts fire.
        let watchQueue = harness.topology.namePrefix + "watch"
        let admin = try Connection.open(LocalBroker.configuration(name: "alerts watch"))
        try Topology(
            queues: [.init(watchQueue, kind: .classic, autoDelete: false)],
            bindings: [.init(from: harness.topology.alertsExchange, to: .queue(watchQueue), routingKey: "#")]
        ).declare(on: admin)
        defer { LocalBroker.deleteQueues([watchQueue]); admin.close() }
        let watcher = try startSameday([
            "alerts", "watch", "--name-prefix", harness.topology.namePrefix, "--unit", "760", "--level", "critical",
            "--count", "1", "--config", hcmcConfiguration,
        ])
        try await Task.sleep(for: .seconds(2))  // the watcher binds its queue
        // Received at 14:00; a later event of another dossier at 17:30 moves the events clock past 15:30, 16:30, 17:00.
        try harness.publish(
            [
                receivedEvent("760-220518-2001", at: "2022-05-18T14:00:00+07:00"),
                receivedEvent("760-220518-2002", at: "2022-05-18T17:30:00+07:00"),
            ], configuration: configuration)
        try await harness.runInProcess(configuration: configuration) { store in
            (try? store.allAlerts().filter { $0.json.contains("760-220518-2001") }.count) == 3
                && (try? store.unpublishedAlerts().isEmpty) == true && (try? store.unfiledAlerts().isEmpty) == true
        }
        let store = try WorkerStore(path: harness.settings.databasePath)
        let outbox = try store.allAlerts().filter { $0.json.contains("760-220518-2001") }
        #expect(outbox.map(\.level) == ["warning", "critical", "overdue"])
        #expect(outbox.map(\.routingKey) == ["warning.district.760", "critical.district.760", "overdue.district.760"])
        let delivered = try harness.drain(watchQueue).compactMap(\.messageID)
        #expect(Set(outbox.map(\.alertID)).isSubset(of: Set(delivered)))
        watcher.process.waitUntilExit()
        let watched = String(decoding: watcher.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(watched.contains("CRITICAL") && watched.contains("Quận 1") && watched.contains("760-220518-2001"))
        #expect(watched.contains("30 min left"))
        let filed = try alertIDs(inFolder: harness.settings.resolvedAlertsDirectory)
        #expect(Set(outbox.map(\.alertID)).isSubset(of: Set(filed)))
        #expect(filed.count == Set(filed).count, "no alert twice in the files")
    }
}

/// Runs `sameday` with `arguments` and waits; returns its exit status and output.
func runSameday(_ arguments: [String], capturingErrors: Bool = false) throws -> (status: Int32, output: String) {
    let started = try startSameday(arguments, capturingErrors: capturingErrors)
    let data = started.output.fileHandleForReading.readDataToEndOfFile()
    started.process.waitUntilExit()
    return (started.process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Starts `sameday`; the pipe carries its standard output, or its standard error with `capturingErrors`
/// (the other stream goes to /dev/null).
func startSameday(_ arguments: [String], capturingErrors: Bool = false) throws -> (process: Process, output: Pipe) {
    let process = Process()
    process.executableURL = try samedayExecutable()
    process.arguments = arguments
    let pipe = Pipe()
    let discard = FileHandle(forWritingAtPath: "/dev/null")
    process.standardOutput = capturingErrors ? discard : pipe
    process.standardError = capturingErrors ? pipe : discard
    try process.run()
    return (process, pipe)
}

@Suite("Tenant isolation end to end, with a real per-unit broker user (needs broker)", .serialized, .needs(.rabbitMQ))
struct TenantIsolationBrokerTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test(
        "a unit system's user may publish only its units' keys; a body that lies about its unit or dossier is dead-lettered"
    )
    func perUnitUser() async throws {
        let harness = try WorkerHarness("tenant")
        defer { harness.cleanUp() }
        // The adapter user of District 1's one-stop system, with the permissions SameDay generates for it.
        let user = "test.adapter." + UUID().uuidString.prefix(8).lowercased()
        let password = UUID().uuidString
        let rights = SameDayBrokerUsers(
            unitSystems: [.init(name: "q1", units: ["760"])], supervisors: [], topology: harness.topology
        ).permissions(.init(name: "q1", units: ["760"]))
        try LocalBroker.rabbitmqctl(["add_user", user, password])
        defer { _ = try? LocalBroker.rabbitmqctl(["delete_user", user]) }
        try LocalBroker.rabbitmqctl(["set_permissions", "-p", "/", user, rights.configure, rights.write, rights.read])
        if let topic = rights.topic {
            try LocalBroker.rabbitmqctl([
                "set_topic_permissions", "-p", "/", user, topic.exchange, topic.write, topic.read,
            ])
        }
        var connection = LocalBroker.configuration(name: "tenant adapter")
        connection.brokers[0].user = user
        connection.brokers[0].password = password
        connection.reconnect.maximumAttempts = 1

        func message(_ event: DossierEvent, key: String, header: String? = nil) -> OutboundMessage {
            OutboundMessage(
                exchange: harness.topology.eventsExchange, routingKey: key, body: Array(event.encoded().utf8),
                messageID: event.eventId, headers: [(SameDayTopology.shardHeader, header ?? event.dossier)])
        }
        let own = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00")
        let department = receivedEvent(
            "000.00.15.H29-220518-0001", at: "2022-05-18T09:00:00+07:00", unit: "000.00.15.H29")
        let split = receivedEvent("760-220518-0002", at: "2022-05-18T09:01:00+07:00")

        // Honest keys: its own unit goes through; a department's key is refused by the broker itself.
        let publisher = try Publisher(PublisherConfiguration(connection: connection))
        try publisher.publish(message(own, key: "district.760.received"))
        // A department's body under District 1's key passes the topic permission (it checks only the key) …
        try publisher.publish(message(department, key: "district.760.received"))
        // … and so does a header that would shard the dossier elsewhere.
        try publisher.publish(message(split, key: "district.760.received", header: "760-220518-9999"))
        try publisher.waitForConfirms(timeout: .seconds(30))
        publisher.close()
        let refused = try Publisher(PublisherConfiguration(connection: connection))
        #expect(throws: AMQPError.self) {
            try refused.publish(message(department, key: "department.000_00_15_H29.received"))
            try refused.waitForConfirms(timeout: .seconds(10))
        }
        refused.close()

        let collected = Mutex<[Delivery]>([])
        try await harness.runInProcess(configuration: configuration) { store in
            let more = (try? harness.drain(harness.topology.deadLetterQueue)) ?? []
            let count = collected.withLock {
                $0 += more; return $0.count
            }
            return (try? store.eventCount()) == 1 && count == 2
        }
        let store = try WorkerStore(path: harness.settings.databasePath)
        #expect(try store.eventCount() == 1, "only District 1's own event is applied")
        let dead = collected.withLock { $0 }
        let reasons = Dictionary(
            uniqueKeysWithValues: dead.map { ($0.messageID ?? "", $0.headers["x-sameday-reason"]?.stringValue ?? "") })
        #expect(reasons[department.eventId]?.contains("does not match the event's block, unit and type") == true)
        #expect(reasons[department.eventId]?.contains("department.000_00_15_H29.received") == true)
        #expect(reasons[split.eventId]?.contains("header \"dossier\" \"760-220518-9999\" differs") == true)
    }

    @Test("events dated outside the plausible window are dead-lettered with the field, never stored")
    func implausibleTimes() async throws {
        let harness = try WorkerHarness("bounds")
        defer { harness.cleanUp() }
        let valid = receivedEvent("760-220518-0001", at: "2022-05-18T09:00:00+07:00")
        let ancient = receivedEvent("760-220518-0002", at: "1022-05-18T09:00:00+07:00")
        let yearZero = receivedEvent("760-220518-0003", at: "0000-05-18T09:00:00+08:00")
        try harness.publish([valid, ancient, yearZero], configuration: configuration)
        let collected = Mutex<[Delivery]>([])
        try await harness.runInProcess(configuration: configuration) { store in
            let more = (try? harness.drain(harness.topology.deadLetterQueue)) ?? []
            let count = collected.withLock {
                $0 += more; return $0.count
            }
            return (try? store.eventCount()) == 1 && count == 2
        }
        let dead = collected.withLock { $0 }
        #expect(dead.count == 2)
        #expect(
            dead.allSatisfy { $0.headers["x-sameday-reason"]?.stringValue?.contains("field \"occurredAt\"") == true })
        // Only one day of rollups: nothing was written for the year 1022.
        let days =
            (try? FileManager.default.contentsOfDirectory(atPath: harness.settings.resolvedRollupsDirectory + "/daily"))
            ?? []
        #expect(days == ["2022-05-18"])
    }
}
