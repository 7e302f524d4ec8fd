import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing

@testable import SameDayCore
@testable import SameDayNotify

/// An HTTP server on 127.0.0.1 (Hummingbird, in this process) that records every request and answers as told: the
/// webhook sinks of the tests.
final class HookSink: @unchecked Sendable {
    enum Reply: Sendable {
        case answer(status: Int, headers: [String: String] = [:], body: String = "")
        /// Holds the request until `release()` (or 10 s): a server that never answers.
        case hang
    }

    struct Recorded: Sendable {
        var method: String
        var path: String
        /// By lowercased name.
        var headers: [String: String]
        var body: String

        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    private let lock = NSLock()
    private var replies: [Reply] = []
    private var fallback = Reply.answer(status: 200, body: #"{"ok":true}"#)
    private var recorded: [Recorded] = []
    private var released = false

    /// Answers the next requests with `replies`, in order, then with `fallback`.
    func script(_ replies: [Reply], then fallback: Reply? = nil) {
        lock.withLock {
            self.replies = replies
            if let fallback { self.fallback = fallback }
        }
    }

    var requests: [Recorded] { lock.withLock { recorded } }

    func release() { lock.withLock { released = true } }

    var isReleased: Bool { lock.withLock { released } }

    func take(_ request: Recorded) -> Reply {
        lock.withLock {
            recorded.append(request)
            return replies.isEmpty ? fallback : replies.removeFirst()
        }
    }

    /// Runs a server for `body`, on 127.0.0.1 at a port the system picks, and stops it afterwards.
    static func serving<T: Sendable>(_ body: @Sendable (HookSink, Int) async throws -> T) async throws -> T {
        let sink = HookSink()
        let router = Router()
        router.post("**") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let reply = sink.take(
                Recorded(
                    method: request.method.rawValue, path: request.uri.path, headers: headers,
                    body: String(buffer: bytes)))
            switch reply {
            case .hang:
                var waited = 0
                while !sink.isReleased && waited < 500 {
                    try await Task.sleep(for: .milliseconds(20))
                    waited += 1
                }
                return Response(status: .serviceUnavailable)
            case .answer(let status, let extra, let text):
                var fields = HTTPFields()
                for (name, value) in extra { fields.append(HTTPFields.Element(name: .init(name)!, value: value)) }
                return Response(
                    status: .init(code: status), headers: fields,
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }
        let (ports, portSender) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "hook-sink")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portSender.yield(channel.localAddress?.port ?? 0)
                portSender.finish()
            }, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw HookSinkError.notListening }
            do {
                let value = try await body(sink, port)
                sink.release()
                group.cancelAll()
                return value
            } catch {
                sink.release()
                group.cancelAll()
                throw error
            }
        }
    }
}

enum HookSinkError: Error { case notListening }

@Suite("Webhooks over loopback: bodies and headers per kind, answers mapped, timeouts, tokens kept out of reasons")
struct WebhookTests {
    static let token = "7012345678:AAHsecretTOKENvalue_x-9"

    func channel(_ endpoint: WebhookChannel.Settings.Endpoint, timeout: Duration = .seconds(5)) throws
        -> WebhookChannel
    {
        try WebhookChannel(.init(endpoint, timeout: timeout))
    }

