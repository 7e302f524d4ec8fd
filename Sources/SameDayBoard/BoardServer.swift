import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import NIOCore
import SameDayCore
import Synchronization

/// The board's HTTP side (docs/board.md): the login, the page and its assets, the snapshot, the live stream
/// (Server-Sent Events) and a dossier's timeline. Every page and stream is scoped to the person's units: another
/// unit's dossier is a 404, the same answer as a dossier that does not exist.
public struct BoardServer: Sendable {
    public static let cookieName = "sameday_board"

    public let hub: BoardHub
    public let settings: BoardSettings
    public let passwords: PasswordFile
    /// Each person's units (unit codes), from `alerting.json`.
    public let scopes: [String: Set<String>]
    public let sessions: SessionStore
    public let timeline: (any TimelineSource)?
    let throttle: LoginGate
    let events: BoardEvents
    /// Checked when the person is unknown, at the cost of the file's hashes, so that her absence does not show in
    /// the answer's time.
    let unknownPersonHash: String

    public init(
        hub: BoardHub, settings: BoardSettings, passwords: PasswordFile, timeline: (any TimelineSource)?,
        events: BoardEvents = BoardEvents()
    ) {
        self.hub = hub
        self.settings = settings
        self.passwords = passwords
        self.timeline = timeline
        self.events = events
        var scopes: [String: Set<String>] = [:]
        for (person, units) in hub.domain.unitsByPerson() {
            scopes[person] = Set(units.map { hub.domain.unit($0).code })
        }
        self.scopes = scopes
        sessions = SessionStore(lifetimeSeconds: Int64(settings.sessionHours) * 3600)
        throttle = LoginGate(policy: settings.login)
        unknownPersonHash = Bcrypt.hash("not a password of anyone", cost: passwords.typicalCost)
    }

    public func router() -> Router<BoardRequestContext> {
        let router = Router(context: BoardRequestContext.self)
        router.add(middleware: SecurityHeaders())
        router.get("/login") { request, context -> Response in
            if person(request) != nil { return redirect("/") }
            return html(.ok, BoardPage.login(message: nil))
        }
        router.post("/login") { request, context -> Response in try await login(request, context) }
        router.post("/logout") { request, _ -> Response in
            if let token = request.cookies[Self.cookieName]?.value { sessions.close(token: token) }
            var response = redirect("/login")
            response.headers[values: .setCookie] = [cookie(value: "", maxAge: 0)]
            return response
        }
        router.get("/") { request, _ -> Response in
            guard let person = person(request) else { return redirect("/login") }
            return html(.ok, BoardPage.board(person: person))
        }
        router.get("/board.js") { _, _ in asset(BoardPage.script, type: "text/javascript; charset=utf-8") }
        router.get("/board.css") { _, _ in asset(BoardPage.style, type: "text/css; charset=utf-8") }
        router.get("/api/board") { request, _ -> Response in
            guard let person = person(request) else { return unauthorized() }
            return json(.ok, hub.snapshotJSON(scope: scope(of: person)))
        }
        router.get("/api/events") { request, _ -> Response in
            guard let person = person(request) else { return unauthorized() }
            return stream(person: person, token: request.cookies[Self.cookieName]?.value ?? "")
        }
        router.get("/api/dossiers/{code}") { request, context -> Response in
            guard let person = person(request) else { return unauthorized() }
            let code = context.parameters.get("code") ?? ""
            return try await dossier(code, person: person)
        }
        return router
    }

    // MARK: Sessions and login

    func person(_ request: Request) -> String? {
        guard let token = request.cookies[Self.cookieName]?.value, token.utf8.count <= 128 else { return nil }
        return sessions.person(token: token, now: wallNow())
    }

    /// A person's units (none for a person alerting.json gives no unit: an empty board, never every unit).
    func scope(of person: String) -> Set<String> { scopes[person] ?? [] }

    func cookie(value: String, maxAge: Int) -> String {
        "\(Self.cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (settings.cookiesAreSecure ? "; Secure" : "")
    }

