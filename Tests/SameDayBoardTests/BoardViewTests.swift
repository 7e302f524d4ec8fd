import Foundation
import SameDayBoard
import Testing

@testable import SameDayCore

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// 2022-05-18 (a Wednesday) at `hhmm` in Ho Chi Minh City.
func at(_ hhmm: String) -> Instant { RFC3339.parse("2022-05-18T\(hhmm):00+07:00")! }

func boardAlert(
    _ level: AlertLevel, _ dossier: String, unit: String = "760", block: Block = .district, episode: Int = 1,
    firedAt: String = "15:00", due: String = "17:00"
) -> Alert {
    Alert(
        alertId: Alert.id(subject: dossier, episode: episode, level: level), level: level, dossier: dossier,
        unit: unit, block: block, procedure: "1.001612", episode: episode, due: at(due), firedAt: at(firedAt),
        thresholdAt: at(firedAt), minutesLeft: 60, recipients: [], lateFired: false, receivedAt: at("08:00"))
}

@Suite("The board's view: opened, raised and closed by alerts alone")
struct BoardViewTests {
    @Test("warning opens, critical raises, cleared closes; each change is said once")
    func lifecycle() {
        var view = BoardView()
        let warning = boardAlert(.warning, "Q1-1")
        #expect(view.apply(warning) == .upsert(BoardEntry(alert: warning, history: [warning])))
        #expect(view.apply(warning) == nil, "the same alert again changes nothing")
        let critical = boardAlert(.critical, "Q1-1", firedAt: "15:30")
        guard case .upsert(let raised) = view.apply(critical) else {
            Issue.record("critical should raise the entry")
            return
        }
        #expect(raised.level == .critical && raised.history.map(\.level) == [.warning, .critical])
        let cleared = boardAlert(.cleared, "Q1-1", firedAt: "16:00")
        #expect(view.apply(cleared) == .remove(dossier: "Q1-1", unit: "760", alertId: cleared.alertId))
        #expect(view.entries.isEmpty)
    }

    @Test("at_risk opens an entry below warning, which raises it; the page offers it as a level")
    func atRiskOpensFirst() {
        var view = BoardView()
        let flagged = boardAlert(.atRisk, "Q1-2", firedAt: "14:00")
        #expect(view.apply(flagged) == .upsert(BoardEntry(alert: flagged, history: [flagged])))
        let warning = boardAlert(.warning, "Q1-2", firedAt: "15:30")
        guard case .upsert(let raised) = view.apply(warning) else {
            Issue.record("warning should raise an at_risk entry")
            return
        }
        #expect(raised.level == .warning && raised.history.map(\.level) == [.atRisk, .warning])
        #expect(BoardView.openLevels.first == .atRisk)
        #expect(BoardPage.board(person: "p").contains("<option value=\"at_risk\">"))
    }

    @Test("a warning read again after its cleared (the alert files, then the queue) does not reopen the dossier")
    func redeliveredAfterClosing() {
        var view = BoardView()
        _ = view.apply(boardAlert(.warning, "Q1-1"))
        _ = view.apply(boardAlert(.resolvedLate, "Q1-1", firedAt: "17:10"))
        #expect(view.apply(boardAlert(.warning, "Q1-1")) == nil)
        #expect(view.apply(boardAlert(.overdue, "Q1-1", firedAt: "17:01")) == nil)
        #expect(view.entries.isEmpty)
        // A new episode (the dossier restarted after a supplement) is at risk again.
        let again = boardAlert(.warning, "Q1-1", episode: 2, firedAt: "17:20", due: "18:00")
        #expect(view.apply(again) == .upsert(BoardEntry(alert: again, history: [again])))
    }

    @Test("out of order: an older alert of the episode joins the timeline without lowering the level")
    func outOfOrder() {
        var view = BoardView()
        let overdue = boardAlert(.overdue, "Q1-1", firedAt: "17:00")
        _ = view.apply(overdue)
        #expect(view.apply(boardAlert(.warning, "Q1-1", firedAt: "15:00")) == nil)
        #expect(view.entries["Q1-1"]?.level == .overdue)
        #expect(view.entries["Q1-1"]?.history.map(\.level) == [.warning, .overdue])
        // A cleared closes it, and a cleared with nothing open is remembered (nothing to remove).
        #expect(view.apply(boardAlert(.cleared, "Q1-2")) == nil)
        #expect(view.apply(boardAlert(.warning, "Q1-2", firedAt: "14:00")) == nil)
    }

    @Test("bounded: closings forgotten, stale entries dropped, at most maxEntries")
    func bounded() {
        var view = BoardView(closedMemorySeconds: 3600, staleSeconds: 2 * 86_400, maxEntries: 2)
        _ = view.apply(boardAlert(.warning, "A"))
        _ = view.apply(boardAlert(.warning, "B"))
        #expect(view.apply(boardAlert(.warning, "C")) == nil)
        #expect(view.dropped == 1)
        _ = view.apply(boardAlert(.cleared, "B", firedAt: "15:10"))
        #expect(view.persistentAlerts.count == 2, "A's warning and B's cleared")
        #expect(view.expire(now: at("17:00")).isEmpty)
        #expect(view.persistentAlerts.count == 1, "B's cleared forgotten after an hour")
        #expect(view.expire(now: at("15:00") + 2 * 86_400) == [.remove(dossier: "A", unit: "760", alertId: nil)])
        #expect(view.entries.isEmpty)
    }

