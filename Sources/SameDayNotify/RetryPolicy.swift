import SameDayCore

/// When a message that did not go through is tried again, and when the notify service stops trying and moves it to
/// the failed-deliveries outbox (docs/notify.md, "Channels"). Pure and deterministic: the caller passes the attempt
/// number and the time; there is no jitter (each person's messages go out one at a time, so retries of many messages
/// do not arrive in step the way a fleet of clients does).
///
/// - The first retry waits `baseDelay`; each next one twice the one before, up to `maxDelay`.
/// - A `Retry-After` from the other side replaces the backoff: SameDay waits what it was told (at least one second),
///   but never longer than `maxRetryAfter`, so a server asking for a day cannot park an alert for a day.
/// - Attempt `maxAttempts` is the last: if it is not delivered the message has failed. A permanent outcome fails at
///   once, whatever the attempt.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    /// Seconds before the first retry.
    public var baseDelay: Int64
    /// The longest backoff, in seconds.
    public var maxDelay: Int64
    /// The longest wait a `Retry-After` can ask for, in seconds.
    public var maxRetryAfter: Int64

    /// 8 attempts, 30 s doubling to at most 15 min: retries after 30 s, 1, 2, 4, 8 and 15 min and 15 min again, so
    /// a message fails about 45 minutes after its first attempt; a `Retry-After` is honoured up to one hour.
    public static let standard = RetryPolicy(maxAttempts: 8, baseDelay: 30, maxDelay: 900, maxRetryAfter: 3600)

    /// - Precondition: `maxAttempts` ≥ 1, `baseDelay` ≥ 1, `maxDelay` ≥ `baseDelay`, `maxRetryAfter` ≥ 1 (a
    ///   configuration loader checks these and says which is wrong before building a policy).
    public init(maxAttempts: Int, baseDelay: Int64, maxDelay: Int64, maxRetryAfter: Int64) {
        precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
        precondition(baseDelay >= 1 && maxDelay >= baseDelay, "delays must satisfy 1 ≤ baseDelay ≤ maxDelay")
        precondition(maxRetryAfter >= 1, "maxRetryAfter must be at least 1")
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// What to do after attempt number `attempt` (1 for the first) ended with `outcome` at `now`.
    public func decide(attempt: Int, outcome: DeliveryOutcome, at now: Instant) -> RetryDecision {
        switch outcome {
        case .delivered:
            return .delivered
        case .permanent(let reason):
            return .failed(reason: reason, attempts: max(attempt, 1))
        case .retryable(let reason, let retryAfter):
            guard attempt < maxAttempts else { return .failed(reason: reason, attempts: max(attempt, 1)) }
            return .retry(at: now + delay(afterAttempt: attempt, retryAfter: retryAfter))
        }
    }

    /// Seconds to wait after attempt `attempt` failed: the server's `Retry-After` (bounded to 1…`maxRetryAfter`)
    /// when it gave one, else `baseDelay` · 2^(attempt − 1) capped at `maxDelay`.
    public func delay(afterAttempt attempt: Int, retryAfter: Int64?) -> Int64 {
        if let retryAfter { return min(max(retryAfter, 1), maxRetryAfter) }
        var delay = baseDelay
        var doublings = max(attempt, 1) - 1
        while doublings > 0 && delay < maxDelay {
            delay = delay > maxDelay / 2 ? maxDelay : delay * 2
            doublings -= 1
        }
        return min(delay, maxDelay)
    }
}

/// The retry policy's answer for one attempt.
public enum RetryDecision: Sendable, Equatable {
    /// Done: the channel took the message.
    case delivered
    /// Try again at this instant (seconds since 1970, as everywhere in SameDay).
    case retry(at: Instant)
    /// Stop: the message goes to the failed-deliveries outbox with this reason, after this many attempts.
    case failed(reason: String, attempts: Int)
}
