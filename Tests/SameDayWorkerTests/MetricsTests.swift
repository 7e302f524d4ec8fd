import Foundation
import Logging
import RabbitMQ
import SameDayCore
import SameDayFormats
import SameDayTestKit
import ServiceLifecycle
import Testing

@testable import SameDayWorker

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// GET `url`: status, body and content type.
private func get(_ url: String) async throws -> (status: Int, body: String, contentType: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = 10
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = try #require(response as? HTTPURLResponse)
    return (
        http.statusCode, String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type") ?? ""
    )
}

/// The sample lines of a Prometheus text exposition, by series (name and labels).
private func samples(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " ") else { continue }
        out[String(line[..<space])] = String(line[line.index(after: space)...])
    }
    return out
}

@Suite("Metrics: swift-metrics on a Prometheus registry, served by Hummingbird")
struct MetricsTests {
    @Test("counters, gauges and histograms render with # HELP and # TYPE; whole counts stay integers")
    func exposition() throws {
        let metrics = WorkerMetrics()
        metrics.increment(.eventsTotal)
        metrics.increment(.eventsTotal, by: 122)
        metrics.increment(.alertsTotal, "warning")
        metrics.increment(.alertsTotal, "warning")
        metrics.increment(.alertsTotal, "overdue")
        metrics.increment(.quarantinedEventsTotal, by: 0)
        metrics.set(.dossiers, 42)
        metrics.set(.eventLagSeconds, 1.5)
        metrics.observeCommit(seconds: 0.004)
        metrics.observeCommit(seconds: 0.2)
        metrics.observe(.snapshotSeconds, seconds: 3)
        let text = metrics.render()

        for (name, type) in [
            ("sameday_events_total", "counter"), ("sameday_alerts_total", "counter"),
            ("sameday_quarantined_events_total", "counter"), ("sameday_dossiers", "gauge"),
            ("sameday_event_lag_seconds", "gauge"), ("sameday_ready", "gauge"),
            ("sameday_commit_seconds", "histogram"), ("sameday_snapshot_seconds", "histogram"),
        ] {
            #expect(text.contains("\n# TYPE \(name) \(type)\n"), "\(name)")
            #expect(text.contains("# HELP \(name) "), "\(name)")
        }
        #expect(text.contains("\nsameday_events_total 123\n"), "a whole count stays an integer: \(text)")
        let series = samples(text)
        #expect(series[#"sameday_alerts_total{level="warning"}"#] == "2")
        #expect(series[#"sameday_alerts_total{level="overdue"}"#] == "1")
        #expect(series["sameday_quarantined_events_total"] == "0")
        #expect(Double(series["sameday_dossiers"] ?? "") == 42)
        #expect(Double(series["sameday_event_lag_seconds"] ?? "") == 1.5)
        #expect(series["sameday_ready"].flatMap(Double.init) == 0)
        #expect(series["sameday_commit_seconds_count"] == "2")
        #expect(abs((Double(series["sameday_commit_seconds_sum"] ?? "") ?? 0) - 0.204) < 1e-6)
        #expect(series[#"sameday_commit_seconds_bucket{le="0.005"}"#] == "1")
        #expect(series[#"sameday_commit_seconds_bucket{le="+Inf"}"#] == "2")
        #expect(series["sameday_snapshot_seconds_count"] == "1")
        #expect(Double(series["sameday_snapshot_seconds_sum"] ?? "") == 3)

        // Every sample belongs to a family announced by a # TYPE line before it.
        var typed: Set<String> = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                typed.insert(String(line.split(separator: " ")[2]))
                continue
            }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { family, suffix in
                family.hasSuffix(suffix) && typed.contains(String(family.dropLast(suffix.count)))
                    ? String(family.dropLast(suffix.count)) : family
            }
            #expect(typed.contains(family), "\(line) has no # TYPE line before it")
        }
        // Families in name order, so two scrapes of the same numbers are the same text.
        let names = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(names == names.sorted())
        #expect(metrics.render() == text)
    }

    @Test("the readers answer counters, labelled series, gauges and histogram counts and sums")
    func values() {
        let metrics = WorkerMetrics()
        metrics.increment(.deadLettersTotal, by: 50)
        metrics.increment(.alertsTotal, "critical")
        metrics.set(.rebuildSeconds, 0.25)
        metrics.observe(.restartSeconds, seconds: 1.5)
        metrics.observe(.restartSeconds, seconds: 0.5)
        #expect(metrics.value(.deadLettersTotal) == 50)
        #expect(metrics.value(.alertsTotal, "critical") == 1)
        #expect(metrics.value(.alertsTotal, "warning") == 0)
        #expect(metrics.value(.rebuildSeconds) == 0.25)
        #expect(metrics.count(.restartSeconds) == 2)
        #expect(metrics.sum(.restartSeconds) == 2)
        #expect(metrics.value(.eventsTotal) == 0)
        metrics.setReady(true)
        #expect(metrics.value(.ready) == 1)
        #expect(metrics.readiness.ready)
    }

    @Test("counters only go up; instances do not share numbers")
    func counting() {
        let metrics = WorkerMetrics()
        metrics.increment(.eventsTotal, by: 3)
        metrics.increment(.eventsTotal, by: -5)
        #expect(samples(metrics.render())["sameday_events_total"] == "3")
        #expect(metrics.value(.eventsTotal) == 3)

        let other = WorkerMetrics()
        #expect(other.value(.eventsTotal) == 0)
        #expect(samples(other.render())["sameday_events_total"] == nil)
    }

    @Test("every metric has its own help text; a label value is escaped as the exposition requires")
    func catalogue() {
        let names =
            Metric.Counter.allCases.map(\.rawValue) + Metric.LabelledCounter.allCases.map(\.rawValue)
            + Metric.Gauge.allCases.map(\.rawValue) + Metric.Histogram.allCases.map(\.rawValue)
        #expect(Set(names).count == names.count, "no name is used twice")
        #expect(names.allSatisfy { $0.hasPrefix("sameday_") })
        let helps = names.map { Metric.help[$0] ?? "" }
        #expect(!helps.contains(""), "every metric has a help text")
        #expect(Set(helps).count == helps.count, "no two metrics share a help text")

        let metrics = WorkerMetrics()
        metrics.increment(.refusalsTotal, #"say "hi"\now"#)
        #expect(metrics.render().contains(#"sameday_refusals_total{refusal="say \"hi\"\\now"} 1"#))
        #expect(metrics.value(.refusalsTotal, #"say "hi"\now"#) == 1)
    }

    @Test(
        "the HTTP server answers /metrics, /healthz and /readyz on a loopback port (503 until ready), and stops with its group"
    )
    func httpServer() async throws {
        let metrics = WorkerMetrics()
        metrics.increment(.eventsTotal, by: 7)
        metrics.observeCommit(seconds: 0.01)
        let server = try HealthServer(listen: "127.0.0.1:0", metrics: metrics)
        let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
        async let running: Void = group.run()
        let port = try #require(await server.port())
        #expect(port > 0)
        let base = "http://127.0.0.1:\(port)"

        let health = try await get(base + "/healthz")
        #expect(health.status == 200 && health.body == "ok\n")
        metrics.setReady(false, reason: "rebuilding state")
        let notReady = try await get(base + "/readyz")
        #expect(notReady.status == 503 && notReady.body == "rebuilding state\n")
        metrics.setReady(true)
        let ready = try await get(base + "/readyz")
        #expect(ready.status == 200 && ready.body == "ready\n")
        let scrape = try await get(base + "/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.contentType.hasPrefix("text/plain; version=0.0.4"))
        #expect(scrape.body.contains("# TYPE sameday_events_total counter\n"))
        #expect(scrape.body.contains("\nsameday_events_total 7\n"))
        #expect(scrape.body.contains("# TYPE sameday_commit_seconds histogram\n"))
        #expect(scrape.body.contains("\nsameday_commit_seconds_count 1\n"))
        #expect(scrape.body.contains("\nsameday_ready 1.0\n"))
        let missing = try await get(base + "/nothing")
        #expect(missing.status == 404)

        await group.triggerGracefulShutdown()
        try await running
    }

    @Test("an address that is not HOST:PORT is refused before anything listens; a taken port fails the service")
    func badAddresses() async throws {
        let metrics = WorkerMetrics()
        for listen in ["9464", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", ":9464"] {
            #expect(throws: WorkerConfiguration.Invalid.self, "\(listen)") {
                try HealthServer(listen: listen, metrics: metrics)
            }
        }
        let first = try HealthServer(listen: "127.0.0.1:0", metrics: metrics)
        let group = ServiceGroup(services: [first], logger: Logger(label: "test"))
        async let running: Void = group.run()
        let port = try #require(await first.port())
        let second = try HealthServer(listen: "127.0.0.1:\(port)", metrics: metrics)
        await #expect(throws: WorkerConfiguration.Invalid.self) { try await second.run() }
        #expect(await second.port() == nil)
        await group.triggerGracefulShutdown()
        try await running
    }
}

