import ArgumentParser
import Foundation
import RabbitMQ
import SameDayBroker
import SameDayCore
import SameDayFormats
import SameDayStore
import SameDayWorker

/// `sameday-bench pipeline`: generated events published with confirms through the broker into a worker with
/// durable state (SQLite, group commit, ack after commit); beside it, in the same run, its yardsticks. Three modes:
///
/// - default (publish and consume at once): the end-to-end rate, and the `--publish-only` ceiling of the same run on
///   a fresh copy of the topology (`e2e_events_per_s`, `publish_only_events_per_s`, `e2e_ratio`);
///   `--peer-end-to-end` adds the Python peer below doing the same (`e2e_peer_events_per_s`, `e2e_vs_peer`);
/// - `--prefilled` (drain a full queue): the worker against a plain Python + pika + sqlite3 consumer
///   (`scripts/bench/peer_consumer.py`, in the venv `scripts/bench/peer.sh` makes) draining the same events from an
///   identical queue (`events_per_s`, `peer_events_per_s`, `ratio`);
/// - `--publish-only`: the broker alone on SameDay's topology.
///
/// Each round declares fresh private copies of the topology (one shard), fills what it needs, then measures the two
/// sides one after the other: in round 1 the yardstick first (the peer, or publish-only), then ours; later rounds
/// alternate, so a slower broker moment does not always fall on the same side. Each rate reported is the best
/// round's, for both sides alike; `*_rounds` lists every round's. One JSON line; a bare consumer on a quorum queue
/// (`raw_consume_per_s`) closes the run as before.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "Events per second from publisher through RabbitMQ into the worker's SQLite."
    )

    @Option(help: "Events to push through.") var events = 200_000
    @Option(help: "Configuration folder.") var config = "deploy/config/hcmc-2022"
    @Option(help: "Broker URL (loopback only, no password).") var url = localBrokerURL
    @Option(help: "Worker batch size (events per commit); default: the worker's.") var batchSize =
        WorkerConfiguration().batchSize
    @Option(help: "Worker prefetch; default: the worker's.") var prefetch = WorkerConfiguration().prefetch
    @Option(help: "The Python peer's commit size (the issue's yardstick: per 500).") var peerBatchSize = 500
    @Option(help: "The Python peer's prefetch.") var peerPrefetch = 1000
    @Flag(help: "Publish only (no worker): what the broker alone sustains on SameDay's topology.") var publishOnly =
        false
    @Flag(
        help:
            "Publish everything first, then drain it: the worker against the Python peer, each on its own full queue.")
    var prefilled = false
    @Flag(help: "Leave out the events stream (the replayable history), to measure what it costs.") var withoutStream =
        false
    @Option(help: "Rounds; the sides alternate which goes first, and each rate reported is the best round's.")
    var rounds = 1
    @Flag(help: "With --prefilled: leave out the Python peer (no venv, no PyPI).") var withoutPeer = false
    @Flag(help: "Without --prefilled or --publish-only: leave out the publish-only ceiling.") var withoutCeiling = false
    @Flag(
        help:
            "Without --prefilled or --publish-only: leave out the bare consumer publishing and draining at once (what any consumer reaches end to end here)."
    ) var withoutBareConsumer = false
    @Flag(help: "Leave out the bare consumer (raw_consume_per_s) at the end.") var withoutRaw = false
    @Option(help: "Folder of peer.sh and peer_consumer.py.") var peerDirectory = "scripts/bench"
    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Without --prefilled or --publish-only: also run the bare consumer end to end spending each of these CPU microseconds per event (what end to end reaches here for a consumer that costs as much as the worker).",
            valueName: "microseconds"))
    var consumerCosts: [Int] = []
    @Flag(
        help:
            "Without --prefilled: the broker and the publisher on core 0, the worker (and the bare consumers) on core 1, for every measurement of the run, ceiling included: the worker on a machine of its own, as deployed."
    ) var workerCore = false
    @Flag(
        help:
            "Without --prefilled or --publish-only: also run the Python peer end to end (publishing while it drains), on the worker's core with --worker-core."
    ) var peerEndToEnd = false

    func validate() throws {
        try refusePassword(inURL: url)
        if publishOnly && prefilled { throw ValidationError("--publish-only and --prefilled exclude each other") }
        if workerCore && prefilled { throw ValidationError("--worker-core measures end to end, not --prefilled") }
        if peerEndToEnd && (prefilled || publishOnly) {
            throw ValidationError("--peer-end-to-end measures end to end, not --prefilled or --publish-only")
        }
        if workerCore && ProcessInfo.processInfo.activeProcessorCount < 2 {
            throw ValidationError("--worker-core needs two cores")
        }
        if rounds < 1 { throw ValidationError("--rounds must be at least 1") }
        if events < 1 { throw ValidationError("--events must be at least 1") }
        if consumerCosts.contains(where: { $0 < 0 || $0 > 10_000 }) {
            throw ValidationError("--consumer-costs takes microseconds from 0 to 10000")
        }
    }

    func run() async throws {
        let domain = try ConfigurationFolder.load(config)
        let stream = Array(generate(domain: domain).prefix(events))
        let distinct = Set(stream.map { [$0.dossier, $0.eventId] }).count
        let broker = try BrokerURL(parsing: url)
        let connection = ConnectionConfiguration(brokers: [broker], connectionName: "sameday-bench pipeline")
        let folder = NSTemporaryDirectory() + "sameday-bench-pipeline-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let bench = Run(
            domain: domain, stream: stream, distinct: distinct, connection: connection, url: url, config: config,
            folder: folder, batchSize: batchSize, prefetch: prefetch, peerBatchSize: peerBatchSize,
            peerPrefetch: peerPrefetch, withoutStream: withoutStream, pinCores: workerCore)

        var line: [String: Any] = [
            "bench": "pipeline", "events": stream.count, "distinct_events": distinct, "batch_size": batchSize,
            "prefetch": prefetch, "peer_batch_size": peerBatchSize, "peer_prefetch": peerPrefetch,
            "stream": !withoutStream, "worker": !publishOnly, "rounds": rounds,
            "cores": workerCore
                ? "broker and publisher on core 0, worker and bare consumers on core 1" : "all share every core",
        ]
        if workerCore { line["broker_nodes_pinned"] = try await CorePinning.pinBrokers(to: "0") }
        do {
            try await measure(bench, into: &line)
            if workerCore { try await CorePinning.pinBrokers(to: CorePinning.allCores) }
        } catch {
            if workerCore { _ = try? await CorePinning.pinBrokers(to: CorePinning.allCores) }
            // Leave nothing behind on the broker: every copy this run may have declared.
            for round in 0..<rounds {
                for part in ["", "peer.", "ceiling.", "bare."] {
                    try? await bench.delete(bench.planned("bench.\(getpid()).r\(round).\(part)"))
                }
            }
            for index in consumerCosts.indices {
                try? await bench.delete(bench.planned("bench.\(getpid()).cost\(index)."))
            }
            throw error
        }

        // The bare consumer, same run, same queue type and message size.
        let averageSize = stream.prefix(1000).map { $0.encoded().utf8.count }.reduce(0, +) / min(1000, stream.count)
        line["event_bytes"] = averageSize
        if !withoutRaw {
            let (count, prefetch) = (stream.count, prefetch)
            let raw = try await BlockingThread.run(name: "bench raw") {
                try AMQPBench.measureOurs(
                    broker: broker, messages: count, size: averageSize, window: 1000, prefetch: UInt16(prefetch),
                    ackEvery: 100)
            }
            line["raw_consume_per_s"] = Int(raw.consume)
        }
        print(try jsonLine(line))
    }

    /// The mode's rounds; their figures go into `line`.
    func measure(_ bench: Run, into line: inout [String: Any]) async throws {
        let (stream, folder) = (bench.stream, bench.folder)
        if publishOnly {
            var rates: [Double] = []
            for round in 0..<rounds {
                let topology = try await bench.declare("bench.\(getpid()).r\(round).")
                let seconds = try await bench.publish(into: topology).seconds
                try await bench.delete(topology)
                rates.append(Double(stream.count) / seconds)
            }
            line["mode"] = "publish only"
            line["events_per_s"] = Int(rates.max()!)
            line["publish_per_s"] = Int(rates.max()!)
            line["publish_only_events_per_s"] = Int(rates.max()!)
            line["events_per_s_rounds"] = rates.map { Int($0) }
        } else if prefilled {
            let python = withoutPeer ? nil : try await setUpPeer()
            var ours: [Double] = []
            var workerCPU: [Double] = []
            var threadSplits: [[String: Double]] = []
            var publishRates: [Double] = []
            var peers: [PeerResult] = []
            for round in 0..<rounds {
                let prefix = "bench.\(getpid()).r\(round)."
                let mine = try await bench.declare(prefix)
                let theirs: Run.Declared?
                if python != nil { theirs = try await bench.declare(prefix + "peer.") } else { theirs = nil }
                publishRates.append(Double(stream.count) / (try await bench.publish(into: mine).seconds))
                if let theirs { _ = try await bench.publish(into: theirs) }
                let peerFirst = round % 2 == 0
                let measurePeer = { () async throws in
                    guard let python, let theirs else { return }
                    peers.append(
                        try await bench.drainWithPeer(
                            python: python, script: peerDirectory + "/peer_consumer.py", declared: theirs,
                            database: folder + "/peer-r\(round).sqlite"))
                    try await bench.delete(theirs)
                }
                if peerFirst { try await measurePeer() }
                let drained = try await bench.runWorker(
                    on: mine, state: folder + "/worker-r\(round)", publishing: false)
                ours.append(Double(stream.count) / drained.seconds)
                workerCPU.append(drained.workerCPUSeconds / Double(stream.count) * 1e6)
                threadSplits.append(drained.workerThreads.mapValues { $0 / Double(stream.count) * 1e6 })
                line["alerts"] = drained.alerts
                try await bench.delete(mine)
                if !peerFirst { try await measurePeer() }
            }
            line["mode"] = "drain a full queue"
            line["events_per_s"] = Int(ours.max()!)
            line["events_per_s_rounds"] = ours.map { Int($0) }
            line["worker_cpu_us_per_event"] = (workerCPU.min()! * 10).rounded() / 10
            line["worker_threads_cpu_us_per_event"] = Run.split(of: workerCPU, threadSplits)
            line["publish_per_s"] = Int(publishRates.max()!)
            if !peers.isEmpty {
                let best = peers.map(\.eventsPerSecond).max()!
                line["peer"] = "python peer_consumer.py: pika, sqlite3 WAL synchronous=FULL"
                line["order"] = rounds > 1 ? "alternating, the Python peer first in round 1" : "the Python peer first"
                line["peer_events_per_s"] = Int(best)
                line["peer_events_per_s_rounds"] = peers.map { Int($0.eventsPerSecond) }
                line["peer_process_events_per_s"] = Int(peers.map(\.processEventsPerSecond).max()!)
                line["peer_cpu_us_per_event"] = (peers.map(\.cpuMicrosecondsPerEvent).min()! * 10).rounded() / 10
                line["worker_vs_peer_cpu"] = ratio(workerCPU.min()!, peers.map(\.cpuMicrosecondsPerEvent).min()!)
                line["ratio"] = ratio(ours.max()!, best)
            }
        } else {
            var endToEnd: [Double] = []
            var workerCPU: [Double] = []
            var threadSplits: [[String: Double]] = []
            var publishRates: [Double] = []
            var ceilings: [Double] = []
            var bare: [Double] = []
            var peers: [Double] = []
            let python = peerEndToEnd ? try await setUpPeer() : nil
            for round in 0..<rounds {
                let prefix = "bench.\(getpid()).r\(round)."
                let measurePeer = { () async throws in
                    guard let python else { return }
                    let topology = try await bench.declare(prefix + "peer.")
                    let seconds = try await bench.publishWithPeer(
                        python: python, script: peerDirectory + "/peer_consumer.py", declared: topology,
                        database: folder + "/peer-e2e-r\(round).sqlite")
                    peers.append(Double(stream.count) / seconds)
                    try await bench.delete(topology)
                }
                let measureCeiling = { () async throws in
                    guard !withoutCeiling else { return }
                    let topology = try await bench.declare(prefix + "ceiling.")
                    ceilings.append(Double(stream.count) / (try await bench.publish(into: topology).seconds))
                    try await bench.delete(topology)
                }
                let measureBare = { () async throws in
                    guard !withoutBareConsumer else { return }
                    let topology = try await bench.declare(prefix + "bare.")
                    bare.append(Double(stream.count) / (try await bench.publishWithBareConsumer(into: topology)))
                    try await bench.delete(topology)
                }
                if round % 2 == 0 {
                    try await measureCeiling()
                    try await measureBare()
                    try await measurePeer()
                }
                let topology = try await bench.declare(prefix)
                let result = try await bench.runWorker(
                    on: topology, state: folder + "/worker-r\(round)", publishing: true)
                try await bench.delete(topology)
                endToEnd.append(Double(stream.count) / result.seconds)
                workerCPU.append(result.workerCPUSeconds / Double(stream.count) * 1e6)
                threadSplits.append(result.workerThreads.mapValues { $0 / Double(stream.count) * 1e6 })
                line["alerts"] = result.alerts
                publishRates.append(Double(stream.count) / result.publishSeconds!)
                if round % 2 == 1 {
                    try await measurePeer()
                    try await measureBare()
                    try await measureCeiling()
                }
            }
            line["mode"] = "publish and consume at once"
            line["events_per_s"] = Int(endToEnd.max()!)
            line["e2e_events_per_s"] = Int(endToEnd.max()!)
            line["events_per_s_rounds"] = endToEnd.map { Int($0) }
            line["e2e_worker_cpu_us_per_event"] = (workerCPU.min()! * 10).rounded() / 10
            line["e2e_worker_threads_cpu_us_per_event"] = Run.split(of: workerCPU, threadSplits)
            line["publish_per_s"] = Int(publishRates.max()!)
            if !ceilings.isEmpty {
                line["order"] = rounds > 1 ? "alternating, publish-only first in round 1" : "publish-only first"
                line["publish_only_events_per_s"] = Int(ceilings.max()!)
                line["publish_only_events_per_s_rounds"] = ceilings.map { Int($0) }
                line["e2e_ratio"] = ratio(endToEnd.max()!, ceilings.max()!)
            }
            // Another consumer end to end, the same publishing: `e2e_<name>_events_per_s` (best round), its rounds,
            // `e2e_vs_<name>` (the worker against it) and `e2e_<name>_ratio` (it against the ceiling).
            func yardstick(_ name: String, _ rates: [Double]) {
                guard let best = rates.max() else { return }
                line["e2e_\(name)_events_per_s"] = Int(best)
                line["e2e_\(name)_events_per_s_rounds"] = rates.map { Int($0) }
                line["e2e_vs_\(name)"] = ratio(endToEnd.max()!, best)
                if let ceiling = ceilings.max() { line["e2e_\(name)_ratio"] = ratio(best, ceiling) }
            }
            // A consumer that only acks (prefetch and ack batches like the worker's): what consuming at all costs
            // the broker and the publisher on this machine.
            yardstick("bare_consumer", bare)
            // The Python peer of --prefilled, publishing while it drains: what a plain durable consumer reaches.
            yardstick("peer", peers)
            // The bare consumer again, spending a set CPU time on each event: how end to end on this machine falls
            // with what a consumer costs, next to the worker's own cost measured above.
            var costed: [String: Any] = [:]
            for (index, cost) in consumerCosts.enumerated() {
                let topology = try await bench.declare("bench.\(getpid()).cost\(index).")
                let seconds = try await bench.publishWithBareConsumer(into: topology, cpuPerEvent: .microseconds(cost))
                try await bench.delete(topology)
                var point: [String: Any] = ["events_per_s": Int(Double(stream.count) / seconds)]
                if let ceiling = ceilings.max() {
                    point["ratio"] = ratio(Double(stream.count) / seconds, ceiling)
                }
                costed["\(cost)"] = point
            }
            if !costed.isEmpty { line["e2e_consumer_costing_us"] = costed }
        }
    }

    /// The venv with pika (made by `peer.sh` if missing: PyPI, once); its python.
    func setUpPeer() async throws -> String {
        let script = peerDirectory + "/peer.sh"
        guard FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("\(script) not found: run from the repository root, or pass --peer-directory")
        }
        let (status, output) = try await runProcess("/bin/bash", [script])
        guard status == 0, let python = output.split(separator: "\n").last.map(String.init), !python.isEmpty else {
            throw ValidationError("\(script) failed (exit status \(status)); --without-peer leaves the peer out")
        }
        return python
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

