import Foundation
import Testing

@testable import SameDayNotify

/// What a webhook's answer means, and `Retry-After` read: pure, no socket.
@Suite("Webhook answers mapped to outcomes; Retry-After in seconds or as a date")
struct WebhookAnswerTests {
    let now: Int64 = 1_652_862_630

    @Test("Retry-After as seconds or as an HTTP-date in its three forms")
    func retryAfterHeader() {
        // 1994-11-06T08:49:37Z
        let date: Int64 = 784_111_777
        #expect(RetryAfter.date("Sun, 06 Nov 1994 08:49:37 GMT") == date)
        #expect(RetryAfter.date("Sunday, 06-Nov-94 08:49:37 GMT") == date)
        #expect(RetryAfter.date("Sun Nov  6 08:49:37 1994") == date)
        #expect(RetryAfter.seconds("120", now: date) == 120)
        #expect(RetryAfter.seconds(" 7 ", now: date) == 7)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:51:37 GMT", now: date) == 120)
        #expect(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:00 GMT", now: date) == 0, "a date past is now")
        #expect(RetryAfter.seconds("99999999999999999999999", now: date) == Int64.max)
        for bad in [
            "", "soon", "-5", "1.5", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        ] {
            #expect(RetryAfter.seconds(bad, now: date) == nil, "\(bad)")
        }
    }

    func answer(_ kind: ChatKind, _ status: Int, _ body: String = "", retryAfter: String? = nil) -> DeliveryOutcome {
        WebhookChannel.outcome(
            kind: kind, status: status, retryAfter: retryAfter, body: Array(body.utf8), target: "hooks.example:443",
            now: now)
    }

    @Test("answers: 2xx delivered (Telegram's with ok: true), 429/5xx/408 retryable, other 4xx and 3xx permanent")
    func answers() {
        #expect(answer(.generic, 200) == .delivered)
        #expect(answer(.generic, 204) == .delivered)
        #expect(answer(.telegram, 200, #"{"ok":true,"result":{"message_id":1}}"#) == .delivered)
        #expect(answer(.telegram, 200, #"{"ok":false,"description":"odd"}"#).isPermanent)
        #expect(answer(.telegram, 200, "<html>proxy</html>").isPermanent, "no JSON: not confirmed")
        #expect(answer(.telegram, 200, #"{"ok":1}"#).isPermanent, "ok must be the JSON true")
        #expect(answer(.zalo, 200, #"{"error":0,"message":"Success"}"#) == .delivered)
        #expect(answer(.zalo, 200, "") == .delivered)
        #expect(
            answer(.zalo, 200, #"{"error":-216,"message":"Access token is invalid"}"#)
                == .permanent(reason: "hooks.example:443 answered 200 with error -216: Access token is invalid"))

        #expect(
            answer(.generic, 429, retryAfter: "7")
                == .retryable(
                    reason: "hooks.example:443 answered 429", retryAfter: 7))
        #expect(answer(.generic, 503, "busy", retryAfter: "30").retryAfter == 30)
        #expect(answer(.generic, 500) == .retryable(reason: "hooks.example:443 answered 500", retryAfter: nil))
        #expect(answer(.generic, 408).isRetryable)
        #expect(answer(.generic, 429, retryAfter: "soon").retryAfter == nil)
        #expect(
            answer(
                .telegram, 429,
                #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 11","parameters":{"retry_after":11}}"#
            )
                == .retryable(
                    reason: "hooks.example:443 answered 429: Too Many Requests: retry after 11", retryAfter: 11))

        #expect(
            answer(.telegram, 400, #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)
                == .permanent(reason: "hooks.example:443 answered 400: Bad Request: chat not found"))
        #expect(answer(.generic, 401).isPermanent)
        #expect(answer(.generic, 404, "no such hook").reason == "hooks.example:443 answered 404: no such hook")
        #expect(answer(.generic, 302).reason == "hooks.example:443 answered 302 (a redirect; not followed)")
    }

    @Test("a huge body in an answer gives a short reason")
    func hugeBody() {
        let reason = answer(.generic, 400, String(repeating: "é", count: 70_000)).reason ?? ""
        #expect(reason.count < 400)
    }
}
