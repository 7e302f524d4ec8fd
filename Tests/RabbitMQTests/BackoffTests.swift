import Testing

@testable import RabbitMQ

@Suite("Reconnect backoff")
struct BackoffTests {
    @Test("doubles from the initial delay and stops at the maximum")
    func exponential() {
        var backoff = Backoff(
            policy: .init(
                initialDelay: .milliseconds(100), maximumDelay: .seconds(1), jitter: 0.2, maximumAttempts: nil),
            random: { _ in 0 })
        let delays = (0..<6).map { _ in backoff.nextDelay() }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
                .seconds(1),
            ])
    }

    @Test("jitter stays within ±jitter × delay")
    func jitterBounds() {
        for _ in 0..<200 {
            var backoff = Backoff(policy: .init(initialDelay: .seconds(1), jitter: 0.25))
            let delay = backoff.nextDelay()
            #expect(delay >= .milliseconds(750) && delay <= .milliseconds(1250))
        }
    }

    @Test("the spread is taken from the injected random source")
    func pinnedJitter() {
        var backoff = Backoff(policy: .init(initialDelay: .seconds(2), jitter: 0.5), random: { $0.upperBound })
        #expect(backoff.nextDelay() == .seconds(3))
    }

    @Test("gives up after the maximum attempts and starts again after a reset")
    func attempts() {
        var backoff = Backoff(policy: .init(maximumAttempts: 3), random: { _ in 0 })
        for _ in 0..<3 {
            #expect(backoff.mayRetry)
            _ = backoff.nextDelay()
        }
        #expect(!backoff.mayRetry)
        backoff.reset()
        #expect(backoff.mayRetry && backoff.nextDelay() == .milliseconds(100))
    }
}
