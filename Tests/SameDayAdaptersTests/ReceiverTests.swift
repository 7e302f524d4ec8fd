import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayReceiver
import SameDayTestKit
import Testing

let q1Token = "token-for-motcua-q1-test"
let registry = UnitSystemRegistry(systems: [
    .init(name: "motcua-q1", units: ["760", "26734"], tokenSHA256: SHA256.hex(Array(q1Token.utf8))),
    .init(name: "thu-duc", units: ["769"], tokenSHA256: SHA256.hex(Array("token-thu-duc".utf8))),
])

func eventJSON(_ id: String, unit: String = "760", type: String = "received", extra: String = "") -> String {
    #"{"schema":"sameday.dossier-event/1","eventId":"\#(id)","dossier":"\#(unit)-220518-0001","unit":"\#(unit)","procedure":"2.000815.000.00.00.H29","type":"\#(type)","occurredAt":"2022-05-18T08:15:00+07:00","source":"motcua-q1"\#(extra)}"#
}

/// Runs `body` against a receiver whose broker is `publisher`; stops the forwarder afterwards.
func withReceiver<T: Sendable>(
    publisher: PublisherConfiguration, names: SameDayProducerNames, spoolDir: String, maxBody: Int = 64 << 10,
    spoolCapacity: Int64 = Spool.defaultCapacity, customize: @Sendable (inout ReceiverSettings) -> Void = { _ in },
    _ body: @escaping @Sendable (any TestClientProtocol, EventForwarder) async throws -> T
) async throws -> T {
    let spool = try Spool(directory: spoolDir, capacityBytes: spoolCapacity)
    let forwarder = EventForwarder(
        settings: ForwarderSettings(
            publisher: publisher, spool: spool, configuration: hcmc, names: names,
            retryInterval: .milliseconds(200)))
    forwarder.start()
    defer { forwarder.stop() }
    var settings = ReceiverSettings(registry: registry, maxBodyBytes: maxBody, accessLog: { _ in })
    customize(&settings)
    let app = Application(router: Receiver.router(settings: settings, forwarder: forwarder))
    return try await app.test(.router) { client in try await body(client, forwarder) }
}

/// A receiver in dry-run mode (no forwarder, no spool, no broker).
func withDryRunReceiver<T: Sendable>(
    customize: @Sendable (inout ReceiverSettings) -> Void = { _ in },
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> T
) async throws -> T {
    var settings = ReceiverSettings(registry: registry, configuration: hcmc, accessLog: { _ in })
    customize(&settings)
    let app = Application(router: Receiver.router(settings: settings, forwarder: nil))
    return try await app.test(.router) { client in try await body(client) }
}

func post(_ client: any TestClientProtocol, _ body: String, token: String? = q1Token) async throws -> (
    HTTPResponse.Status, String
) {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let token { headers[.authorization] = "Bearer \(token)" }
    return try await client.execute(uri: "/v1/events", method: .post, headers: headers, body: ByteBuffer(string: body))
    {
        ($0.status, String(buffer: $0.body))
    }
}