/// What one pipeline run shares: the events, the broker, the worker's settings; and the steps of each mode.
struct Run: Sendable {
    let domain: Configuration
    let stream: [DossierEvent]
    /// Distinct (dossier, eventId) pairs: the rows the worker's event log ends with.
    let distinct: Int
    let connection: ConnectionConfiguration
    let url: String
    let config: String
    let folder: String
    let batchSize: Int
    let prefetch: Int
    let peerBatchSize: Int
    let peerPrefetch: Int
    let withoutStream: Bool
    /// `--worker-core`: the publisher on core 0 (with the broker), the consuming side on core 1.
    let pinCores: Bool

    /// A private copy of SameDay's topology with one shard (without the events stream if asked), declared.
    struct Declared: Sendable {
        var names: SameDayTopology
        var topology: Topology
    }

    func planned(_ prefix: String) -> Declared {
        let names = SameDayTopology(shards: 1, namePrefix: prefix)
        var topology = names.topology
        if withoutStream {
            topology.queues.removeAll { $0.name == names.eventsStream }
            topology.bindings.removeAll { $0.destination == .queue(names.eventsStream) }
        }
        return Declared(names: names, topology: topology)
    }

    func declare(_ prefix: String) async throws -> Declared {
        let declared = planned(prefix)
        try await onBroker(connection) { try declared.topology.declare(on: $0) }
        return declared
    }

