import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayStore
import SameDayWorker

/// `sameday-bench pipeline`: generated events published with confirms through the broker into a worker with
/// durable state (SQLite, group commit, ack after commit), end to end; beside it, a bare consumer on the same queue
/// type in the same run.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "Events per second from publisher through RabbitMQ into the worker's SQLite."
    )

    @Option(help: "Events to push through.") var events = 200_000
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (loopback only).") var url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    @Option(help: "Worker batch size (events per commit).") var batchSize = 500
    @Option(help: "Worker prefetch.") var prefetch = 1000
    @Flag(help: "Publish only (no worker): what the broker alone sustains on SameDay's topology.") var publishOnly =
        false
    @Flag(help: "Publish everything first, then start the worker: how fast it drains a full queue (catching up).")
    var prefilled = false
    @Flag(help: "Leave out the events stream (the replayable history), to measure what it costs.") var withoutStream =
        false

    func run() async throws {
        let domain = try ConfigurationFolder.load(config)
        let stream = Array(generate(domain: domain).prefix(events))
        let distinct = Set(stream.map(\.eventId)).count
        let broker = try BrokerURL(parsing: url)
        let topology = SameDayTopology(shards: 1, namePrefix: "bench.\(getpid()).")
        let folder = NSTemporaryDirectory() + "sameday-bench-pipeline-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let connection = ConnectionConfiguration(brokers: [broker], connectionName: "sameday-bench pipeline")
        var withStream = topology.topology
        if withoutStream {
            withStream.queues.removeAll { $0.name == topology.eventsStream }
            withStream.bindings.removeAll { $0.destination == .queue(topology.eventsStream) }
        }
        let declared = withStream
        try await onBroker(connection) { try declared.declare(on: $0) }

        var settings = benchWorkerSettings(url: url, topology: topology, folder: folder, config: config)
        settings.batchSize = batchSize
        settings.prefetch = prefetch
        let workerSettings = settings
        let stop = StopFlag()
        let withWorker = !publishOnly
        let publish = { @Sendable () async throws -> Double in
            try await BlockingThread.run(name: "bench publisher") { () -> Double in
                let publisher = try Publisher(PublisherConfiguration(connection: connection))
                defer { publisher.close() }
                let start = ContinuousClock.now
                for event in stream {
                    try publisher.publish(EventMessage.make(event, configuration: domain, topology: topology))
                }
                try publisher.waitForConfirms(timeout: .seconds(120))
                return (ContinuousClock.now - start).seconds
            }
        }
        let prefillSeconds = prefilled ? try await publish() : nil
        let started = ContinuousClock.now
        async let worker: Void = BlockingThread.run(name: "bench worker") {
            if withWorker { try WorkerService(configuration: workerSettings, domain: domain).run(until: stop) }
        }
        let publishSeconds: Double
        if let prefillSeconds { publishSeconds = prefillSeconds } else { publishSeconds = try await publish() }
        let store = try WorkerStore(path: settings.databasePath)
        while withWorker, try store.eventCount() < distinct {
            if ContinuousClock.now - started > .seconds(600) {
                throw ValidationError("the worker did not finish in 600 s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let endToEnd = (ContinuousClock.now - started).seconds
        stop.request()
        try await worker
        try await onBroker(connection) { try declared.delete(on: $0) }

        // The bare consumer, same run, same queue type and message size.
        let averageSize = stream.prefix(1000).map { $0.encoded().utf8.count }.reduce(0, +) / min(1000, stream.count)
        let raw = try await BlockingThread.run(name: "bench raw") {
            try AMQPBench.measureOurs(
                broker: broker, messages: stream.count, size: averageSize, window: 1000, prefetch: UInt16(prefetch),
                ackEvery: 100)
        }
        print(
            try jsonLine([
                "bench": "pipeline", "events": stream.count, "distinct_events": distinct, "batch_size": batchSize,
                "events_per_s": Int(Double(stream.count) / endToEnd),
                "publish_per_s": Int(Double(stream.count) / publishSeconds),
                "raw_consume_per_s": Int(raw.consume), "event_bytes": averageSize, "stream": !withoutStream,
                "worker": !publishOnly, "mode": prefilled ? "drain a full queue" : "publish and consume at once",
            ]))
    }

    func generate(domain: Configuration) -> [DossierEvent] {
        // Busy days (20 dossiers per unit and day), as many as it takes to reach the requested count.
        var days = 10
        while true {
            let stream = SyntheticMonth(
                firstDay: LocalDate(year: 2022, month: 5, day: 16)!, days: days, dossiersPerUnitPerDay: 20, seed: 42
            ).events(config: domain)
            if stream.count >= events { return stream }
            days = days * 3 / 2 + 1
        }
    }
}

/// A worker on a private topology and state folder, on the events' clock, without a metrics port.
func benchWorkerSettings(url: String, topology: SameDayTopology, folder: String, config: String) -> WorkerConfiguration {
    var settings = WorkerConfiguration()
    settings.brokers = [url]
    settings.namePrefix = topology.namePrefix
    settings.stateDirectory = folder
    settings.domainConfig = config
    settings.clock = .events
    settings.metricsListen = ""
    return settings
}

/// Runs `body` with a short-lived connection, on a thread of its own (topology set-up and teardown).
func onBroker(_ connection: ConnectionConfiguration, _ body: @escaping @Sendable (Connection) throws -> Void)
    async throws
{
    try await BlockingThread.run {
        let admin = try Connection.open(connection)
        defer { admin.close() }
        try body(admin)
    }
}

/// The state of a worker that had delivered its alerts before it stopped.
private func markDelivered(_ alerts: [OutboxAlert], _ store: WorkerStore) throws {
    try store.markFiled(alerts.map(\.alertID))
    try store.markPublished(alerts.map(\.alertID))
}

/// `sameday-bench restart`: a worker state with N open dossiers, then the time from start to consuming.
struct RestartBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Time from worker start to consuming, with N open dossiers in its state.")

    @Option(help: "Open dossiers in the state.") var dossiers = 1_000_000
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (loopback only).") var url = "amqp://guest:guest@127.0.0.1:5672/%2F"

    func run() async throws {
        let domain = try ConfigurationFolder.load(config)
        let folder = NSTemporaryDirectory() + "sameday-bench-restart-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let topology = SameDayTopology(shards: 1, namePrefix: "bench.restart.\(getpid()).")
        let settings = benchWorkerSettings(url: url, topology: topology, folder: folder, config: config)

        // Build the state: one `received` per dossier, spread over a working day, committed in large batches.
        let fillStart = ContinuousClock.now
        let store = try WorkerStore(path: settings.databasePath)
        let engine = WorkerEngine(configuration: domain, store: store, clockMode: .events)
        let day = LocalDate(year: 2022, month: 5, day: 18)!.startInstant + 8 * 3600
        let procedure = domain.catalog.first { $0.sla == .sameDay }?.procedure ?? domain.catalog[0].procedure
        for index in 0..<dossiers {
            let unit = domain.units[index % domain.units.count].code
            let event = DossierEvent(
                eventId: "r-\(index)", dossier: "\(unit)-220518-\(index)", unit: unit, procedure: procedure,
                type: .received, occurredAt: day + Int64(index % 28_800), seq: nil, channel: .direct, outcome: nil,
                newDueAt: nil, source: "bench")
            try engine.apply(event)
            if index % 50_000 == 49_999 { try markDelivered(try engine.commit(), store) }
        }
        try markDelivered(try engine.commit(), store)
        let fillSeconds = (ContinuousClock.now - fillStart).seconds
        let open = try store.dossierCount()

        let connection = ConnectionConfiguration(
            brokers: [try BrokerURL(parsing: url)], connectionName: "bench restart")
        try await onBroker(connection) { try topology.topology.declare(on: $0) }
        let metrics = WorkerMetrics()
        let stop = StopFlag()
        let workerSettings = settings
        let started = ContinuousClock.now
        async let worker: Void = BlockingThread.run(name: "bench worker") {
            try WorkerService(configuration: workerSettings, domain: domain, metrics: metrics).run(until: stop)
        }
        while !metrics.readiness.ready {
            if ContinuousClock.now - started > .seconds(300) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let restartSeconds = (ContinuousClock.now - started).seconds
        stop.request()
        try await worker
        try await onBroker(connection) { try topology.topology.delete(on: $0) }
        print(
            try jsonLine([
                "bench": "restart", "open_dossiers": open,
                "restart_to_consuming_s": (restartSeconds * 100).rounded() / 100,
                "rebuild_s": (metrics.value("sameday_rebuild_seconds") * 100).rounded() / 100,
                "fill_s": (fillSeconds * 10).rounded() / 10,
            ]))
    }
}
