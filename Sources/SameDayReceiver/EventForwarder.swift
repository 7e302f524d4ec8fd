import Foundation
import Logging
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore

/// What the broker side needs; everything here is `Sendable`, the publisher itself is made on the forwarder's thread.
public struct ForwarderSettings: Sendable {
    public var publisher: PublisherConfiguration
    public var spool: Spool
    public var configuration: Configuration
    public var names: SameDayProducerNames
    public var retryInterval: Duration

    public init(
        publisher: PublisherConfiguration, spool: Spool, configuration: Configuration, names: SameDayProducerNames,
        retryInterval: Duration = .seconds(5)
    ) {
        self.publisher = publisher
        self.spool = spool
        self.configuration = configuration
        self.names = names
        self.retryInterval = retryInterval
    }
}

/// How a request's events became safe.
public struct ForwardResult: Sendable, Equatable {
    public var confirmed = 0
    public var spooled = 0
    public var unroutable = 0
}

/// Hands HTTP requests' events to one `DurablePublisher` living on a dedicated thread (rabbitmq-c is blocking and
/// not thread-safe, so it never runs on Swift's cooperative pool). Requests that arrive together are published
/// together and wait for one round of confirms (group commit), so the HTTP concurrency becomes broker batching.
public final class EventForwarder: @unchecked Sendable {
    private struct Job {
        var events: [DossierEvent]
        var continuation: CheckedContinuation<ForwardResult, any Error>
    }

    public let settings: ForwarderSettings
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var stopping = false
    private var spooling = false
    private var thread: Thread?
    private let finished = NSCondition()
    private var done = false
    private let logger: Logger

    public init(settings: ForwarderSettings, logger: Logger = Logger(label: "sameday.receiver")) {
        self.settings = settings
        self.logger = logger
    }

    /// Whether the broker is unavailable and events go to the spool.
    public var isSpooling: Bool {
        condition.lock()
        defer { condition.unlock() }
        return spooling
    }

    public func start() {
        let thread = Thread { [weak self] in self?.loop() }
        thread.name = "sameday.receiver.publisher"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops after the queued requests are answered.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.lock()
        while thread != nil && !done { finished.wait() }
        finished.unlock()
        // The thread's closure holds this forwarder: let go of the thread, so that the forwarder (and its spool,
        // whose lock another receiver may need next) is released.
        thread = nil
    }

    /// Returns once every event is confirmed by the broker or fsynced to the spool.
    public func forward(_ events: [DossierEvent]) async throws -> ForwardResult {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if stopping {
                condition.unlock()
                continuation.resume(throwing: AdapterError("the receiver is shutting down"))
                return
            }
            jobs.append(Job(events: events, continuation: continuation))
            condition.signal()
            condition.unlock()
        }
    }

    private func loop() {
        let publisher = DurablePublisher(
            publisher: settings.publisher, spool: settings.spool, configuration: settings.configuration,
            names: settings.names, retryInterval: settings.retryInterval, logger: logger)
        var nextToken = 0
        while true {
            condition.lock()
            if jobs.isEmpty && !stopping { _ = condition.wait(until: Date().addingTimeInterval(1)) }
            let batch = jobs
            jobs.removeAll()
            let exit = stopping && batch.isEmpty
            condition.unlock()
            if exit { break }
            if batch.isEmpty {
                do { try publisher.retryIfDue() } catch {
                    logger.error("spool flush failed", metadata: ["error": "\(error)"])
                }
                setSpooling(publisher.isSpooling)
                continue
            }
            var results = [ForwardResult](repeating: ForwardResult(), count: batch.count)
            var jobOfToken: [Int: Int] = [:]
            publisher.onDurable = { token, outcome in
                guard let job = jobOfToken[token] else { return }
                switch outcome {
                case .confirmed: results[job].confirmed += 1
                case .spooled: results[job].spooled += 1
                case .unroutable: results[job].unroutable += 1
                }
            }
            do {
                for (index, job) in batch.enumerated() {
                    for event in job.events {
                        jobOfToken[nextToken] = index
                        try publisher.submit(event, token: nextToken)
                        nextToken += 1
                    }
                }
                try publisher.drain()
                for (index, job) in batch.enumerated() { job.continuation.resume(returning: results[index]) }
            } catch {
                // The whole group is answered with the error; events of it that did get through are duplicates
                // when the caller retries, which the worker drops.
                for job in batch { job.continuation.resume(throwing: error) }
                publisher.discardPending()
            }
            publisher.onDurable = nil
            setSpooling(publisher.isSpooling)
        }
        publisher.close()
        finished.lock()
        done = true
        finished.broadcast()
        finished.unlock()
    }

    private func setSpooling(_ value: Bool) {
        condition.lock()
        spooling = value
        condition.unlock()
    }
}
