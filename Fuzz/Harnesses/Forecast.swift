// Fuzz target `forecast`: a unit's stored queue forecast (`QueueForecast.restore`), read back at every restart. Two
// inputs per run: the raw bytes, and a valid stored part with bytes overwritten as the input says (so the fuzzer
// reaches past the length check). Traps when an accepted part does not encode to the same bytes again; then works
// with it as a restarted worker does (its queue back, a recheck, a prediction, a resolution, a new dossier), which
// must not trap either: a damaged row is refused at the restart, never carried to the next event.
import Foundation

@testable import SameDayCore

let t0 = RFC3339.parse("2022-05-16T13:00:00+07:00")!
let calendar = fixtureConfig.calendars[0]

/// A morning's thirty dossiers, queued and resolved one by one: days, busy time and an error model to mutate.
let validPart: [UInt8] = {
    var forecast = QueueForecast(unitCount: 1)
    for i in 0..<30 {
        let at = t0 - 5 * 3600 + Int64(i) * 300
        _ = forecast.observe(
            unit: 0, slot: i, code: "D-\(i)", receivedAt: at, due: at + 4 * 3600, resolved: false, at: at,
            calendar: calendar)
        _ = forecast.observe(
            unit: 0, slot: i, code: "D-\(i)", receivedAt: at, due: nil, resolved: true, at: at + 240,
            calendar: calendar)
    }
    return forecast.encode(unit: 0)
}()

func check(_ bytes: [UInt8]) {
    var forecast = QueueForecast(unitCount: 2)
    guard (try? forecast.restore(unit: 0, from: bytes)) != nil else { return }
    let encoded = forecast.encode(unit: 0)
    var again = QueueForecast(unitCount: 2)
    guard (try? again.restore(unit: 0, from: encoded)) != nil, again.encode(unit: 0) == encoded else {
        fatalError("an accepted forecast does not read back after it is stored again: \(bytes)")
    }
    again.restoreQueued(unit: 0, slot: 0, code: "D-1", receivedAt: t0, due: t0 + 3600, atRisk: false)
    again.restoreQueued(unit: 0, slot: 1, code: "D-2", receivedAt: t0 + 60, due: t0 + 3600, atRisk: false)
    again.finishRestore()
    _ = again.recheck(unit: 0, at: t0 + 600, calendar: calendar)
    _ = again.prediction(unit: 0, slot: 1, at: t0 + 600, calendar: calendar)
    _ = again.observe(
        unit: 0, slot: 0, code: "D-1", receivedAt: t0, due: nil, resolved: true, at: t0 + 900, calendar: calendar)
    _ = again.observe(
        unit: 0, slot: 2, code: "D-3", receivedAt: t0 + 1000, due: t0 + 4000, resolved: false, at: t0 + 1000,
        calendar: calendar)
    _ = again.prediction(unit: 0, slot: 2, at: t0 + 1200, calendar: calendar)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForecast(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    check(input)
    var mutated = validPart
    var i = 0
    while i + 1 < input.count {
        mutated[Int(input[i]) % mutated.count] = input[i + 1]
        i += 2
    }
    check(mutated)
    return 0
}
