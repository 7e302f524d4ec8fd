import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SameDayCore
import SameDayFiles

/// Chat messages posted to an HTTP webhook (docs/notify.md, "Channels"): the body is `ChatMessage.body()`, JSON, and
/// where it goes and how it is authorised depends on the kind:
///
/// - `generic`: the URL as configured; `Authorization: Bearer <token>` when a token file is given;
/// - `telegram`: `<base>/bot<token>/sendMessage` (base https://api.telegram.org unless configured: tests use loopback);
/// - `zalo`: the URL as configured, with the header `access_token: <token>`.
///
/// Every request carries `X-SameDay-Alerts: <alert id>, …`, so a sink can count what it received. Tokens are read from
/// files that only their owner may read (`SecretFile`), and never appear in a reason: reasons name the host only,
/// and any text that came back is scrubbed of the token.
///
/// Answers: 2xx is delivered (Telegram's must also say `"ok": true`; a Zalo-style `"error"` other than 0 is refused);
/// 429 is retryable, with its `Retry-After` (seconds or an HTTP-date; Telegram's `parameters.retry_after` too); 5xx,
/// 408, a timeout or a connection error is retryable; anything else (other 4xx, a redirect, which is never followed
/// so a token cannot travel to another host) is permanent.
///
/// AsyncHTTPClient rather than FoundationNetworking's URLSession: one deadline bounds the whole exchange, redirects
/// can be refused, the response body is read through a delegate that keeps its first 64 KiB only, errors say what
/// failed (connect, timeout), and it runs on the SwiftNIO the package already builds, with no libcurl.
///
/// `deliver` blocks its thread until the answer or the deadline: the notify service runs channels on threads of its
/// own, never on an event loop or Swift's cooperative pool. Call `shutdown()` when done with the channel.
public final class WebhookChannel: Sendable {
    public struct Settings: Sendable, Equatable {
        public enum Endpoint: Sendable, Equatable {
            case generic(url: String, bearerTokenFile: String? = nil)
            case telegram(tokenFile: String, base: String = "https://api.telegram.org")
            case zalo(url: String, accessTokenFile: String)
        }

        public var endpoint: Endpoint
        /// For the whole exchange: connecting, sending, the answer.
        public var timeout: Duration

        public init(_ endpoint: Endpoint, timeout: Duration = .seconds(15)) {
            self.endpoint = endpoint
            self.timeout = timeout
        }
    }

    /// What is kept of a response body.
    public static let responseLimit = 64 * 1024

    public let kind: ChatKind
    public let timeout: Duration
    /// `host:port`, for reasons.
    public let target: String
    private let url: String
    private let authorization: (name: String, value: String)?
    private let secret: String?
    private let client: HTTPClient

