import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import NIOCore
import SameDayBoard
import SameDayFormats
import Testing

@testable import SameDayCore

/// The board's HTTP side without a broker: the hub fed directly, the router tested in process.
@Suite("The board's HTTP side: login, cookies, scope, throttling")
struct BoardServerTests {
    static let domain = try! ConfigurationFolder.load(
        repositoryRoot.appendingPathComponent("deploy/config/hcmc-2022").path)
    static let district1 = "lanhdao.phong@quan1.hcmc.example"
    static let health = "lanhdao.phong@khoi-soban.hcmc.example"
    static let hash = Bcrypt.hash("district one password", cost: 4)

    func withBoard<T: Sendable>(
        secureCookies: Bool? = nil, _ body: @escaping @Sendable (BoardHub, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        var settings = BoardSettings()
        settings.secureCookies = secureCookies
        settings.login.maxFailures = 3
        let hub = BoardHub(domain: Self.domain, now: { at("15:00") })
        let server = BoardServer(
            hub: hub, settings: settings,
            passwords: PasswordFile(hashes: [Self.district1: Self.hash, Self.health: Self.hash]), timeline: nil)
        let app = Application(router: server.router())
        return try await app.test(.router) { client in try await body(hub, client) }
    }

    func login(_ client: any TestClientProtocol, _ person: String, _ password: String) async throws -> (
        HTTPResponse.Status, String?, String
    ) {
        let form =
            "person=\(person.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&password="
            + password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        return try await client.execute(
            uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: form)
        ) { ($0.status, $0.headers[.setCookie], String(buffer: $0.body)) }
    }

    func cookieValue(_ setCookie: String?) -> String {
        String(setCookie?.split(separator: ";").first?.dropFirst("sameday_board=".count) ?? "")
    }

    @Test("a right password gets an HttpOnly, SameSite=Strict session cookie; a wrong one a 401 and no cookie")
    func loginCookie() async throws {
        try await withBoard { _, client in
            let wrong = try await login(client, Self.district1, "not it")
            #expect(wrong.0 == .unauthorized && wrong.1 == nil)
            let unknown = try await login(client, "nobody@x.example", "district one password")
            #expect(unknown.0 == .unauthorized && unknown.2 == wrong.2, "an unknown person reads like a wrong password")
            let right = try await login(client, Self.district1, "district one password")
            #expect(right.0 == .seeOther)
            let cookie = try #require(right.1)
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"))
            #expect(cookieValue(cookie).count == 43, "256 random bits, base64url")
        }
        try await withBoard(secureCookies: true) { _, client in
            let right = try await login(client, Self.district1, "district one password")
            #expect(right.1?.contains("; Secure") == true)
        }
    }

    @Test("each person sees her units only: another unit's dossier is a 404, even by direct URL")
    func scoped() async throws {
        try await withBoard { hub, client in
            hub.apply([
                boardAlert(.critical, "Q1-7"), boardAlert(.warning, "BN-1", unit: "26740", block: .commune),
                boardAlert(.overdue, "SYT-1", unit: "000.00.18.H29", block: .department),
            ])
            let cookie = cookieValue(try await login(client, Self.district1, "district one password").1)
            let headers: HTTPFields = [.cookie: "sameday_board=\(cookie)"]
            let snapshot = try await client.execute(uri: "/api/board", method: .get, headers: headers) {
                String(buffer: $0.body)
            }
            #expect(snapshot.contains("\"Q1-7\"") && !snapshot.contains("SYT-1"))
            #expect(snapshot.contains("\"name\":\"Quận 1\""))
            let own = try await client.execute(uri: "/api/dossiers/Q1-7", method: .get, headers: headers) { $0 }
            #expect(own.status == .ok && String(buffer: own.body).contains("timelineStores"))
            for code in ["SYT-1", "NO-SUCH-DOSSIER"] {
                let other = try await client.execute(uri: "/api/dossiers/\(code)", method: .get, headers: headers) {
                    $0.status
                }
                #expect(other == .notFound)
            }
            // The departments' office head sees Sở Y tế's dossier, not District 1's.
            let cookie2 = cookieValue(try await login(client, Self.health, "district one password").1)
            let theirs = try await client.execute(
                uri: "/api/board", method: .get, headers: [.cookie: "sameday_board=\(cookie2)"]
            ) { String(buffer: $0.body) }
            #expect(theirs.contains("SYT-1") && !theirs.contains("Q1-7"))
        }
    }

    @Test("no session: the page leads to the login, the API answers 401; logging out ends the session")
    func sessions() async throws {
        try await withBoard { _, client in
            let page = try await client.execute(uri: "/", method: .get) { ($0.status, $0.headers[.location]) }
            #expect(page.0 == .seeOther && page.1 == "/login")
            let api = try await client.execute(
                uri: "/api/board", method: .get, headers: [.cookie: "sameday_board=forged"]
            ) { $0.status }
            #expect(api == .unauthorized)
            let cookie = cookieValue(try await login(client, Self.district1, "district one password").1)
            let headers: HTTPFields = [.cookie: "sameday_board=\(cookie)"]
            let board = try await client.execute(uri: "/", method: .get, headers: headers) { $0 }
            #expect(board.status == .ok && String(buffer: board.body).contains("Hồ sơ trong ngày có nguy cơ trễ hạn"))
            #expect(board.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            _ = try await client.execute(uri: "/logout", method: .post, headers: headers) { $0.status }
            let after = try await client.execute(uri: "/api/board", method: .get, headers: headers) { $0.status }
            #expect(after == .unauthorized)
        }
    }

    @Test("wrong passwords lock the person out with 429 and Retry-After, the right one included")
    func throttled() async throws {
        try await withBoard { _, client in
            for _ in 0..<3 { _ = try await login(client, Self.district1, "guess") }
            let locked = try await client.execute(
                uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "person=lanhdao.phong%40quan1.hcmc.example&password=district+one+password")
            ) { ($0.status, $0.headers[.retryAfter]) }
            #expect(locked.0 == .tooManyRequests && Int(locked.1 ?? "") ?? 0 > 0)
        }
    }
}