    @Test("the persisted alerts rebuild the same view after a restart")
    func rebuild() {
        var view = BoardView()
        for alert in [
            boardAlert(.warning, "A"), boardAlert(.critical, "A", firedAt: "15:40"), boardAlert(.warning, "B"),
            boardAlert(.cleared, "B", firedAt: "15:20"), boardAlert(.escalated, "C", firedAt: "16:00"),
        ] { _ = view.apply(alert) }
        var rebuilt = BoardView()
        for alert in view.persistentAlerts.sorted(by: { $0.firedAt < $1.firedAt }) { _ = rebuilt.apply(alert) }
        #expect(rebuilt.entries == view.entries)
        #expect(rebuilt.apply(boardAlert(.warning, "B")) == nil, "B's closing survived the restart")
    }
}

@Suite("Login throttling and the password file")
struct BoardAuthTests {
    @Test("five wrong passwords lock the person for the lockout; a right one resets the count")
    func lockout() {
        var throttle = LoginThrottle(policy: LoginPolicy())
        let t0 = at("09:00")
        for i in 0..<4 {
            #expect(throttle.check(person: "p", address: "a\(i)", now: t0) == .allowed)
            throttle.record(person: "p", succeeded: false, now: t0)
        }
        throttle.record(person: "p", succeeded: true, now: t0)
        for i in 0..<5 {
            #expect(throttle.check(person: "p", address: "b\(i)", now: t0) == .allowed)
            throttle.record(person: "p", succeeded: false, now: t0)
        }
        #expect(throttle.check(person: "p", address: "c", now: t0 + 60) == .locked(retryAfter: 15 * 60 - 60))
        #expect(throttle.check(person: "q", address: "c", now: t0 + 60) == .allowed, "only her")
        #expect(throttle.check(person: "p", address: "c", now: t0 + 15 * 60) == .allowed)
    }

    @Test("one address gets perAddressPerMinute attempts a minute, whoever it tries")
    func perAddress() {
        var policy = LoginPolicy()
        policy.perAddressPerMinute = 3
        var throttle = LoginThrottle(policy: policy)
        let t0 = at("09:00")
        for i in 0..<3 { #expect(throttle.check(person: "p\(i)", address: "x", now: t0) == .allowed) }
        #expect(throttle.check(person: "p9", address: "x", now: t0 + 10) == .locked(retryAfter: 50))
        #expect(throttle.check(person: "p9", address: "y", now: t0 + 10) == .allowed)
        #expect(throttle.check(person: "p9", address: "x", now: t0 + 60) == .allowed)
    }

    @Test("the password file: every mistake named by line")
    func passwordFile() throws {
        let hash = "$2b$04$X7V41bx8/XIcsIWSC8XA5etVGGtC0B9ia3niNh82QFY1JvPZYAeMK"
        let people: Set<String> = ["a@x.example", "b@x.example"]
        let good = try PasswordFile.parse(
            Array("# comment\n\na@x.example:\(hash)\r\nb@x.example:\(hash)\n".utf8), file: "pw", people: people)
        #expect(good.hashes.count == 2)
        func error(_ text: String) -> String {
            do {
                _ = try PasswordFile.parse(Array(text.utf8), file: "pw", people: people)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(error("a@x.example:\(hash)\nc@x.example:\(hash)\n").hasPrefix("pw:2: \"c@x.example\" is not a person"))
        #expect(error("a@x.example:secret\n").hasPrefix("pw:1: not a bcrypt hash"))
        #expect(error("a@x.example \(hash)\n").hasPrefix("pw:1: expected person:bcrypt-hash"))
        #expect(error("a@x.example:\(hash)\na@x.example:\(hash)\n").hasPrefix("pw:2: a@x.example is listed twice"))
    }

    @Test("board.json: defaults, and mistakes named by key")
    func settings() throws {
        let s = try BoardSettings.parse(Array(#"{"listen": "0.0.0.0:8443", "secureCookies": true}"#.utf8))
        #expect(s.listen == "0.0.0.0:8443" && s.cookiesAreSecure && s.alertFileDays == 14)
        #expect(try BoardSettings.parse(Array("{}".utf8)).cookiesAreSecure == false)
        func error(_ text: String) -> String {
            do {
                _ = try BoardSettings.parse(Array(text.utf8))
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(error(#"{"listen": "8470"}"#).contains("listen"))
        #expect(error(#"{"alertFolders": ["relative/path"]}"#).contains("alertFolders"))
        #expect(error(#"{"login": {"maxFailures": 0}}"#).contains("maxFailures"))
        #expect(error(#"{"tls": {"certificateFile": "/c.pem"}}"#).contains("keyFile"))
        #expect(error(#"{"listn": "x"}"#).contains("listn"))
    }
}
