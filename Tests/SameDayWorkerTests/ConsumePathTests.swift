import Foundation
import Logging
import RabbitMQ
import SameDayCore
import SameDayFormats
import SameDayStore
import Testing

@testable import SameDayWorker

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP port that accepts connections (the kernel completes them into the backlog) and never says a word: a
/// broker that is "there" but answers nothing, like one blocked by a memory alarm or wedged.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw LocalError("cannot listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        descriptor = fd
    }

    deinit { close(descriptor) }

    struct LocalError: Error { let text: String; init(_ text: String) { self.text = text } }
}

@Suite("The consume path never waits on the broker")
struct ConsumePathTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    @Test(
        "poison deliveries are stored as dead letters and acked with their batch while the publishing broker answers nothing"
    )
    func deadLettersDoNotWait() throws {
        let folder = temporaryFolder("consume-path")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let silent = try SilentListener()
        var settings = WorkerConfiguration()
        settings.stateDirectory = folder
        settings.clock = .events
        var connection = try ConnectionConfiguration(
            urls: ["amqp://guest:guest@127.0.0.1:\(silent.port)/%2F"], connectionName: "silent")
        connection.connectTimeout = .seconds(5)
        let metrics = WorkerMetrics()
        let publisher = OutboxPublisher(
            connection: connection, topology: .init(shards: 1), metrics: metrics, logger: Logger(label: "test"))
        let loop = try ShardLoop(
            configuration: settings, domain: configuration, store: WorkerStore(path: settings.databasePath),
            clock: StepClock(RFC3339.parse("2022-05-18T10:00:00+07:00")!), metrics: metrics,
            logger: Logger(label: "test"), publisher: publisher, queue: "sameday.work.0")
        defer { loop.close() }
        let store = loop.store

        let started = ContinuousClock.now
        for index in 0..<50 {
            let delivery = Delivery(
                tag: .init(value: UInt64(index + 1), channelEpoch: 1), body: Array("{not json \(index)".utf8),
                messageID: "poison-\(index)", exchange: "sameday.events", routingKey: "district.760.received")
            loop.handle(delivery)
        }
        try loop.flush(consumer: nil)
        try loop.collect(consumer: nil, wait: true)
        let elapsed = ContinuousClock.now - started
        // The old loop waited for the broker's confirm of each dead letter: 50 × the connect timeout.
        #expect(elapsed < .seconds(2), "handling and committing took \(elapsed)")
        #expect(try store.pendingDeadLetters().count == 50, "kept until the broker confirms them")
        #expect(metrics.value(.deadLettersTotal) == 50)
        publisher.finish(timeout: .seconds(1))
    }
}
