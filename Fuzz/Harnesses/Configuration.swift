// Fuzz target `configuration`: `Configuration.parse` over fuzzed bytes of each of its files (units.csv,
// catalog.csv, calendars.json, alerting.json, interlevel.csv; the input holds them separated by 0x00 bytes, a
// missing fourth or fifth part meaning no such file), then a dossier on every unit of an accepted configuration
// (docs/fuzzing.md). Traps when an accepted registry has a unit code that is not plain ASCII, or two codes with
// one routing-key word.
@testable import SameDayCore

let received = RFC3339.parse("2022-05-18T15:01:00+07:00")!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = UnsafeBufferPointer(start: data, count: size).split(
        separator: 0, maxSplits: 4, omittingEmptySubsequences: false
    )
    .map(Array.init)
    guard parts.count >= 3 else { return 0 }
    let files = ConfigurationFiles(
        units: parts[0], catalog: parts[1], calendars: parts[2], alerting: parts.count > 3 ? parts[3] : nil,
        interlevel: parts.count > 4 ? parts[4] : nil)
    guard let config = try? Configuration.parse(files) else { return 0 }
    var words = Set<String>()
    for unit in config.units {
        guard Unit.isValidCode(unit.code), words.insert(Unit.routingWord(unit.code)).inserted else {
            fatalError("accepted unit code \(Printable.quoted(unit.code))")
        }
    }
    // Deadlines and alerts on every calendar view the configuration built: a received dossier per unit and
    // procedure (at most 16 of each), resolved five days later.
    let procedures = config.catalog.prefix(16).map(\.procedure) + ["not-in-catalog"]
    for unit in config.units.prefix(16) {
        for procedure in procedures {
            let events = [
                DossierEvent(
                    eventId: "r", dossier: "\(unit.code)-220518-0001", unit: unit.code, procedure: procedure,
                    type: .received, occurredAt: received, channel: .online, source: "fuzz"),
                DossierEvent(
                    eventId: "z", dossier: "\(unit.code)-220518-0001", unit: unit.code, procedure: procedure,
                    type: .resolved, occurredAt: received + 5 * 86_400, outcome: .approved, source: "fuzz"),
            ]
            var dossier = Dossier(code: events[0].dossier)
            for e in events { _ = try? dossier.apply(e, now: e.occurredAt, config: config) }
            _ = dossier.facts(config: config)
        }
    }
    return 0
}
