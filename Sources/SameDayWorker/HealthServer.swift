import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The worker's HTTP endpoint for Prometheus and health checks, a Hummingbird application run as a
/// swift-service-lifecycle `Service` (`metricsListen`, loopback by default):
///
/// - `GET /metrics`: `WorkerMetrics.render()`, `text/plain; version=0.0.4`;
/// - `GET /healthz`: 200 `ok` while the process answers (alive);
/// - `GET /readyz`: 200 `ready` while consuming, 503 with the reason otherwise (rebuilding, stopping, the broker
///   away — not ready is never "dead").
///
/// Run it in the worker's `ServiceGroup` before the worker, so that it shuts down after the worker stopped and
/// `/readyz` says "stopping" meanwhile.
public struct HealthServer: Service {
    /// The address asked for, `HOST:PORT` (`localhost` means 127.0.0.1; port 0 lets the system choose).
    public let listen: String
    let host: String
    let requestedPort: Int
    let metrics: WorkerMetrics
    let logger: Logger
    private let bound: BoundPort

    /// Checks the address; listens only once `run()` runs.
    public init(listen: String, metrics: WorkerMetrics, logger: Logger = Logger(label: "sameday.health")) throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65_535).contains(port), colon > listen.startIndex
        else {
            throw WorkerConfiguration.Invalid(description: "metricsListen \"\(listen)\": expected HOST:PORT")
        }
        var host = String(listen[..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.listen = listen
        self.host = host
        self.requestedPort = port
        self.metrics = metrics
        self.logger = logger
        self.bound = BoundPort()
    }

    /// The three routes, for `run()` and for tests that drive the router without a socket.
    public static func router(metrics: WorkerMetrics) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/metrics") { _, _ -> Response in
            text(.ok, metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/healthz") { _, _ -> Response in text(.ok, "ok\n") }
        router.get("/readyz") { _, _ -> Response in
            let readiness = metrics.readiness
            return readiness.ready
                ? text(.ok, "ready\n")
                : text(.serviceUnavailable, (readiness.reason.isEmpty ? "not ready" : readiness.reason) + "\n")
        }
        return router
    }

    static func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8")
        -> Response
    {
        Response(
            status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Serves until graceful shutdown (or cancellation) of its group; throws if it cannot listen.
    public func run() async throws {
        let app = Application(
            router: Self.router(metrics: metrics),
            configuration: .init(address: .hostname(host, port: requestedPort), serverName: "sameday-worker"),
            onServerRunning: { [bound, requestedPort] channel in
                bound.resolve(channel.localAddress?.port ?? requestedPort)
            },
            logger: logger)
        do {
            try await app.run()
        } catch {
            bound.resolve(nil)
            throw WorkerConfiguration.Invalid(description: "metrics: cannot listen on \(listen) (\(error))")
        }
        bound.resolve(nil)
    }

    /// The port the server listens on once it does (the system's choice for port 0); nil if it stopped or failed
    /// before listening.
    public func port() async -> Int? { await bound.wait() }
}

/// The bound port, announced once to whoever waits for it.
final class BoundPort: Sendable {
    private struct State {
        var resolved = false
        var port: Int?
        var waiting: [CheckedContinuation<Int?, Never>] = []
    }
    private let state = Mutex(State())

    func resolve(_ port: Int?) {
        let waiting = state.withLock { state -> [CheckedContinuation<Int?, Never>] in
            guard !state.resolved else { return [] }
            state.resolved = true
            state.port = port
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume(returning: port) }
    }

    func wait() async -> Int? {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> (Bool, Int?) in
                if state.resolved { return (true, state.port) }
                state.waiting.append(continuation)
                return (false, nil)
            }
            if now.0 { continuation.resume(returning: now.1) }
        }
    }
}
