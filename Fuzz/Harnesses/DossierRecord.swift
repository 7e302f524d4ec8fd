// Fuzz target `dossier-record`: the worker's stored dossier rows (`DossierRecord.decode`). Two inputs per run: the
// raw bytes, and a valid record of a real dossier with bytes overwritten, inserted or cut as the input says (so the
// fuzzer reaches deep into the format). Traps when an accepted record does not encode to bytes that decode to the
// same dossier again: the worker must never store what it cannot read back.
import Foundation

@testable import SameDayCore


/// A dossier with a catalog procedure, one not in the catalog, a pause and a resolution: every part of the format.
let validRecord: [UInt8] = {
    let unit = fixtureConfig.units[0].code
    let listed = fixtureConfig.catalog[0].procedure
    let t0 = RFC3339.parse("2022-05-18T09:00:00+07:00")!
    var dossier = Dossier(code: "D-1")
    let steps: [(EventType, Int64, String)] = [
        (.received, 0, listed), (.feeRequested, 600, listed), (.feePaid, 900, "9.999.unlisted"),
        (.resolved, 3600, listed),
    ]
    for (k, (type, offset, procedure)) in steps.enumerated() {
        let event = DossierEvent(
            eventId: "e\(k)", dossier: "D-1", unit: unit, procedure: procedure, type: type, occurredAt: t0 + offset,
            seq: Int64(k), channel: type == .received ? .direct : nil, outcome: type == .resolved ? .approved : nil,
            newDueAt: nil, source: "fuzz")
        _ = try! dossier.insert(event, config: fixtureConfig)
    }
    _ = dossier.advance(to: t0 + 7200, config: fixtureConfig)
    return DossierRecord.encode(dossier, config: fixtureConfig)
}()

func check(_ bytes: [UInt8]) {
    guard let dossier = try? DossierRecord.decode(code: "D-1", bytes, config: fixtureConfig) else { return }
    let encoded = DossierRecord.encode(dossier, config: fixtureConfig)
    guard let again = try? DossierRecord.decode(code: "D-1", encoded, config: fixtureConfig),
        DossierRecord.encode(again, config: fixtureConfig) == encoded
    else { fatalError("an accepted record does not read back after it is stored again: \(bytes)") }
    // What the worker derives from a loaded row must not trap either.
    _ = again.facts(config: fixtureConfig)
    _ = again.retirement(config: fixtureConfig, retainSeconds: 62 * 86_400)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDossierRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    check(input)
    var mutated = validRecord
    var i = 0
    while i + 1 < input.count {
        let position = Int(input[i]) % (mutated.count + 1)
        if position == mutated.count { mutated.append(input[i + 1]) } else { mutated[position] = input[i + 1] }
        i += 2
    }
    if input.count % 2 == 1 { mutated = Array(mutated.prefix(Int(input.last!) * mutated.count / 255)) }
    check(mutated)
    return 0
}