    func delete(_ declared: Declared) async throws {
        try await onBroker(connection) { try declared.topology.delete(on: $0) }
    }

    /// Every event through `sameday.events` with confirms; the seconds from the first publish to the last confirm,
    /// and the CPU seconds the publishing thread spent.
    func publish(into declared: Declared) async throws -> (seconds: Double, cpuSeconds: Double) {
        let (stream, domain, connection, names) = (stream, domain, connection, declared.names)
        let pin = pinCores
        return try await BlockingThread.run(name: "bench publisher") { () -> (Double, Double) in
            if pin { try CorePinning.pinCurrentThread(to: 0) }
            let cpuStart = threadCPUSeconds()
            let publisher = try Publisher(PublisherConfiguration(connection: connection))
            defer { publisher.close() }
            let start = ContinuousClock.now
            for event in stream {
                try publisher.publish(EventMessage.make(event, configuration: domain, names: names.producerNames))
            }
            try publisher.waitForConfirms(timeout: .seconds(120))
            return ((ContinuousClock.now - start).seconds, threadCPUSeconds() - cpuStart)
        }
    }

    /// Publishes every event (as `publish`) while a bare consumer drains the shard queue, acking every 100 (multiple),
    /// doing nothing else; the seconds from the first publish until the consumer has them all.
    /// `cpuPerEvent`: CPU time the consumer spends on each event (a stand-in for a consumer's own work).
    func publishWithBareConsumer(into declared: Declared, cpuPerEvent: Duration = .zero) async throws -> Double {
        let (count, connection, prefetch, pin) = (stream.count, connection, prefetch, pinCores)
        let queue = declared.names.workQueue(0)
        let started = ContinuousClock.now
        async let drained: Double = BlockingThread.run(name: "bench bare consumer") { () -> Double in
            if pin { try CorePinning.pinCurrentThread(to: 1) }
            let consumer = try Consumer(
                ConsumerConfiguration(connection: connection, queue: queue, prefetch: UInt16(clamping: prefetch)))
            defer { consumer.close() }
            let cost = Double(cpuPerEvent.components.attoseconds) / 1e18 + Double(cpuPerEvent.components.seconds)
            try drain(consumer, count: count, ackEvery: 100, timeout: .seconds(30)) { _ in
                guard cost > 0 else { return }
                let until = threadCPUSeconds() + cost
                while threadCPUSeconds() < until {}
            }
            return (ContinuousClock.now - started).seconds
        }
        _ = try await publish(into: declared)
        return try await drained
    }

