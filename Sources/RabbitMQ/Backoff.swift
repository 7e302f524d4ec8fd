/// Exponential backoff with jitter for reconnects: delay n is `initial × multiplier^n`, capped at `maximum`, then
/// spread by ±`jitter` so that many clients that lost the same broker do not all come back at the same instant.
public struct Backoff: Sendable {
    public struct Policy: Sendable, Equatable {
        public var initialDelay: Duration
        public var maximumDelay: Duration
        public var multiplier: Double
        /// Fraction of the delay used as random spread, 0 … 1.
        public var jitter: Double
        /// Attempts before an operation gives up and reports a retriable error; nil = never give up.
        public var maximumAttempts: Int?

        public init(
            initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(10),
            multiplier: Double = 2, jitter: Double = 0.2, maximumAttempts: Int? = 8
        ) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.multiplier = multiplier
            self.jitter = jitter
            self.maximumAttempts = maximumAttempts
        }
    }

    public let policy: Policy
    /// Failed attempts since the last success.
    public private(set) var attempts = 0
    private var random: @Sendable (ClosedRange<Double>) -> Double

    /// `random` is injectable so tests can pin the jitter.
    public init(
        policy: Policy, random: @escaping @Sendable (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) {
        self.policy = policy
        self.random = random
    }

    /// Whether the policy allows another attempt.
    public var mayRetry: Bool {
        guard let maximum = policy.maximumAttempts else { return true }
        return attempts < maximum
    }

    /// Records a failure and returns how long to wait before the next attempt.
    public mutating func nextDelay() -> Duration {
        let exponent = Double(attempts)
        attempts += 1
        let base = min(policy.initialDelay.seconds * pow(policy.multiplier, exponent), policy.maximumDelay.seconds)
        let spread = base * min(max(policy.jitter, 0), 1)
        let seconds = max(0, base + random(-spread...spread))
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// Forgets past failures after a success.
    public mutating func reset() { attempts = 0 }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
