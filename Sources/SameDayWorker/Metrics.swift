import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The worker's metrics: swift-metrics instruments (`Counter`, `Gauge`, `Timer`) backed by a swift-prometheus registry
/// that this instance owns. Nothing goes through the global `MetricsSystem.bootstrap`, so a process (a test, a
/// benchmark) may hold as many `WorkerMetrics` as it likes, each with its own numbers.
///
/// Every metric is a case of `Metric`, whose kind decides the calls it admits. Written by the worker's threads, read
/// by the HTTP server's.
public final class WorkerMetrics: Sendable {
    /// The registry `render()` reads; other code may register its own collectors here.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory bound to `registry` (help texts and histogram buckets of `Metric`), for code that
    /// wants its own swift-metrics instruments next to the worker's: `Counter(label: …, factory: m.factory)`.
    public let factory: WorkerMetricsFactory

    private struct State {
        var counters: [String: CoreMetrics.Counter] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        var timers: [String: CoreMetrics.Timer] = [:]
        /// The numbers the `value` and `count`/`sum` readers answer with, by series (name and label text).
        var values: [String: Double] = [:]
        var ready = false
        var notReadyReason = "starting"
    }
    private let state = Mutex(State())
    private let readyGauge: CoreMetrics.Gauge

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        factory = WorkerMetricsFactory(registry: registry)
        readyGauge = CoreMetrics.Gauge(label: Metric.Gauge.ready.rawValue, factory: factory)
        readyGauge.record(0)
        state.withLock { $0.values[Metric.Gauge.ready.rawValue] = 0 }
    }

    /// Adds `amount` to a counter (counters only go up: a negative amount is ignored).
    public func increment(_ metric: Metric.Counter, by amount: Int = 1) {
        count(metric.rawValue, dimensions: [], by: amount)
    }

    /// Adds `amount` to the series of a labelled counter whose label is `value` (`level="warning"`).
    public func increment(_ metric: Metric.LabelledCounter, _ value: String, by amount: Int = 1) {
        count(metric.rawValue, dimensions: [(metric.label, value)], by: amount)
    }

    private func count(_ name: String, dimensions: [(String, String)], by amount: Int) {
        guard amount >= 0 else { return }
        let series = Self.series(name, dimensions)
        state.withLock { state in
            Self.instrument(series, in: &state.counters) {
                CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
            }.increment(by: Int64(amount))
            state.values[series, default: 0] += Double(amount)
        }
    }

    /// Sets a gauge.
    public func set(_ metric: Metric.Gauge, _ value: Double) {
        let name = metric.rawValue
        state.withLock { state in
            Self.instrument(name, in: &state.gauges) { CoreMetrics.Gauge(label: name, factory: factory) }.record(value)
            state.values[name] = value
        }
    }

    /// Records one duration, in seconds, in a histogram.
    public func observe(_ metric: Metric.Histogram, seconds: Double) {
        guard seconds.isFinite else { return }
        let seconds = max(0, seconds)
        let name = metric.rawValue
        state.withLock { state in
            Self.instrument(name, in: &state.timers) { CoreMetrics.Timer(label: name, factory: factory) }
                .recordSeconds(seconds)
            state.values[name + "_count", default: 0] += 1
            state.values[name + "_sum", default: 0] += seconds
        }
    }

    /// The instrument of `series` in `table`, made on its first use.
    private static func instrument<Instrument>(
        _ series: String, in table: inout [String: Instrument], make: () -> Instrument
    ) -> Instrument {
        if let existing = table[series] { return existing }
        let made = make()
        table[series] = made
        return made
    }

    /// One group commit's duration.
    public func observeCommit(seconds: Double) { observe(.commitSeconds, seconds: seconds) }

    /// Ready means consuming; not ready (broker down, rebuilding) is still alive.
    public func setReady(_ ready: Bool, reason: String = "") {
        state.withLock {
            $0.ready = ready
            $0.notReadyReason = reason
            $0.values[Metric.Gauge.ready.rawValue] = ready ? 1 : 0
            readyGauge.record(ready ? 1 : 0)
        }
    }

    public var readiness: (ready: Bool, reason: String) { state.withLock { ($0.ready, $0.notReadyReason) } }

    /// A counter's total so far (0 before its first use).
    public func value(_ metric: Metric.Counter) -> Double { read(metric.rawValue) }
    /// The total of a labelled counter's series whose label is `value`.
    public func value(_ metric: Metric.LabelledCounter, _ value: String) -> Double {
        read(Self.series(metric.rawValue, [(metric.label, value)]))
    }
    /// A gauge's value (0 before it is first set).
    public func value(_ metric: Metric.Gauge) -> Double { read(metric.rawValue) }
    /// How many durations a histogram has recorded.
    public func count(_ metric: Metric.Histogram) -> Double { read(metric.rawValue + "_count") }
    /// The sum of a histogram's durations, in seconds.
    public func sum(_ metric: Metric.Histogram) -> Double { read(metric.rawValue + "_sum") }

    private func read(_ series: String) -> Double { state.withLock { $0.values[series] ?? 0 } }

    /// The Prometheus text exposition (format 0.0.4): `# HELP` and `# TYPE` for every metric, families in name order.
    public func render() -> String {
        Self.sortedByFamily(registry.emitToString())
    }

    /// `sameday_alerts_total{level="warning"}`: the key of one series, as the exposition writes it.
    static func series(_ name: String, _ dimensions: [(String, String)]) -> String {
        guard !dimensions.isEmpty else { return name }
        // Built for every count (each event, each alert): no Foundation search for a label value that needs no
        // escaping, which is every one SameDay sets.
        var out = name
        out.reserveCapacity(name.utf8.count + dimensions.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 } + 2)
        out += "{"
        for (i, (label, value)) in dimensions.enumerated() {
            if i > 0 { out += "," }
            out += label
            out += "=\""
            if value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 0x0A }) {
                out += value.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            } else {
                out += value
            }
            out += "\""
        }
        out += "}"
        return out
    }

    /// The registry emits families in hash order; put them in name order (the lines of one family stay together and
    /// in their order: a histogram's buckets ascend), and a counter's or gauge's labelled lines in text order.
    static func sortedByFamily(_ text: String) -> String {
        var families: [(name: String, header: [Substring], samples: [Substring], sortSamples: Bool)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# ") {
                let words = line.split(separator: " ", maxSplits: 3)
                let name = words.count > 2 ? String(words[2]) : ""
                if families.last?.name != name { families.append((name, [], [], true)) }
                families[families.count - 1].header.append(line)
                if words.count > 3, words[1] == "TYPE", words[3] == "histogram" {
                    families[families.count - 1].sortSamples = false
                }
            } else if families.isEmpty {
                families.append(("", [], [line], false))
            } else {
                families[families.count - 1].samples.append(line)
            }
        }
        var out = ""
        for family in families.sorted(by: { $0.name < $1.name }) {
            for line in family.header { out += line + "\n" }
            for line in family.sortSamples ? family.samples.sorted() : family.samples { out += line + "\n" }
        }
        return out
    }

    static func helpText(_ name: String) -> String {
        Metric.help[name] ?? "\(name) (not a SameDay metric: add it to Metric)"
    }

    static func buckets(_ name: String) -> [Double] {
        (Metric.Histogram(rawValue: name) ?? .snapshotSeconds).buckets
    }
}

/// swift-metrics' factory protocol over one swift-prometheus registry, with the `# HELP` texts of `Metric`
/// and its histogram buckets (swift-prometheus' own `PrometheusMetricsFactory` registers every metric without help).
public struct WorkerMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: WorkerMetrics.helpText(label))
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)])
        -> any FloatingPointCounterHandler
    {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        aggregate
            ? registry.makeValueHistogram(
                descriptor: descriptor(label), labels: dimensions, buckets: WorkerMetrics.buckets(label))
            : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: WorkerMetrics.buckets(label).map { .nanoseconds(Int64(($0 * 1e9).rounded())) })
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