    /// The per-thread split (µs per event, by thread name) of the round whose worker CPU is the one reported (the
    /// least), to a tenth.
    static func split(of workerCPU: [Double], _ splits: [[String: Double]]) -> [String: Double] {
        guard let best = workerCPU.indices.min(by: { workerCPU[$0] < workerCPU[$1] }), best < splits.count else {
            return [:]
        }
        return splits[best].filter { $0.value >= 0.05 }.mapValues { ($0 * 10).rounded() / 10 }
    }

    /// Starts a worker (fresh state in `state`) on `declared`'s shard queue, publishes the events meanwhile if
    /// `publishing`, and waits until the worker has committed every event. The seconds run from the worker's start
    /// (opening its state and connecting are inside) to the commit of the last event; the worker's CPU seconds are
    /// this process's over that time, less the publishing thread's.
    func runWorker(on declared: Declared, state: String, publishing: Bool) async throws
        -> (
            seconds: Double, publishSeconds: Double?, workerCPUSeconds: Double, workerThreads: [String: Double],
            alerts: [String: Int]
        )
    {
        var settings = benchWorkerSettings(url: url, topology: declared.names, folder: state, config: config)
        settings.batchSize = batchSize
        settings.prefetch = prefetch
        let (workerSettings, domain, pin) = (settings, domain, pinCores)
        let metrics = WorkerMetrics()
        let stop = StopFlag()
        let finished = StopFlag()
        let started = ContinuousClock.now
        let cpuStart = processCPUSeconds()
        let threadsBefore = Set(threadsCPU().keys)
        async let worker: Void = BlockingThread.run(name: "bench worker") {
            defer { finished.request() }
            // The worker's threads (commit, files, publisher) start from this one and inherit its core.
            if pin { try CorePinning.pinCurrentThread(to: 1) }
            try WorkerService(configuration: workerSettings, domain: domain, metrics: metrics).run(until: stop)
        }
        do {
            let published = publishing ? try await publish(into: declared) : nil
            try await waitForCommits(
                databasePath: settings.databasePath, metrics: metrics, started: started, finished: finished)
            let seconds = (ContinuousClock.now - started).seconds
            let workerCPU = processCPUSeconds() - cpuStart - (published?.cpuSeconds ?? 0)
            // The worker's threads, started with it and named for the OS: where its CPU went. The consume loop
            // runs on this bench's thread; "other" is any other thread started meanwhile (Swift's task threads).
            var workerThreads: [String: Double] = [:]
            for (tid, thread) in threadsCPU() where !threadsBefore.contains(tid) && thread.name != "bench publisher" {
                let name =
                    thread.name == "bench worker"
                    ? "consume" : thread.name.hasPrefix("sameday.") ? String(thread.name.dropFirst(8)) : "other"
                workerThreads[name, default: 0] += thread.seconds
            }
            stop.request()
            try await worker
            var alerts: [String: Int] = [:]
            for level in AlertLevel.allCases {
                let raised = Int(metrics.value(.alertsTotal, level.name))
                if raised > 0 { alerts[level.name] = raised }
            }
            return (seconds, published?.seconds, workerCPU, workerThreads, alerts)
        } catch {
            stop.request()
            try await worker  // the worker's own error, if it stopped on one
            throw error
        }
    }

