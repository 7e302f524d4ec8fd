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

/// Writes a file that holds a secret (a broker URL with its password): mode 0600, or commands refuse it.
func writeSecret(_ text: String, to path: String) {
    write(text, to: path)
    chmod(path, 0o600)
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

/// A finished run of `sameday`: exit status, standard output, standard error.
struct CommandRun {
    var status: Int32
    var output: String
    var errors: String
}

/// Starts `sameday` with `arguments` (standard input from `input`, or none); output and errors go to files in `dir`.
func startSameday(
    _ arguments: [String], in dir: String, input: String? = nil, environment: [String: String]? = nil
) throws -> Process {
    let process = Process()
    process.executableURL = try samedayExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    if let environment { process.environment = environment }
    _ = FileManager.default.createFile(atPath: dir + "/.stdout", contents: nil)
    _ = FileManager.default.createFile(atPath: dir + "/.stderr", contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: dir + "/.stdout")
    process.standardError = FileHandle(forWritingAtPath: dir + "/.stderr")
    if let input {
        _ = FileManager.default.createFile(atPath: dir + "/.stdin", contents: Data(input.utf8))
        process.standardInput = FileHandle(forReadingAtPath: dir + "/.stdin")
    } else {
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
    }
    try process.run()
    return process
}

func finished(_ process: Process, in dir: String) -> CommandRun {
    process.waitUntilExit()
    return CommandRun(
        status: process.terminationStatus,
        output: (try? String(contentsOfFile: dir + "/.stdout", encoding: .utf8)) ?? "",
        errors: (try? String(contentsOfFile: dir + "/.stderr", encoding: .utf8)) ?? "")
}

func runSameday(
    _ arguments: [String], in dir: String, input: String? = nil, environment: [String: String]? = nil
) throws -> CommandRun {
    finished(try startSameday(arguments, in: dir, input: input, environment: environment), in: dir)
}

/// The environment of this process without a broker URL (so a command falls back to what its files say).
func environmentWithoutBroker() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["SAMEDAY_AMQP_URL"] = nil
    return environment
}

/// `environmentWithoutBroker()` with SAMEDAY_DEMO=1: the receiver accepts the shipped registry's demo tokens.
func demoEnvironment() -> [String: String] {
    var environment = environmentWithoutBroker()
    environment["SAMEDAY_DEMO"] = "1"
    return environment
}

/// Collects values from any thread (access-log lines, notices).
final class Collected<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Value] = []
    func append(_ value: Value) { lock.withLock { items.append(value) } }
    var all: [Value] { lock.withLock { items } }
}

extension MappedRecord {
    /// The event and its message, or nil when the record was skipped or rejected: `try #require(….mappedEvent)`.
    var mappedEvent: (event: DossierEvent, message: OutboundMessage)? {
        if case .event(let event, let message) = self { (event, message) } else { nil }
    }

    /// Why the record was rejected, or nil when it was not: `try #require(….rejection)`.
    var rejection: String? {
        if case .rejected(let reason) = self { reason } else { nil }
    }
}
