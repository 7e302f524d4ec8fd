import RabbitMQ
import ServiceLifecycle

/// The forwarder as a swift-service-lifecycle `Service`: its publisher thread runs from `run()` until the group shuts
/// down gracefully (or the task is cancelled); then it answers the requests already queued and closes. In
/// `sameday receive`'s group it comes before the HTTP application, so the application stops taking requests first
/// and the forwarder stops after the last one was answered.
extension EventForwarder: Service {
    public func run() async throws {
        start()
        // Returns on graceful shutdown; throws CancellationError on cancellation. Either way: stop, then return.
        try? await gracefulShutdown()
        // `stop()` waits for the publisher thread: not on the cooperative pool.
        try await BlockingThread.run(name: "sameday.receiver.stop") { [self] in stop() }
    }
}
