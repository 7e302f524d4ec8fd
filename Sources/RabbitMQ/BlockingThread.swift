import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking rabbitmq-c work on a thread of its own, so that async callers never block Swift's cooperative
/// pool. Everything the closure creates (connections, publishers, consumers) lives and dies on that one thread.
public enum BlockingThread {
    /// Starts a dedicated thread, runs `body` on it and returns its result to the awaiting task.
    public static func run<T: Sendable>(
        name: String = "sameday.amqp", _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                // As SameDayFiles' `NamedThread` (this library depends on no SameDay module): Foundation's name
                // never reaches the kernel, and `top -H` should tell the threads apart.
                let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
                if comm >= 0 {
                    let bytes = Array(name.utf8.prefix(15))
                    _ = bytes.withUnsafeBytes { write(comm, $0.baseAddress, $0.count) }
                    close(comm)
                }
                continuation.resume(with: Result { try body() })
            }
            thread.name = name
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}