    /// Reads the token file (if any) and checks the URL; nothing is sent.
    public init(_ settings: Settings) throws(ChannelConfigurationError) {
        guard settings.timeout > .zero else { throw ChannelConfigurationError("webhook timeout must be positive") }
        switch settings.endpoint {
        case .generic(let url, let tokenFile):
            kind = .generic
            self.url = url
            secret = try tokenFile.map { file throws(ChannelConfigurationError) in
                try Self.token(file, what: "the webhook's bearer token")
            }
            authorization = secret.map { ("Authorization", "Bearer \($0)") }
        case .telegram(let tokenFile, let base):
            kind = .telegram
            let token = try Self.token(tokenFile, what: "the Telegram bot token")
            guard token.unicodeScalars.allSatisfy({ $0.isASCII && Self.telegramTokenCharacters.contains($0) }) else {
                throw ChannelConfigurationError(
                    "\(tokenFile): a Telegram bot token has only letters, digits, ':', '_' and '-'")
            }
            secret = token
            authorization = nil
            let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
            _ = try Self.checkedTarget(trimmed)
            url = "\(trimmed)/bot\(token)/sendMessage"
        case .zalo(let url, let tokenFile):
            kind = .zalo
            self.url = url
            let token = try Self.token(tokenFile, what: "the Zalo access token")
            secret = token
            authorization = ("access_token", token)
        }
        target = try Self.checkedTarget(url)
        timeout = settings.timeout

        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        let amount = TimeAmount(settings.timeout)
        configuration.timeout = .init(connect: amount, read: amount)
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Posts `message`, blocking until the answer, the deadline or a connection error.
    public func deliver(_ message: ChatMessage) -> DeliveryOutcome {
        guard message.kind == kind else {
            return .permanent(reason: "a \(message.kind.rawValue) message cannot go to a \(kind.rawValue) webhook")
        }
        return deliver(body: message.body(), alertIDs: message.alertIDs)
    }

    /// Posts a body already made (`ChatMessage.body()`, as the notifier stores it) for a message carrying
    /// `alertIDs`; `messageID`, when given, goes in `X-SameDay-Message-Id`, the same on every attempt, so a bridge
    /// that receives a message twice (an answer lost to a timeout) can tell.
    public func deliver(body: String, alertIDs: [String], messageID: String? = nil) -> DeliveryOutcome {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: url, method: .POST, headers: headers(alertIDs: alertIDs, messageID: messageID),
                body: .string(body))
        } catch {
            return .permanent(reason: redacted("cannot build a request to \(target): \(error)"))
        }
        let started = ContinuousClock.now
        let task = client.execute(
            request: request, delegate: BoundedResponse(limit: Self.responseLimit),
            deadline: .now() + TimeAmount(timeout))
        do {
            let response = try task.futureResult.wait()
            let outcome = Self.outcome(
                kind: kind, status: response.status, retryAfter: response.headers.first(name: "Retry-After"),
                body: response.body, target: target, now: Int64(Date().timeIntervalSince1970))
            return redacted(outcome)
        } catch let error as HTTPClientError
            where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
            || error == .writeTimeout
        {
            return .retryable(reason: "no answer from \(target) within \(timeout) (\(error.shortDescription))")
        } catch {
            let elapsed = (ContinuousClock.now - started).components
            let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            return redacted(
                .retryable(
                    reason:
                        "cannot reach \(target) (after \(String(format: "%.1f", seconds)) s): \(Self.describe(error))"
                ))
        }
    }

    /// Closes the channel's connections. Blocks; from async code use `shutdown() async`.
    public func syncShutdown() throws { try client.syncShutdown() }

    public func shutdown() async throws { try await client.shutdown() }

    func headers(alertIDs: [String], messageID: String? = nil) -> HTTPHeaders {
        func visible(_ text: String) -> String {
            String(text.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F && $0 != "," }.map(Character.init))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "User-Agent", value: "SameDay-notify")
        if let authorization { headers.add(name: authorization.name, value: authorization.value) }
        let ids = alertIDs.map(visible).filter { !$0.isEmpty }
        if !ids.isEmpty { headers.add(name: "X-SameDay-Alerts", value: ids.joined(separator: ", ")) }
        if let messageID, !visible(messageID).isEmpty {
            headers.add(name: "X-SameDay-Message-Id", value: String(visible(messageID).prefix(200)))
        }
        return headers
    }

    /// What an answer means, for a webhook of `kind` (pure: `now` is only for a `Retry-After` given as a date).
    static func outcome(
        kind: ChatKind, status: Int, retryAfter: String?, body: [UInt8], target: String, now: Instant
    ) -> DeliveryOutcome {
        let telegram = kind == .telegram ? try? JSONDecoder().decode(TelegramAnswer.self, from: Data(body)) : nil
        let said: String
        if let description = telegram?.description {
            said = DeliveryOutcome.printable(description.utf8, limit: 300)
        } else {
            said = DeliveryOutcome.printable(body, limit: 300)
        }
        let answer = "\(target) answered \(status)" + (said.isEmpty ? "" : ": \(said)")
        switch status {
        case 200..<300:
            switch kind {
            case .telegram:
                guard telegram?.ok == true else {
                    return .permanent(reason: "\(target) answered \(status) without \"ok\": true: \(said)")
                }
            case .zalo:
                if let zalo = try? JSONDecoder().decode(ZaloAnswer.self, from: Data(body)), let code = zalo.error,
                    code != 0
                {
                    let message = zalo.message.map { DeliveryOutcome.printable($0.utf8, limit: 300) } ?? ""
                    return .permanent(reason: "\(target) answered \(status) with error \(code): \(message)")
                }
            case .generic:
                break
            }
            return .delivered
        case 429, 408, 500..<600:
            let header = retryAfter.flatMap { RetryAfter.seconds($0, now: now) }
            return .retryable(reason: answer, retryAfter: header ?? telegram?.parameters?.retry_after)
        case 300..<400:
            return .permanent(reason: "\(answer) (a redirect; not followed)")
        default:
            return .permanent(reason: answer)
        }
    }

    private func redacted(_ outcome: DeliveryOutcome) -> DeliveryOutcome {
        switch outcome {
        case .delivered: .delivered
        case .retryable(let reason, let retryAfter): .retryable(reason: redacted(reason), retryAfter: retryAfter)
        case .permanent(let reason): .permanent(reason: redacted(reason))
        }
    }

    /// `text` with the token replaced by "[token]": as it is, percent-encoded the ways a server may echo a URL or a
    /// header back, and each part of it around a ':' (a Telegram token is `<bot id>:<secret>`, and a server may encode
    /// the ':' alone) that is long enough to be a secret.
    private func redacted(_ text: String) -> String {
        guard let secret, !secret.isEmpty else { return text }
        var forms: Set<String> = [secret]
        for allowed in [CharacterSet.alphanumerics, .urlPathAllowed, .urlQueryAllowed] {
            if let encoded = secret.addingPercentEncoding(withAllowedCharacters: allowed) { forms.insert(encoded) }
        }
        for part in secret.split(separator: ":") where part.count >= 8 { forms.insert(String(part)) }
        var text = text
        for form in forms.sorted(by: { $0.count > $1.count }) {
            text = text.replacingOccurrences(of: form, with: "[token]")
        }
        return text
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.shortDescription }
        return DeliveryOutcome.printable(String(describing: error).utf8, limit: 300)
    }

    private static let telegramTokenCharacters = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_-".unicodeScalars)

    /// A token from its file: one line, surrounding white space dropped, visible ASCII only (it goes into a header
    /// or a URL path).
    private static func token(_ path: String, what: String) throws(ChannelConfigurationError) -> String {
        let text: String
        do {
            text = try SecretFile.read(path, holding: what)
        } catch {
            throw ChannelConfigurationError(error.description)
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ChannelConfigurationError("\(path): \(what) is empty") }
        guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw ChannelConfigurationError("\(path): \(what) must be one line of visible ASCII characters")
        }
        return token
    }

    /// `host:port` of an http or https URL with a host, or an error naming what is wrong.
    private static func checkedTarget(_ text: String) throws(ChannelConfigurationError) -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw ChannelConfigurationError("webhook URL must be http:// or https:// with a host, not \(text)")
        }
        return "\(host):\(url.port ?? (scheme == "https" ? 443 : 80))"
    }

    private struct TelegramAnswer: Decodable {
        struct Parameters: Decodable {
            var retry_after: Int64?
        }
        var ok: Bool
        var description: String?
        var parameters: Parameters?
    }

    private struct ZaloAnswer: Decodable {
        var error: Int?
        var message: String?
    }
}

