import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayTestKit

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func repoPath(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

/// The HCMC 2022 configuration shipped in deploy/config.
let hcmc: Configuration = {
    func read(_ name: String) -> [UInt8] {
        [UInt8](FileManager.default.contents(atPath: repoPath("deploy/config/hcmc-2022/\(name)"))!)
    }
    return try! Configuration.parse(
        ConfigurationFiles(
            units: read("units.csv"), catalog: read("catalog.csv"), calendars: read("calendars.json"),
            alerting: read("alerting.json")))
}()

/// A fresh temporary folder for one test.
func temporaryFolder(_ purpose: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(LocalBroker.uniqueName(purpose)).path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func write(_ text: String, to path: String, bom: Bool = false) {
    var bytes = bom ? [UInt8]([0xEF, 0xBB, 0xBF]) : []
    bytes += Array(text.utf8)
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func profile(_ json: String) throws -> MappingProfile {
    try MappingProfile.parse(Array(json.utf8), file: "test.json")
}

/// The one-stop CSV profile used by most tests (columns in Vietnamese).
let vietnameseProfileJSON = """
    {"source": "motcua-test", "format": "csv",
     "columns": {"dossier": "Mã hồ sơ", "procedure": "Mã thủ tục", "unit": "Mã đơn vị", "status": "Trạng thái",
                 "occurredAt": "Thời gian", "channel": "Hình thức"},
     "timeFormats": ["dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy HH:mm"],
     "statuses": {"Đã tiếp nhận": "received", "Yêu cầu bổ sung": "supplement_requested",
                  "Đã trả kết quả": "returned", "Đã có kết quả": "resolved", "Đang xử lý": "skip"}}
    """

/// Reads every message of the topology's work queues; returns message ids.
func drainWorkQueues(_ topology: SameDayTopology, name: String) throws -> [String] {
    var ids: [String] = []
    for shard in 0..<topology.shards {
        let consumer = try Consumer(
            .init(connection: LocalBroker.configuration(name: name), queue: topology.workQueue(shard)))
        defer { consumer.close() }
        while let delivery = try consumer.next(timeout: .milliseconds(600)) {
            ids.append(delivery.messageID ?? "")
            try consumer.ack(delivery.tag)
        }
    }
    return ids
}

/// A connection configuration to a loopback port where nothing listens: "the broker is stopped".
func stoppedBroker(name: String) -> PublisherConfiguration {
    var connection = LocalBroker.configuration(name: name)
    connection.brokers[0].port = 5699
    connection.connectTimeout = .seconds(1)
    connection.reconnect = Backoff.Policy(
        initialDelay: .milliseconds(10), maximumDelay: .milliseconds(50), maximumAttempts: 2)
    return PublisherConfiguration(connection: connection)
}

func liveBroker(name: String) -> PublisherConfiguration {
    PublisherConfiguration(connection: LocalBroker.configuration(name: name))
}

/// Declares a private topology for a test and deletes it afterwards.
func withTopology<T: Sendable>(
    _ purpose: String, shards: Int = 2, _ body: @escaping @Sendable (SameDayTopology) throws -> T
) async throws -> T {
    let topology = SameDayTopology(shards: shards, namePrefix: LocalBroker.uniqueName(purpose) + ".")
    return try await BlockingThread.run {
        do {
            let admin = try Connection.open(LocalBroker.configuration(name: "adapters-admin"))
            defer { admin.close() }
            try topology.topology.declare(on: admin)
        }
        defer {
            // A fresh connection: one idle through the test could have missed its heartbeats.
            if let admin = try? Connection.open(LocalBroker.configuration(name: "adapters-admin")) {
                try? topology.topology.delete(on: admin)
                admin.close()
            }
        }
        return try body(topology)
    }
}
