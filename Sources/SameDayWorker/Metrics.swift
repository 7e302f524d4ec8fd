import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The worker's counters and gauges, rendered in Prometheus text format. Written by the worker thread, read by the
/// metrics endpoint's thread; one lock, no allocation on the hot path beyond the dictionary update.
public final class WorkerMetrics: Sendable {
    private struct State {
        var counters: [String: Double] = [:]
        var gauges: [String: Double] = [:]
        var commitSeconds: [Double] = []  // recent commit latencies, for a summary
        var ready = false
        var notReadyReason = "starting"
    }
    private let state = Mutex(State())

    public init() {}

    public func increment(_ name: String, by value: Double = 1, labels: String = "") {
        state.withLock { $0.counters[name + labels, default: 0] += value }
    }

    public func set(_ name: String, _ value: Double, labels: String = "") {
        state.withLock { $0.gauges[name + labels] = value }
    }

    public func observe(_ name: String, seconds: Double) {
        state.withLock {
            $0.counters[name + "_count", default: 0] += 1
            $0.counters[name + "_sum", default: 0] += seconds
        }
    }

    public func observeCommit(seconds: Double) {
        state.withLock {
            $0.commitSeconds.append(seconds)
            if $0.commitSeconds.count > 1024 { $0.commitSeconds.removeFirst(512) }
            $0.counters["sameday_commits_total", default: 0] += 1
            $0.counters["sameday_commit_seconds_sum", default: 0] += seconds
        }
    }

    /// Ready means consuming; not ready (broker down, rebuilding) is still alive.
    public func setReady(_ ready: Bool, reason: String = "") {
        state.withLock {
            $0.ready = ready
            $0.notReadyReason = reason
        }
    }

    public var readiness: (ready: Bool, reason: String) { state.withLock { ($0.ready, $0.notReadyReason) } }

    public func value(_ name: String) -> Double { state.withLock { $0.counters[name] ?? $0.gauges[name] ?? 0 } }

    public func render() -> String {
        state.withLock { state in
            var lines: [String] = []
            for (name, value) in state.counters.sorted(by: { $0.key < $1.key }) {
                lines.append("\(name) \(format(value))")
            }
            for (name, value) in state.gauges.sorted(by: { $0.key < $1.key }) {
                lines.append("\(name) \(format(value))")
            }
            let sorted = state.commitSeconds.sorted()
            for quantile in [0.5, 0.99] where !sorted.isEmpty {
                let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]
                lines.append("sameday_commit_seconds{quantile=\"\(quantile)\"} \(format(value))")
            }
            lines.append("sameday_ready \(state.ready ? 1 : 0)")
            return lines.joined(separator: "\n") + "\n"
        }
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// A minimal HTTP/1.1 endpoint on loopback for Prometheus and health checks: `GET /metrics`, `GET /healthz`
/// (alive: the process answers), `GET /readyz` (200 while consuming, 503 with the reason otherwise — a broker outage
/// makes the worker not ready, never "dead"). One request per connection; runs on a thread of its own.
public final class MetricsEndpoint: Sendable {
    private let socketFD: Int32
    public let port: Int

    public init(listen: String, metrics: WorkerMetrics) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw WorkerConfiguration.Invalid(description: "metricsListen \"\(listen)\": expected HOST:PORT")
        }
        let host = String(listen[..<colon])
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WorkerConfiguration.Invalid(description: "metrics: socket() failed") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw WorkerConfiguration.Invalid(description: "metricsListen \"\(listen)\": not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            Glibc.close(fd)
            throw WorkerConfiguration.Invalid(
                description: "metrics: cannot listen on \(listen) (\(String(cString: strerror(errno))))")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.socketFD = fd
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        let thread = Thread { [fd] in Self.serve(fd: fd, metrics: metrics) }
        thread.name = "sameday.metrics"
        thread.start()
    }

    /// Stops accepting (the serving thread ends when accept fails).
    public func close() { shutdown(socketFD, Int32(SHUT_RDWR)); Glibc.close(socketFD) }

    private static func serve(fd: Int32, metrics: WorkerMetrics) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            var buffer = [UInt8](repeating: 0, count: 2048)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let count = recv(client, &buffer, buffer.count, 0)
            let request = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
            let path = request.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let (status, body): (String, String)
            switch path {
            case "/metrics": (status, body) = ("200 OK", metrics.render())
            case "/healthz": (status, body) = ("200 OK", "alive\n")
            case "/readyz":
                let readiness = metrics.readiness
                (status, body) =
                    readiness.ready ? ("200 OK", "ready\n") : ("503 Service Unavailable", readiness.reason + "\n")
            default: (status, body) = ("404 Not Found", "try /metrics, /healthz or /readyz\n")
            }
            let response =
                "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            Glibc.close(client)
        }
    }
}