/// The seconds a `Retry-After` asks for (RFC 9110 §10.2.3): a number of seconds, or an HTTP-date in any of its three
/// forms (IMF-fixdate, the obsolete RFC 850 and asctime forms), counted from `now` and never negative.
public enum RetryAfter {
    public static func seconds(_ value: String, now: Instant) -> Int64? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty && text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return Int64(text) ?? Int64.max
        }
        return date(text).map { max($0 - now, 0) }
    }

    /// The instant of an HTTP-date, GMT.
    public static func date(_ text: String) -> Instant? {
        let parts = text.split(separator: " ")
        let day: Int
        let month: Int
        let year: Int
        let time: Substring
        switch parts.count {
        case 6:  // Sun, 06 Nov 1994 08:49:37 GMT
            guard parts[0].hasSuffix(","), parts[5] == "GMT", parts[1].count == 2, parts[3].count == 4,
                let d = Int(parts[1]), let m = monthNumber(parts[2]), let y = Int(parts[3])
            else { return nil }
            (day, month, year, time) = (d, m, y, parts[4])
        case 4:  // Sunday, 06-Nov-94 08:49:37 GMT
            let date = parts[1].split(separator: "-")
            guard parts[0].hasSuffix(","), parts[3] == "GMT", date.count == 3, date[0].count == 2, date[2].count == 2,
                let d = Int(date[0]), let m = monthNumber(date[1]), let yy = Int(date[2])
            else { return nil }
            (day, month, year, time) = (d, m, yy < 70 ? 2000 + yy : 1900 + yy, parts[2])
        case 5:  // Sun Nov  6 08:49:37 1994
            guard parts[4].count == 4, let m = monthNumber(parts[1]), let d = Int(parts[2]), let y = Int(parts[4])
            else { return nil }
            (day, month, year, time) = (d, m, y, parts[3])
        default:
            return nil
        }
        let clock = time.split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }),
            let h = Int(clock[0]), let mi = Int(clock[1]), let s = Int(clock[2]), h < 24, mi < 60, s < 61,
            let date = LocalDate(year: year, month: month, day: day)
        else { return nil }
        return date.dayNumber * 86_400 + Int64(h * 3600 + mi * 60 + s)
    }

    private static func monthNumber(_ name: Substring) -> Int? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return months.firstIndex(of: String(name)).map { $0 + 1 }
    }
}

/// The status, headers and first `limit` bytes of the body of an answer; the rest of the body is read and dropped,
/// the deadline bounding how long that may take.
final class BoundedResponse: HTTPClientResponseDelegate {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    private struct State {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) { self.limit = limit }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLockedValue { $0.head = head }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        state.withLockedValue { state in
            let room = limit - state.body.count
            if room > 0 { state.body += buffer.readableBytesView.prefix(room) }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        try state.withLockedValue { state in
            guard let head = state.head else { throw HTTPClientError.remoteConnectionClosed }
            return Response(status: Int(head.status.code), headers: head.headers, body: state.body)
        }
    }
}