@Suite("Metrics: the worker as a service-lifecycle Service (needs broker)", .serialized, .needs(.rabbitMQ))
struct WorkerRunnerTests {
    let configuration = try! ConfigurationFolder.load(hcmcConfiguration)

    /// `sameday worker`'s group in process: the metrics server, then the worker, each stopping the group.
    func workerGroup(_ harness: WorkerHarness) throws -> (ServiceGroup, HealthServer, WorkerMetrics) {
        let metrics = WorkerMetrics()
        let server = try HealthServer(listen: "127.0.0.1:0", metrics: metrics)
        let runner = WorkerRunner(configuration: harness.settings, domain: configuration, metrics: metrics)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .stoppingTheGroup(server, name: "metrics"), .stoppingTheGroup(runner, name: "worker"),
        ]
        return (
            ServiceGroup(configuration: .stoppingTogether(services, logger: Logger(label: "test"))), server, metrics
        )
    }

    @Test(
        "graceful shutdown of the group stops the worker (readyz 200 while consuming, then \"stopping\"), then the server"
    )
    func gracefulShutdown() async throws {
        let harness = try WorkerHarness("runner")
        defer { harness.cleanUp() }
        let (group, server, metrics) = try workerGroup(harness)
        async let running: Void = group.run()
        let port = try #require(await server.port())
        let deadline = ContinuousClock.now + .seconds(60)
        var status = 0
        while ContinuousClock.now < deadline {
            status = try await get("http://127.0.0.1:\(port)/readyz").status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200, "the worker becomes ready")
        await group.triggerGracefulShutdown()
        try await running
        #expect(!metrics.readiness.ready && metrics.readiness.reason == "stopping")
        // The server went down with the group.
        await #expect(throws: (any Error).self) { _ = try await get("http://127.0.0.1:\(port)/healthz") }
    }

    @Test("a worker that fails shuts the group down (the server too) and its error comes out of the group")
    func failure() async throws {
        let harness = try WorkerHarness("runner-fails")
        defer { harness.cleanUp() }
        // Another worker holds the shard's state: this one fails at once.
        let held = try StateLock(folder: harness.settings.stateDirectory, shard: harness.settings.shard)
        defer { held.release() }
        let (group, _, _) = try workerGroup(harness)
        await #expect(throws: StateLock.Held.self) { try await group.run() }
    }

    @Test("`sameday worker`: SIGTERM stops it with exit 0; a metrics port already taken stops it with exit 1, logged")
    func command() async throws {
        let harness = try WorkerHarness("runner-command")
        defer { harness.cleanUp() }
        func start(metricsListen: String, errors: String) throws -> Process {
            let process = Process()
            process.executableURL = try samedayExecutable()
            process.arguments = ["worker"]
            var environment = ProcessInfo.processInfo.environment.merging(harness.environment) { $1 }
            environment["SAMEDAY_METRICS_LISTEN"] = metricsListen
            process.environment = environment
            _ = FileManager.default.createFile(atPath: errors, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: errors)
            try process.run()
            return process
        }
        // A port of our own, free for the worker (bind, learn the port, close).
        let probe = try HealthServer(listen: "127.0.0.1:0", metrics: WorkerMetrics())
        let probeGroup = ServiceGroup(services: [probe], logger: Logger(label: "test"))
        async let probing: Void = probeGroup.run()
        let port = try #require(await probe.port())
        await probeGroup.triggerGracefulShutdown()
        try await probing

        let worker = try start(metricsListen: "127.0.0.1:\(port)", errors: harness.folder + "/worker.err")
        defer { if worker.isRunning { worker.terminate() } }
        let deadline = ContinuousClock.now + .seconds(60)
        var ready = false
        while !ready && ContinuousClock.now < deadline && worker.isRunning {
            ready = (try? await get("http://127.0.0.1:\(port)/readyz").status) == 200
            if !ready { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(ready)
        let scrape = try await get("http://127.0.0.1:\(port)/metrics")
        #expect(scrape.body.contains("# TYPE sameday_ready gauge\nsameday_ready 1.0\n"), "\(scrape.body)")

        // While it runs, a second process of another shard asks for the same port: it says so and exits 1.
        let second = Process()
        second.executableURL = try samedayExecutable()
        second.arguments = ["worker", "--shard", "1"]
        var environment = ProcessInfo.processInfo.environment.merging(harness.environment) { $1 }
        environment["SAMEDAY_METRICS_LISTEN"] = "127.0.0.1:\(port)"
        second.environment = environment
        let errors = Pipe()
        second.standardError = errors
        try second.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus == 1)
        #expect(
            message.contains("worker failed") && message.contains("cannot listen on 127.0.0.1:\(port)"), "\(message)")

        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        #expect(worker.terminationStatus == 0, "graceful stop on SIGTERM")
        let log = (try? String(contentsOfFile: harness.folder + "/worker.err", encoding: .utf8)) ?? ""
        #expect(log.contains("stop requested"), "\(log)")
    }
}