@Suite("HTTP receiver (broker stopped: the spool answers)")
struct ReceiverTests {
    @Test("bad JSON, invalid events (per event, per field), wrong token, another unit, oversized body; healthz")
    func refusals() async throws {
        let dir = temporaryFolder("receiver")
        try await withReceiver(
            publisher: stoppedBroker(name: "receiver-refusals"), names: SameDayProducerNames(),
            spoolDir: dir + "/spool", maxBody: 4096
        ) { client, _ in
            var (status, body) = try await post(client, "{not json")
            #expect(status == .badRequest && body.contains("malformed JSON"))

            (status, body) = try await post(
                client,
                "[\(eventJSON("ok-1")), \(eventJSON("bad-1", type: "finished")), \(eventJSON("bad-2", extra: #","fullName":"Nguyễn Văn An""#))]"
            )
            #expect(status == .badRequest)
            let errors =
                (try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any])["errors"]
                as! [[String: Any]]
            #expect(errors.count == 2)
            #expect(errors[0]["index"] as? Int == 1 && errors[0]["field"] as? String == "type")
            #expect(errors[1]["index"] as? Int == 2 && errors[1]["field"] as? String == "fullName")
            #expect((errors[1]["message"] as? String)?.contains("personal data") == true)

            (status, _) = try await post(client, eventJSON("x"), token: "wrong-token")
            #expect(status == .unauthorized)
            (status, _) = try await post(client, eventJSON("x"), token: nil)
            #expect(status == .unauthorized)

            (status, body) = try await post(client, "[\(eventJSON("q1")), \(eventJSON("td", unit: "769"))]")
            #expect(status == .forbidden && body.contains("event 1 (unit 769)"))

            let big = "[" + (0..<40).map { eventJSON("big-\($0)") }.joined(separator: ",") + "]"
            (status, _) = try await post(client, big)
            #expect(status == .contentTooLarge)

            let health = try await client.execute(uri: "/healthz", method: .get) {
                ($0.status, String(buffer: $0.body))
            }
            #expect(health.0 == .ok && health.1.contains("\"spoolPendingEvents\":0"))
        }
    }

    @Test("broker unreachable: 202 once the events are fsynced to the spool; full spool: 503 with a clear error")
    func spoolWhenBrokerIsDown() async throws {
        let dir = temporaryFolder("receiver-spool")
        try await withReceiver(
            publisher: stoppedBroker(name: "receiver-spool"), names: SameDayProducerNames(),
            spoolDir: dir + "/spool", spoolCapacity: 2000
        ) { client, forwarder in
            var (status, body) = try await post(client, "[\(eventJSON("s-1")), \(eventJSON("s-2", unit: "26734"))]")
            #expect(status == .accepted && body.contains("\"spooled\":2"))
            #expect(forwarder.settings.spool.status.pendingEvents == 2)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains("sameday_spool_pending_events 2"))
            let many = "[" + (0..<8).map { eventJSON("full-\($0)") }.joined(separator: ",") + "]"
            (status, body) = try await post(client, many)
            #expect(status == .serviceUnavailable && body.contains("is full"))
        }
    }
}

@Suite("HTTP receiver on the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct ReceiverBrokerTests {
    @Test(
        "happy path: 202 after the broker confirms every event; an outage spools, and the spool drains when the broker is back"
    )
    func happyPathAndRecovery() async throws {
        let dir = temporaryFolder("receiver-live")
        let topology = SameDayTopology(shards: 2, namePrefix: LocalBroker.uniqueName("receiver") + ".")
        try await BlockingThread.run {
            let admin = try Connection.open(LocalBroker.configuration(name: "receiver-admin"))
            defer { admin.close() }
            try topology.topology.declare(on: admin)
        }
        // Queues go even if a step below throws (the exchanges are deleted at the end).
        defer { LocalBroker.deleteQueues(topology.topology.queues.map(\.name)) }
        // Phase 1: broker down, events spooled.
        try await withReceiver(
            publisher: stoppedBroker(name: "receiver-down"), names: topology.producerNames, spoolDir: dir + "/spool"
        ) { client, _ in
            let batch = "[" + (0..<50).map { eventJSON("down-\($0)") }.joined(separator: ",") + "]"
            let (status, body) = try await post(client, batch)
            #expect(status == .accepted && body.contains("\"spooled\":50"))
        }
        // Phase 2: broker back; the spool drains first, new events are confirmed.
        try await withReceiver(
            publisher: liveBroker(name: "receiver-up"), names: topology.producerNames, spoolDir: dir + "/spool"
        ) { client, forwarder in
            let batch = "[" + (0..<30).map { eventJSON("up-\($0)", unit: "26734") }.joined(separator: ",") + "]"
            let (status, body) = try await post(client, batch)
            #expect(status == .accepted && body.contains("\"confirmed\":30"))
            let (again, _) = try await post(client, eventJSON("up-0", unit: "26734"))  // a retry: same id
            #expect(again == .accepted)
            #expect(forwarder.settings.spool.status.pendingEvents == 0)
        }
        let ids = try await BlockingThread.run { () throws -> [String] in
            let admin = try Connection.open(LocalBroker.configuration(name: "receiver-admin.2"))
            defer {
                try? topology.topology.delete(on: admin)
                admin.close()
            }
            return try drainWorkQueues(topology, name: "receiver-drain")
        }
        #expect(Set(ids).count == 80, "every event delivered")
        #expect(ids.count == 81, "the retried event once more, dropped by the worker's dedupe")
    }
}
