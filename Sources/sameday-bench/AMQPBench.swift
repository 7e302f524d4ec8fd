import ArgumentParser
import Foundation
import RabbitMQ

/// `sameday-bench amqp`: our RabbitMQ module against rabbitmq-c driven directly from C, in the same run, on the
/// same broker: N persistent messages published with confirms into a fresh quorum queue, then consumed with manual
/// acks. Prints one JSON line.
struct AMQPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp",
        abstract: "Publish with confirms and consume with manual acks through a quorum queue; compare with C.")

    @Option(help: "Messages per round.") var messages = 200_000
    @Option(help: "Body size in bytes.") var size = 300
    @Option(help: "Unconfirmed messages in flight.") var window = 1000
    @Option(help: "Consumer prefetch.") var prefetch: UInt16 = 500
    @Option(help: "Ack (multiple) every N deliveries.") var ackEvery = 100
    @Option(help: "Rounds; each rate reported is the best round's, for ours and for C alike.") var rounds = 2
    @Option(help: "Broker URL (loopback only, no password).") var url = localBrokerURL
    @Flag(help: "Skip the C reference.") var skipReference = false

    func validate() throws { try refusePassword(inURL: url) }

    func run() async throws {
        let broker = try BrokerURL(parsing: url)
        var ours: [(publish: Double, consume: Double)] = []
        var reference: [(publish: Double, consume: Double)] = []
        for _ in 0..<rounds {
            // Alternate, so that a slower broker moment does not fall on one side only.
            let (messages, size, window, prefetch, ackEvery) = (messages, size, window, prefetch, ackEvery)
            ours.append(
                try await BlockingThread.run(name: "bench.amqp") {
                    try Self.measureOurs(
                        broker: broker, messages: messages, size: size, window: window, prefetch: prefetch,
                        ackEvery: ackEvery)
                })
            if !skipReference { reference.append(try runReference(broker: broker)) }
        }
        let best = (ours.map(\.publish).max() ?? 0, ours.map(\.consume).max() ?? 0)
        var line: [String: Any] = [
            "bench": "amqp", "messages": messages, "size": size, "window": window, "prefetch": Int(prefetch),
            "rounds": rounds, "publish_per_s": Int(best.0), "consume_per_s": Int(best.1),
        ]
        if !reference.isEmpty {
            let c = (reference.map(\.publish).max() ?? 0, reference.map(\.consume).max() ?? 0)
            line["c_publish_per_s"] = Int(c.0)
            line["c_consume_per_s"] = Int(c.1)
            line["publish_vs_c"] = ratio(best.0, c.0)
            line["consume_vs_c"] = ratio(best.1, c.1)
        }
        print(try jsonLine(line))
    }

    static func measureOurs(
        broker: BrokerURL, messages: Int, size: Int, window: Int, prefetch: UInt16, ackEvery: Int
    ) throws -> (publish: Double, consume: Double) {
        let queue = "bench.swift.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let connection = ConnectionConfiguration(brokers: [broker], connectionName: "sameday-bench.amqp")
        let admin = try Connection.open(connection)
        defer { admin.close() }
        let topology = Topology(queues: [.init(queue, kind: .quorum)])
        try topology.declare(on: admin)
        // Runs before the close above: closing first left every run's queue on the broker.
        defer { try? topology.delete(on: admin) }

        let publisher = try Publisher(PublisherConfiguration(connection: connection, confirmWindow: window))
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        let start = ContinuousClock.now
        for index in 0..<messages {
            try publisher.publish(
                OutboundMessage(exchange: "", routingKey: queue, body: body, messageID: "m-\(index)", contentType: nil))
        }
        try publisher.waitForConfirms(timeout: .seconds(120))
        let publishSeconds = (ContinuousClock.now - start).seconds
        guard publisher.confirmedCount == messages else {
            throw ValidationError("only \(publisher.confirmedCount) of \(messages) confirmed")
        }
        publisher.close()

        let consumer = try Consumer(ConsumerConfiguration(connection: connection, queue: queue, prefetch: prefetch))
        let consumeStart = ContinuousClock.now
        try drain(consumer, count: messages, ackEvery: ackEvery, timeout: .seconds(10)) { delivery in
            guard delivery.body.count == size else { throw ValidationError("body of \(delivery.body.count) bytes") }
        }
        let consumeSeconds = (ContinuousClock.now - consumeStart).seconds
        consumer.close()
        return (Double(messages) / publishSeconds, Double(messages) / consumeSeconds)
    }

    func runReference(broker: BrokerURL) throws -> (publish: Double, consume: Double) {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("amqp-reference-bench")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ValidationError(
                "C reference not found at \(executable.path): build it with `swift build -c release --product amqp-reference-bench`"
            )
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = [
            "--messages", "\(messages)", "--size", "\(size)", "--window", "\(window)", "--prefetch", "\(prefetch)",
            "--ack-every", "\(ackEvery)", "--host", broker.host, "--port", "\(broker.port)",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let publish = (object["publish_per_s"] as? NSNumber)?.doubleValue,
            let consume = (object["consume_per_s"] as? NSNumber)?.doubleValue
        else { throw ValidationError("C reference failed: \(String(decoding: data, as: UTF8.self))") }
        return (publish, consume)
    }
}

/// One JSON object on one line, keys sorted: what every benchmark prints.
func jsonLine(_ object: [String: Any]) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

/// Takes `count` deliveries from `consumer`, acking with `multiple` every `ackEvery` deliveries and the remainder at
/// the end, as the benchmarks' consumers do; `check` sees each delivery first.
func drain(
    _ consumer: Consumer, count: Int, ackEvery: Int, timeout: Duration, check: (Delivery) throws -> Void = { _ in }
) throws {
    var received = 0
    var last: DeliveryTag?
    while received < count {
        guard let delivery = try consumer.next(timeout: timeout) else {
            throw ValidationError("no delivery for \(timeout) after \(received) of \(count)")
        }
        try check(delivery)
        received += 1
        last = delivery.tag
        if received % ackEvery == 0 { try consumer.ack(delivery.tag, multiple: true) }
    }
    if let last, received % ackEvery != 0 { try consumer.ack(last, multiple: true) }
}