    /// Until the worker's event log holds every distinct event. `SELECT count(*)` over the log costs tens of
    /// milliseconds at 200,000 rows, so polling it all along would take a good part of a core from the worker on a
    /// 2-core machine: the worker's counters (free to read) say when every delivery was handled, and only then is the
    /// log counted to see the last commit. Should those counters stay at zero (renamed), the log is counted once a
    /// second instead.
    private func waitForCommits(
        databasePath: String, metrics: WorkerMetrics, started: ContinuousClock.Instant, finished: StopFlag
    ) async throws {
        var store: WorkerStore?
        var lastCount = started
        while true {
            let handled =
                metrics.value(.eventsTotal) + metrics.value(.eventsDuplicateTotal)
                + metrics.value(.deadLettersTotal)
            let now = ContinuousClock.now
            let countersSayDone = handled >= Double(stream.count)
            let countersSilent = handled == 0 && now - started > .seconds(5) && now - lastCount >= .seconds(1)
            if countersSayDone || countersSilent {
                lastCount = now
                // Opened once the worker consumes (its schema is in place), or once it handled everything.
                if store == nil, metrics.readiness.ready || countersSayDone {
                    store = try WorkerStore(path: databasePath)
                }
                if let store, try store.eventCount() >= distinct { return }
            }
            if finished.isRequested { throw ValidationError("the worker stopped before it had committed every event") }
            if now - started > .seconds(600) { throw ValidationError("the worker did not finish in 600 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Starts the Python peer on `declared`'s shard queue, and once it is connected publishes every event (as
    /// `publish`); the seconds from the first publish until the peer has committed and acked them all. With
    /// `--worker-core` the peer runs on the worker's core.
    func publishWithPeer(python: String, script: String, declared: Declared, database: String) async throws -> Double {
        let readyFile = database + ".ready"
        async let drained = drainWithPeer(
            python: python, script: script, declared: declared, database: database, readyFile: readyFile)
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: readyFile) {
            guard ContinuousClock.now < deadline else {
                _ = try await drained  // the peer's own failure, if it stopped on one
                throw ValidationError("the Python peer did not connect within 30 s")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let started = ContinuousClock.now
        _ = try await publish(into: declared)
        _ = try await drained
        return (ContinuousClock.now - started).seconds
    }

    /// The Python peer (`peer_consumer.py`) drains `declared`'s shard queue into a fresh SQLite file.
    func drainWithPeer(python: String, script: String, declared: Declared, database: String, readyFile: String? = nil)
        async throws -> PeerResult
    {
        let started = ContinuousClock.now
        var arguments = [
            script, url, declared.names.workQueue(0), "\(stream.count)", database, "--prefetch", "\(peerPrefetch)",
            "--batch", "\(peerBatchSize)",
        ]
        if let readyFile { arguments += ["--ready-file", readyFile] }
        let (status, output) =
            pinCores
            ? try await runProcess("/usr/bin/taskset", ["-c", "1", python] + arguments)
            : try await runProcess(python, arguments)
        let processSeconds = (ContinuousClock.now - started).seconds
        guard status == 0, let last = output.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
            let events = object["events"] as? Int, let seconds = (object["seconds"] as? NSNumber)?.doubleValue,
            let cpu = (object["cpu_seconds"] as? NSNumber)?.doubleValue, events == stream.count, seconds > 0
        else {
            throw ValidationError("the Python peer failed (exit status \(status)): \(output.suffix(500))")
        }
        return PeerResult(events: events, seconds: seconds, processSeconds: processSeconds, cpuSeconds: cpu)
    }
}

/// What the Python peer reported: `seconds` from just before it connects to its last ack (its own measure, which
/// leaves out the interpreter's start and `import pika`), and the whole process as seen from here.
struct PeerResult: Sendable {
    var events: Int
    var seconds: Double
    var processSeconds: Double
    /// The peer's own CPU time over `seconds`.
    var cpuSeconds: Double
    var cpuMicrosecondsPerEvent: Double { cpuSeconds / Double(events) * 1e6 }
    var eventsPerSecond: Double { Double(events) / seconds }
    var processEventsPerSecond: Double { Double(events) / processSeconds }
}

/// Runs `executable` with `arguments` (standard error passes through) and returns its exit status and output.
func runProcess(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await BlockingThread.run(name: "bench process") {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A worker on a private topology and state folder, on the events' clock, without a metrics port.
func benchWorkerSettings(url: String, topology: SameDayTopology, folder: String, config: String) -> WorkerConfiguration
{
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
