import Foundation
import SameDayFiles

/// Runs blocking rabbitmq-c work on a thread of its own, so that async callers never block Swift's cooperative
/// pool. Everything the closure creates (connections, publishers, consumers) lives and dies on that one thread.
public enum BlockingThread {
    /// Starts a dedicated thread, runs `body` on it and returns its result to the awaiting task.
    public static func run<T: Sendable>(
        name: String = "sameday.amqp", _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                // Foundation's name never reaches the kernel; `top -H` should tell the threads apart.
                NamedThread.nameCurrentThread(name)
                continuation.resume(with: Result { try body() })
            }
            thread.name = name
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}