    func deliver(_ channel: WebhookChannel, _ message: ChatMessage) async -> DeliveryOutcome {
        await onThread { channel.deliver(message) }
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("generic: the body as rendered, a bearer token from its file, the alert ids in X-SameDay-Alerts")
    func generic() async throws {
        let folder = try TemporaryFolder("hook-generic")
        defer { folder.remove() }
        let tokenFile = try folder.write("bearer", "s3cret-bearer\n")
        try await HookSink.serving { sink, port in
            let channel = try channel(
                .generic(url: "http://127.0.0.1:\(port)/hooks/sameday?team=q1", bearerTokenFile: tokenFile))
            defer { try? channel.syncShutdown() }
            let message = ChannelFixture.chat(.generic, chatID: "phong-q1")
            #expect(await deliver(channel, message) == .delivered)
            let request = try #require(sink.requests.first)
            #expect(sink.requests.count == 1)
            #expect(request.method == "POST")
            #expect(request.path == "/hooks/sameday")
            #expect(request.header("Authorization") == "Bearer s3cret-bearer")
            #expect(request.header("Content-Type") == "application/json; charset=utf-8")
            #expect(request.header("X-SameDay-Alerts") == ChannelFixture.digest.alertIDs.joined(separator: ", "))
            #expect(request.body == message.body())
            let body = try json(request.body)
            #expect(body["recipient"] as? String == "phong-q1")
            #expect(body["subject"] as? String == ChannelFixture.text.subject)
            #expect(body["alertIds"] as? [String] == ChannelFixture.digest.alertIDs)
        }
    }

    @Test("generic without a token file sends no Authorization header")
    func genericWithoutToken() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"))
            defer { try? channel.syncShutdown() }
            #expect(await deliver(channel, ChannelFixture.chat(.generic)) == .delivered)
            #expect(sink.requests.first?.header("Authorization") == nil)
            #expect(sink.requests.first?.header("X-SameDay-Alerts") != nil)
        }
    }

    @Test("telegram: POST <base>/bot<token>/sendMessage with chat_id and text; delivered only with ok: true")
    func telegram() async throws {
        let folder = try TemporaryFolder("hook-telegram")
        defer { folder.remove() }
        let tokenFile = try folder.write("telegram.token", Self.token + "\n", mode: 0o400)
        try await HookSink.serving { sink, port in
            let channel = try channel(.telegram(tokenFile: tokenFile, base: "http://127.0.0.1:\(port)/"))
            defer { try? channel.syncShutdown() }
            let message = ChannelFixture.chat(.telegram, chatID: "-1001234567890")
            sink.script([
                .answer(status: 200, body: #"{"ok":true,"result":{"message_id":42}}"#),
                .answer(status: 200, body: #"{"ok":false,"description":"strange"}"#),
                .answer(
                    status: 400, body: #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
            ])
            #expect(await deliver(channel, message) == .delivered)
            let second = await deliver(channel, message)
            #expect(second.isPermanent)
            #expect(second.reason?.contains("without \"ok\": true") == true)
            let third = await deliver(channel, message)
            #expect(third == .permanent(reason: "127.0.0.1:\(port) answered 400: Bad Request: chat not found"))

            let request = try #require(sink.requests.first)
            #expect(request.path == "/bot\(Self.token)/sendMessage")
            #expect(request.header("Authorization") == nil)
            #expect(request.header("X-SameDay-Alerts") == ChannelFixture.digest.alertIDs.joined(separator: ", "))
            let body = try json(request.body)
            #expect(body["chat_id"] as? String == "-1001234567890")
            #expect(body["text"] as? String == ChannelFixture.text.plain)
        }
    }

    @Test("zalo: the URL as given, the header access_token, recipient.user_id and message.text")
    func zalo() async throws {
        let folder = try TemporaryFolder("hook-zalo")
        defer { folder.remove() }
        let tokenFile = try folder.write("zalo.token", "zalo-access-TOKEN-123")
        try await HookSink.serving { sink, port in
            let channel = try channel(
                .zalo(url: "http://127.0.0.1:\(port)/v3.0/oa/message/cs", accessTokenFile: tokenFile))
            defer { try? channel.syncShutdown() }
            sink.script([
                .answer(status: 200, body: #"{"error":0,"message":"Success","data":{"message_id":"m1"}}"#),
                .answer(status: 200, body: #"{"error":-216,"message":"Access token is invalid"}"#),
            ])
            let message = ChannelFixture.chat(.zalo, chatID: "2468013579")
            #expect(await deliver(channel, message) == .delivered)
            #expect(
                await deliver(channel, message)
                    == .permanent(reason: "127.0.0.1:\(port) answered 200 with error -216: Access token is invalid"))
            let request = try #require(sink.requests.first)
            #expect(request.path == "/v3.0/oa/message/cs")
            #expect(request.header("access_token") == "zalo-access-TOKEN-123")
            let body = try json(request.body)
            #expect((body["recipient"] as? [String: Any])?["user_id"] as? String == "2468013579")
            #expect((body["message"] as? [String: Any])?["text"] as? String == ChannelFixture.text.plain)
        }
    }

    @Test("429 with Retry-After in seconds or as a date, 500 and 503 are retryable; 403 and a redirect permanent")
    func statuses() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"))
            defer { try? channel.syncShutdown() }
            let inTwoMinutes = Date().addingTimeInterval(120)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            sink.script([
                .answer(status: 429, headers: ["Retry-After": "7"], body: "slow down"),
                .answer(status: 429, headers: ["Retry-After": formatter.string(from: inTwoMinutes)]),
                .answer(status: 500, body: "Internal Server Error"),
                .answer(status: 503, headers: ["Retry-After": "30"]),
                .answer(status: 403, body: "forbidden"),
                .answer(status: 302, headers: ["Location": "http://127.0.0.1:\(port)/elsewhere"]),
            ])
            let message = ChannelFixture.chat(.generic)
            #expect(
                await deliver(channel, message)
                    == .retryable(reason: "127.0.0.1:\(port) answered 429: slow down", retryAfter: 7))
            let dated = await deliver(channel, message)
            #expect(dated.isRetryable)
            #expect((115...120).contains(dated.retryAfter ?? -1), "\(dated)")
            #expect(
                await deliver(channel, message)
                    == .retryable(reason: "127.0.0.1:\(port) answered 500: Internal Server Error", retryAfter: nil))
            #expect(await deliver(channel, message).retryAfter == 30)
            #expect(await deliver(channel, message) == .permanent(reason: "127.0.0.1:\(port) answered 403: forbidden"))
            let redirect = await deliver(channel, message)
            #expect(redirect == .permanent(reason: "127.0.0.1:\(port) answered 302 (a redirect; not followed)"))
            #expect(sink.requests.count == 6, "the redirect was not followed")
            #expect(!sink.requests.contains { $0.path == "/elsewhere" })
        }
    }

    @Test("a server that never answers is a retryable timeout, within the configured time")
    func timeout() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"), timeout: .milliseconds(500))
            defer { try? channel.syncShutdown() }
            sink.script([.hang])
            let started = ContinuousClock.now
            let outcome = await deliver(channel, ChannelFixture.chat(.generic))
            let elapsed = ContinuousClock.now - started
            sink.release()
            #expect(outcome.isRetryable)
            #expect(
                outcome.reason?.hasPrefix("no answer from 127.0.0.1:\(port) within 0.5 seconds") == true, "\(outcome)")
            #expect(elapsed >= .milliseconds(450) && elapsed < .seconds(3), "\(elapsed)")
            #expect(sink.requests.count == 1)
        }
    }

    @Test("nothing listening is retryable")
    func refused() async throws {
        try await withRefusingPort { port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"), timeout: .seconds(2))
            defer { try? channel.syncShutdown() }
            let outcome = await deliver(channel, ChannelFixture.chat(.generic))
            #expect(outcome.isRetryable, "\(outcome)")
            #expect(outcome.reason?.hasPrefix("cannot reach 127.0.0.1:\(port) (after ") == true, "\(outcome)")
            #expect(outcome.reason?.contains("Connection refused") == true, "\(outcome)")
        }
    }

    @Test("the token never appears in a reason, even when the server echoes it back")
    func tokenKeptOut() async throws {
        let folder = try TemporaryFolder("hook-secret")
        defer { folder.remove() }
        let tokenFile = try folder.write("telegram.token", Self.token)
        let zaloFile = try folder.write("zalo.token", "zalo-SECRET-access")
        try await HookSink.serving { sink, port in
            let telegram = try channel(
                .telegram(tokenFile: tokenFile, base: "http://127.0.0.1:\(port)"), timeout: .milliseconds(500))
            defer { try? telegram.syncShutdown() }
            let zalo = try channel(
                .zalo(url: "http://127.0.0.1:\(port)/zalo", accessTokenFile: zaloFile), timeout: .milliseconds(500))
            defer { try? zalo.syncShutdown() }
            let encoded = Self.token.replacingOccurrences(of: ":", with: "%3A")
            sink.script([
                .answer(status: 404, body: "no route for /bot\(Self.token)/sendMessage"),
                .answer(status: 500, body: "upstream /bot\(encoded)/sendMessage failed"),
                .answer(
                    status: 400,
                    body: #"{"ok":false,"description":"token \#(Self.token) is not valid"}"#),
                .hang,
                .answer(status: 401, body: "access_token zalo-SECRET-access expired"),
            ])
            var outcomes: [DeliveryOutcome] = []
            for _ in 0..<4 { outcomes.append(await deliver(telegram, ChannelFixture.chat(.telegram))) }
            sink.release()
            outcomes.append(await deliver(zalo, ChannelFixture.chat(.zalo)))
            #expect(outcomes.count == 5 && !outcomes.contains(.delivered))
            for outcome in outcomes {
                let reason = outcome.reason ?? ""
                #expect(!reason.contains(Self.token) && !reason.contains(encoded), "\(reason)")
                #expect(!reason.contains("AAHsecretTOKEN") && !reason.contains("zalo-SECRET-access"), "\(reason)")
                #expect(!"\(outcome)".contains("AAHsecretTOKEN"))
            }
            #expect(outcomes[0].reason == "127.0.0.1:\(port) answered 404: no route for /bot[token]/sendMessage")
            #expect(outcomes[4].reason == "127.0.0.1:\(port) answered 401: access_token [token] expired")
            #expect(sink.requests.count == 5)
        }
    }

    @Test("a huge answer is read only up to 64 KiB, and its reason stays short")
    func hugeAnswer() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"))
            defer { try? channel.syncShutdown() }
            let huge = String(repeating: "0123456789abcdef", count: 48 * 1024)
            sink.script([.answer(status: 200, body: huge), .answer(status: 400, body: huge)])
            #expect(await deliver(channel, ChannelFixture.chat(.generic)) == .delivered)
            let refused = await deliver(channel, ChannelFixture.chat(.generic))
            #expect(refused.isPermanent)
            #expect((refused.reason?.count ?? 0) < 400)
        }
    }

    @Test("retries with the policy: 500, 500 then 200 is delivered on the third attempt; always 500 fails")
    func retriesWithPolicy() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"))
            defer { try? channel.syncShutdown() }
            let policy = RetryPolicy(maxAttempts: 3, baseDelay: 30, maxDelay: 900, maxRetryAfter: 3600)
            let message = ChannelFixture.chat(.generic)

            func run() async -> (RetryDecision, [Int64]) {
                var now: Int64 = 1_652_862_630
                var waits: [Int64] = []
                var attempt = 1
                while true {
                    let decision = policy.decide(attempt: attempt, outcome: await deliver(channel, message), at: now)
                    guard case .retry(let at) = decision else { return (decision, waits) }
                    waits.append(at - now)
                    now = at
                    attempt += 1
                }
            }

            sink.script([.answer(status: 500), .answer(status: 500)], then: .answer(status: 200))
            let (delivered, waits) = await run()
            #expect(delivered == .delivered)
            #expect(waits == [30, 60])
            #expect(sink.requests.count == 3)
            #expect(Set(sink.requests.map { $0.header("X-SameDay-Alerts") ?? "" }).count == 1, "the same alerts")

            sink.script([], then: .answer(status: 500, body: "down"))
            let (failed, _) = await run()
            #expect(failed == .failed(reason: "127.0.0.1:\(port) answered 500: down", attempts: 3))
            #expect(sink.requests.count == 6)
        }
    }

    @Test("a message of another kind is refused without a request")
    func kindMismatch() async throws {
        try await HookSink.serving { sink, port in
            let channel = try channel(.generic(url: "http://127.0.0.1:\(port)/hook"))
            defer { try? channel.syncShutdown() }
            #expect(
                await deliver(channel, ChannelFixture.chat(.telegram))
                    == .permanent(reason: "a telegram message cannot go to a generic webhook"))
            #expect(sink.requests.isEmpty)
        }
    }

    @Test("settings that cannot work are refused when the channel is built")
    func configuration() throws {
        let folder = try TemporaryFolder("hook-config")
        defer { folder.remove() }
        let open = try folder.write("open.token", Self.token, mode: 0o644)
        let slash = try folder.write("slash.token", "123:abc/../../x")
        let empty = try folder.write("empty.token", "\n")
        let twoLines = try folder.write("two.token", "abc\nBcc: x")
        let good = try folder.write("good.token", Self.token)

        func refusal(_ endpoint: WebhookChannel.Settings.Endpoint) -> String? {
            do {
                let channel = try WebhookChannel(.init(endpoint))
                try? channel.syncShutdown()
                return nil
            } catch {
                return error.description
            }
        }
        #expect(refusal(.telegram(tokenFile: open))?.contains("chmod 600") == true)
        #expect(refusal(.telegram(tokenFile: slash))?.contains("only letters, digits") == true)
        #expect(refusal(.zalo(url: "http://127.0.0.1:9/z", accessTokenFile: empty))?.contains("is empty") == true)
        #expect(refusal(.zalo(url: "http://127.0.0.1:9/z", accessTokenFile: twoLines))?.contains("one line") == true)
        #expect(refusal(.zalo(url: "http://127.0.0.1:9/z", accessTokenFile: folder.path + "/absent")) != nil)
        #expect(refusal(.generic(url: "ftp://127.0.0.1/hook")) != nil)
        #expect(refusal(.generic(url: "/hook")) != nil)
        #expect(refusal(.telegram(tokenFile: good, base: "api.telegram.org")) != nil)
        #expect(refusal(.telegram(tokenFile: good)) == nil, "the default base, https://api.telegram.org (no request)")
        for reason in [refusal(.telegram(tokenFile: open)), refusal(.telegram(tokenFile: slash))] {
            #expect(reason?.contains(Self.token) == false)
            #expect(reason?.contains("../../x") == false)
        }
    }
}
