import Foundation
import Logging
import RabbitMQ
import SameDayCore

/// What a long-running consumer (a shard's worker, `sameday sources`) does at each point of the consume loop they
/// share (`runConsumeLoop`).
protocol ConsumeLoopParticipant: AnyObject {
    /// How the logs name it ("worker", "sources").
    var role: String { get }
    /// What it consumes, for readiness and logs.
    var source: String { get }
    /// Opens the consumer (logging that it consumes); the loop retries every second while the broker is away.
    func subscribe() throws(AMQPError) -> Consumer
    /// A step while no consumer is open: timers keep firing, confirms are still marked.
    func stepWithoutConsumer() throws
    /// How long the next wait for a delivery may last.
    func waitBeforeNextDelivery() -> Duration
    func handle(_ delivery: Delivery)
    /// Nothing arrived within `waited`.
    func nothingArrived(waited: Duration, connected: Bool)
    /// The consumer reconnected (and subscribed again) `times` times since the last call. True: close it and
    /// subscribe anew, without a step.
    func resubscribed(_ consumer: Consumer, times: Int) throws -> Bool
    /// The step after each wait: commit, ack, snapshot, as due.
    func step(consumer: Consumer, idle: Bool) throws
    /// Graceful stop: the last batch committed and acked.
    func finish(consumer: Consumer?) throws
}

extension ConsumeLoopParticipant {
    func nothingArrived(waited: Duration, connected: Bool) {}
}

/// Consumes until `stop` is requested: opens the consumer (retrying every second while the broker is away, stepping
/// meanwhile), waits for deliveries, counts errors and reconnects, keeps readiness true only while connected, and
/// steps the participant after every wait; then finishes it and closes the consumer. Throws an error it cannot
/// wait out (one that is not retriable).
func runConsumeLoop(
    _ participant: some ConsumeLoopParticipant, until stop: StopFlag, metrics: WorkerMetrics, logger: Logger
) throws {
    var consumer: Consumer?
    defer { consumer?.close() }
    var reconnectsSeen = 0
    while !stop.isRequested {
        if consumer == nil {
            do {
                consumer = try participant.subscribe()
                reconnectsSeen = 0
                metrics.setReady(true)
            } catch {
                // Down is not dead: timers keep firing into the outbox and the files while the broker is away.
                metrics.setReady(false, reason: "cannot consume \(participant.source): \(error)")
                logger.warning("\(participant.role) cannot consume yet", metadata: ["error": "\(error)"])
                if !error.isRetriable && error.kind != .channelClosed { throw error }
                try participant.stepWithoutConsumer()
                sleep(.seconds(1), unless: stop)
                continue
            }
        }
        guard let active = consumer else { continue }
        var received: Delivery?
        do {
            let wait = participant.waitBeforeNextDelivery()
            received = try active.next(timeout: wait)
            if received == nil { participant.nothingArrived(waited: wait, connected: active.isConnected) }
        } catch {
            metrics.setReady(false, reason: "\(error)")
            metrics.increment(.consumerErrorsTotal)
            logger.warning("\(participant.role) consumer error", metadata: ["error": "\(error)"])
            if !error.isRetriable { throw error }
        }
        // `next` may have subscribed again and returned the new channel's first delivery: the participant forgets
        // the old channel's deliveries before it is handed one of the new channel, or it would forget that one too
        // (and a later multiple ack would ack it unprocessed).
        if active.reconnectCount > reconnectsSeen {
            let times = active.reconnectCount - reconnectsSeen
            metrics.increment(.consumerReconnectsTotal, by: times)
            reconnectsSeen = active.reconnectCount
            if try participant.resubscribed(active, times: times) {
                active.close()
                consumer = nil
                continue
            }
        }
        if let received { participant.handle(received) }
        metrics.setReady(active.isConnected, reason: active.isConnected ? "" : "reconnecting to the broker")
        try participant.step(consumer: active, idle: received == nil)
    }
    metrics.setReady(false, reason: "stopping")
    try participant.finish(consumer: consumer)
}

/// Sleeps in short naps until `duration` has passed or `stop` is requested.
func sleep(_ duration: Duration, unless stop: StopFlag) {
    let until = ContinuousClock.now + duration
    while !stop.isRequested && ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.05) }
}

/// Declares a service's own queue (idempotent: the queue's arguments live in one place, the service's code) on a
/// connection of its own, then opens the consumer: what `sameday notify` and `sameday board` do to subscribe.
func consumeDeclaring(
    _ declarations: Topology, queue: String, connection: ConnectionConfiguration, prefetch: UInt16, role: String,
    logger: Logger
) throws(AMQPError) -> Consumer {
    var admin = connection
    admin.connectionName += " declare"
    admin.reconnect.maximumAttempts = 1
    let declaring = try Connection.open(admin)
    defer { declaring.close() }
    try declarations.declare(on: declaring)
    var consuming = connection
    consuming.connectionName += " consumer"
    let consumer = try Consumer(
        ConsumerConfiguration(connection: consuming, queue: queue, prefetch: prefetch), logger: logger)
    logger.info("\(role) consuming", metadata: ["amqp.queue": "\(queue)"])
    return consumer
}

/// An alert as a service that reads `sameday.alerts` takes it (`sameday notify`, `sameday board`): at most
/// `maxBodyBytes` (a worker's alert is well under 2 KiB), decoded by the core; otherwise the refusal to dead-letter.
enum AlertDelivery {
    static let maxBodyBytes = 64 * 1024

    struct Refusal: Error {
        var code: String
        var reason: String
    }

    static func read(_ delivery: Delivery) -> Result<Alert, Refusal> {
        guard delivery.body.count <= maxBodyBytes else {
            return .failure(
                Refusal(code: "too_large", reason: "\(delivery.body.count) bytes; at most \(maxBodyBytes)"))
        }
        do throws(ConfigurationError) {
            return .success(try Alert.decode(json: delivery.body, source: "alert"))
        } catch {
            return .failure(Refusal(code: "invalid_alert", reason: error.description))
        }
    }
}
