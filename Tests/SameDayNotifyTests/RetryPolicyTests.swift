import Foundation
import Testing

@testable import SameDayNotify

/// The pure parts of the channels: no process, no socket, no clock.
@Suite("Delivery retries: backoff, Retry-After, giving up; reasons bounded and printable")
struct RetryPolicyTests {
    let policy = RetryPolicy.standard
    let now: Int64 = 1_652_862_630

    @Test("a retryable failure waits 30 s, doubling to 15 min, and fails after the 8th attempt")
    func backoff() {
        let delays = (1...7).map { attempt -> Int64? in
            if case .retry(let at) = policy.decide(
                attempt: attempt, outcome: .retryable(reason: "HTTP 500"), at: now)
            {
                return at - now
            }
            return nil
        }
        #expect(delays == [30, 60, 120, 240, 480, 900, 900])
        #expect(delays.compactMap { $0 }.reduce(0, +) == 2730, "about 45 minutes in all")
        #expect(
            policy.decide(attempt: 8, outcome: .retryable(reason: "HTTP 500"), at: now)
                == .failed(reason: "HTTP 500", attempts: 8))
        #expect(
            policy.decide(attempt: 9, outcome: .retryable(reason: "HTTP 500"), at: now)
                == .failed(reason: "HTTP 500", attempts: 9))
    }

    @Test("delivered is done and a permanent failure fails at once, whatever the attempt")
    func terminal() {
        #expect(policy.decide(attempt: 1, outcome: .delivered, at: now) == .delivered)
        #expect(policy.decide(attempt: 8, outcome: .delivered, at: now) == .delivered)
        #expect(
            policy.decide(attempt: 1, outcome: .permanent(reason: "HTTP 403"), at: now)
                == .failed(reason: "HTTP 403", attempts: 1))
    }

    @Test("Retry-After replaces the backoff, at least 1 s and at most maxRetryAfter")
    func retryAfter() {
        func wait(_ attempt: Int, _ retryAfter: Int64?) -> Int64? {
            if case .retry(let at) = policy.decide(
                attempt: attempt, outcome: .retryable(reason: "HTTP 429", retryAfter: retryAfter), at: now)
            {
                return at - now
            }
            return nil
        }
        #expect(wait(1, 7) == 7, "shorter than the backoff: the server knows")
        #expect(wait(5, 7) == 7)
        #expect(wait(1, 600) == 600, "longer than the backoff: honoured")
        #expect(wait(1, 0) == 1, "never at once")
        #expect(wait(1, -5) == 1)
        #expect(wait(1, 86_400) == 3600, "a day is bounded to an hour")
        #expect(wait(1, Int64.max) == 3600)
        #expect(wait(8, 7) == nil, "the last attempt fails even with a Retry-After")
    }

    @Test("a huge attempt number or a small cap does not overflow")
    func bounds() {
        let small = RetryPolicy(maxAttempts: 1000, baseDelay: 1, maxDelay: 5, maxRetryAfter: 10)
        #expect((1...5).map { small.delay(afterAttempt: $0, retryAfter: nil) } == [1, 2, 4, 5, 5])
        #expect(small.delay(afterAttempt: Int.max, retryAfter: nil) == 5)
        #expect(small.delay(afterAttempt: 0, retryAfter: nil) == 1)
        #expect(small.delay(afterAttempt: -3, retryAfter: nil) == 1)
        let huge = RetryPolicy(maxAttempts: 3, baseDelay: 1 << 61, maxDelay: Int64.max, maxRetryAfter: 1)
        #expect(huge.delay(afterAttempt: 200, retryAfter: nil) == Int64.max)
        let once = RetryPolicy(maxAttempts: 1, baseDelay: 30, maxDelay: 900, maxRetryAfter: 3600)
        #expect(
            once.decide(attempt: 1, outcome: .retryable(reason: "timeout"), at: now)
                == .failed(reason: "timeout", attempts: 1))
    }

    @Test("a body in a reason is bounded and its control characters escaped")
    func printable() {
        #expect(
            DeliveryOutcome.printable(Array("  line one\nline\ttwo\u{1B}[31m\r\n".utf8))
                == "line one\\nline\\ttwo\\u{1B}[31m")
        #expect(DeliveryOutcome.printable(Array("a\u{202E}b\u{85}c\\".utf8)) == "a\\u{202E}b\\u{85}c\\\\")
        #expect(DeliveryOutcome.printable([0xFF, 0x41]) == "\u{FFFD}A")
        let long = DeliveryOutcome.printable(Array(String(repeating: "x", count: 10_000).utf8), limit: 300)
        #expect(long.count == 301 && long.hasSuffix("…"))
    }
}

extension DeliveryOutcome {
    var isPermanent: Bool { if case .permanent = self { true } else { false } }
    var isRetryable: Bool { if case .retryable = self { true } else { false } }
    var retryAfter: Int64? { if case .retryable(_, let after) = self { after } else { nil } }
}
