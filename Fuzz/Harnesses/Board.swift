// Fuzz target `board`: the board's readers of bytes it does not control (docs/fuzzing.md). The input holds up to
// four parts separated by 0x00 bytes: a password file, a board.json, a login form body, and alert JSON lines. The
// password file and board.json are parsed (accepted or refused, never a crash); the form is decoded; the alerts
// that decode are applied to a `BoardView`. Traps when the view's persisted alerts do not rebuild the same view (what
// a restart relies on), or when an accepted password file holds a hash that is not bcrypt's shape.
@testable import SameDayBoard
@testable import SameDayCore

let people: Set<String> = ["a@x.example", "b@x.example", "lanhdao.phong@quan1.hcmc.example"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBoard(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = UnsafeBufferPointer(start: data, count: size).split(
        separator: 0, maxSplits: 3, omittingEmptySubsequences: false
    )
    .map(Array.init)
    if let file = try? PasswordFile.parse(parts[0], file: "board.passwords", people: people) {
        for hash in file.hashes.values where !PasswordFile.isBcrypt(hash) { fatalError("accepted hash \(hash)") }
    }
    if parts.count > 1 { _ = try? BoardSettings.parse(parts[1]) }
    if parts.count > 2 {
        let form = FormBody(String(decoding: parts[2], as: UTF8.self))
        _ = (form["person"], form["password"])
    }
    guard parts.count > 3 else { return 0 }
    var view = BoardView(closedMemorySeconds: 86_400, staleSeconds: 3 * 86_400, maxEntries: 64)
    var latest: Instant = 0
    for line in parts[3].split(separator: 0x0A) {
        guard let alert = try? Alert.decode(json: Array(line)) else { continue }
        _ = view.apply(alert)
        latest = max(latest, alert.firedAt)
    }
    _ = view.expire(now: latest)
    var rebuilt = BoardView(closedMemorySeconds: 86_400, staleSeconds: 3 * 86_400, maxEntries: 64)
    for alert in view.persistentAlerts.sorted(by: { ($0.firedAt, $0.alertId) < ($1.firedAt, $1.alertId) }) {
        _ = rebuilt.apply(alert)
    }
    guard rebuilt.entries.keys.sorted() == view.entries.keys.sorted() else {
        fatalError("rebuilt view holds \(rebuilt.entries.count) entries, the view \(view.entries.count)")
    }
    for (code, entry) in view.entries where rebuilt.entries[code]?.alert != entry.alert {
        fatalError("entry \(code) rebuilt at another level")
    }
    return 0
}