    func login(_ request: Request, _ context: BoardRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        let form = FormBody(String(buffer: body))
        let person = (form["person"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form["password"] ?? ""
        let now = wallNow()
        guard !person.isEmpty, !password.isEmpty, person.utf8.count <= 320, password.utf8.count <= 256 else {
            return html(.badRequest, BoardPage.login(message: "Nhập địa chỉ thư và mật khẩu."))
        }
        if case .locked(let seconds) = throttle.check(person: person, address: context.remoteAddress, now: now) {
            events.login(.locked)
            var response = html(
                .tooManyRequests,
                BoardPage.login(
                    message: "Đăng nhập sai quá nhiều lần. Thử lại sau \(max(1, (seconds + 59) / 60)) phút."))
            response.headers[.retryAfter] = String(max(1, seconds))
            return response
        }
        // The hash check runs off the event loop; an unknown person costs the same as a wrong password.
        let hash = passwords.hashes[person] ?? unknownPersonHash
        let matches = await Task.detached { Bcrypt.verify(password, hash: hash) }.value
        let succeeded = matches && passwords.hashes[person] != nil
        throttle.record(person: person, succeeded: succeeded, now: now)
        guard succeeded else {
            events.login(.refused)
            return html(.unauthorized, BoardPage.login(message: "Địa chỉ thư hoặc mật khẩu không đúng."))
        }
        events.login(.accepted)
        let token = sessions.open(person: person, now: now)
        var response = redirect("/")
        response.headers[values: .setCookie] = [cookie(value: token, maxAge: settings.sessionHours * 3600)]
        return response
    }

    // MARK: The live stream

    func stream(person: String, token: String) -> Response {
        guard let client = hub.subscribe(scope: scope(of: person)) else {
            return Response(
                status: .serviceUnavailable, headers: [.retryAfter: "10", .contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "too many live clients\n")))
        }
        let (hub, sessions) = (hub, sessions)
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ],
            body: ResponseBody { writer in
                defer { hub.unsubscribe(client) }
                var first = ByteBuffer(string: "retry: 2000\n\n")
                first.writeString(Self.event("snapshot", hub.snapshotJSON(scope: client.scope)))
                try await writer.write(first)
                for await _ in client.wakes {
                    guard sessions.person(token: token, now: wallNow()) != nil else {
                        try await writer.write(ByteBuffer(string: Self.event("logout", "{}")))
                        break
                    }
                    let (changes, snapshot) = client.take()
                    var out = ByteBuffer()
                    if snapshot {
                        out.writeString(Self.event("snapshot", hub.snapshotJSON(scope: client.scope)))
                    } else {
                        for change in changes { out.writeString(Self.event(change.name, change.data)) }
                    }
                    if out.readableBytes == 0 { out.writeString(": ping\n\n") }
                    try await writer.write(out)
                }
                try await writer.finish(nil)
            })
    }

    static func event(_ name: String, _ data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }

    // MARK: A dossier

    func dossier(_ code: String, person: String) async throws -> Response {
        guard code.utf8.count <= DossierEvent.maxCodeLength, let found = hub.dossier(code, scope: scope(of: person))
        else {
            return json(.notFound, #"{"error":"không tìm thấy hồ sơ"}"#)
        }
        let alerts = found.entry?.history ?? found.closing.map { [$0] } ?? []
        var w = JSONWriter()
        w.beginObject()
        w.field("dossier", code)
        w.key("open")
        w.bool(found.entry != nil)
        let explained: Result<String?, any Error>
        if let timeline {
            let now = hub.clock
            explained = await Task.detached { Result { try timeline.explain(code, alerts: alerts, clock: now) } }.value
        } else {
            explained = .success(nil)
        }
        w.key("timeline")
        switch explained {
        case .success(let text?):
            w.string(text)
            w.key("note")
            w.null()
        case .success(nil):
            w.null()
            w.field(
                "note",
                timeline == nil
                    ? "Không có dòng thời gian: bảng theo dõi chưa được cấu hình để đọc dữ liệu của bộ xử lý "
                        + "(timelineStores trong board.json)."
                    : "Không có dòng thời gian: hồ sơ không còn trong dữ liệu của bộ xử lý (đã kết thúc và "
                        + "được lưu trữ).")
        case .failure(let error):
            w.null()
            w.field(
                "note", "Không đọc được dữ liệu của bộ xử lý lúc này: \(Printable.escaped("\(error)", limit: 300))")
        }
        w.key("alerts")
        w.beginArray()
        for a in alerts {
            w.beginObject()
            w.field("level", a.level.name)
            w.field("firedAt", RFC3339.format(a.firedAt))
            w.key("minutesLeft")
            if let m = a.minutesLeft { w.int(m) } else { w.null() }
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return json(.ok, w.text)
    }
}

/// Explains a dossier as `sameday explain` does, from where the workers keep it.
public protocol TimelineSource: Sendable {
    /// The explanation, or nil when no source holds the dossier.
    func explain(_ dossier: String, alerts: [Alert], clock: Instant) throws -> String?
}

/// The request context: the peer's address, for login throttling; small bodies only.
public struct BoardRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    public var maxUploadSize: Int { 16 * 1024 }
}

/// Counters the service turns into metrics.
public final class BoardEvents: Sendable {
    public enum Login: String, Sendable { case accepted, refused, locked }
    private let onLogin: @Sendable (Login) -> Void

    public init(onLogin: @escaping @Sendable (Login) -> Void = { _ in }) { self.onLogin = onLogin }
    func login(_ outcome: Login) { onLogin(outcome) }
}

/// `LoginThrottle` behind a lock, on the wall clock of the sessions.
final class LoginGate: Sendable {
    private let throttle: Mutex<LoginThrottle>

    init(policy: LoginPolicy) { throttle = Mutex(LoginThrottle(policy: policy)) }

    func check(person: String, address: String, now: Instant) -> LoginThrottle.Verdict {
        throttle.withLock { $0.check(person: person, address: address, now: now) }
    }

    func record(person: String, succeeded: Bool, now: Instant) {
        throttle.withLock { $0.record(person: person, succeeded: succeeded, now: now) }
    }
}

/// Headers on every answer: nothing cached, nothing framed, scripts and requests to the board only.
struct SecurityHeaders: RouterMiddleware {
    typealias Context = BoardRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(
        status: status, headers: [.contentType: "text/html; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(string: text)))
}

func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(string: text)))
}

func redirect(_ location: String) -> Response {
    Response(status: .seeOther, headers: [.location: location])
}

func unauthorized() -> Response { json(.unauthorized, #"{"error":"cần đăng nhập"}"#) }

func asset(_ text: String, type: String) -> Response {
    Response(
        status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
        body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Sessions and login throttling run on the wall clock, whatever clock the board's view runs on.
func wallNow() -> Instant { Instant(Date().timeIntervalSince1970.rounded(.down)) }
