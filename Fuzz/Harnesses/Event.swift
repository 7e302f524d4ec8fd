// Fuzz target `event`: the strict event decoder (`DossierEvent.decode`) and canonical encoder, the admission checks
// every consumer makes (`Configuration.admissionRefusal`: unit, routing key, dossier header, ownership), then the
// dossier state machine on the events the entries would accept (docs/fuzzing.md). Traps when an accepted event does
// not encode to a text that decodes back to it (times outside the local years 0000–9999 must not decode at all),
// holds a control character, or is admitted for a dossier its unit does not own.
import Foundation

@testable import SameDayCore

let firstFormattable = RFC3339.parse("0000-01-01T00:00:00+07:00")!
let lastFormattable = RFC3339.parse("9999-12-31T23:59:59+07:00")!
/// The clock of the checks: the bounds' "not after now + 1 day" is taken from 2030.
let fuzzNow = RFC3339.parse("2030-01-01T00:00:00+07:00")!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEvent(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    guard let event = try? DossierEvent.decode(raw) else { return 0 }
    if let text = String(validating: raw, as: UTF8.self), (try? DossierEvent.decode(text)) != event {
        fatalError("decode(String) differs")
    }
    for (field, value) in [
        ("eventId", event.eventId), ("dossier", event.dossier), ("unit", event.unit), ("procedure", event.procedure),
        ("source", event.source),
    ] where Printable.hasControlCharacter(value) {
        fatalError("accepted a control character in \(field): \(Printable.escaped(value))")
    }
    checkAdmission(event)
    let times = [event.occurredAt] + [event.newDueAt, event.promisedAt].compactMap { $0 }
    let text = event.encoded()
    if times.allSatisfy({ $0 >= firstFormattable && $0 <= lastFormattable }) {
        guard let back = try? DossierEvent.decode(text), back == event else {
            fatalError("round trip: \(event) → \(text) → \(String(describing: try? DossierEvent.decode(text)))")
        }
    } else {
        guard (try? DossierEvent.decode(text)) == nil else { fatalError("out of range time read back: \(text)") }
        return 0
    }
    // What every entry accepts goes on to the state machine (as the worker would apply it).
    guard EventTimeBounds.standard.violation(of: event, now: fuzzNow) == nil else { return 0 }
    var dossier = Dossier(code: event.dossier)
    _ = try? dossier.apply(event, now: event.occurredAt, config: fixtureConfig)
    _ = dossier.advance(to: event.occurredAt + 40 * 86_400, config: fixtureConfig)
    _ = dossier.facts(config: fixtureConfig)
    return 0
}

/// An event with the envelope an honest adapter would give it: admitted only if its unit is in the registry (as the
/// same bytes) and its dossier code carries that unit's agency id, or a declared pair's.
func checkAdmission(_ event: DossierEvent) {
    let block = fixtureConfig.unitID(event.unit).map { fixtureConfig.unit($0).block } ?? .district
    let envelope = DeliveryEnvelope(
        routingKey: Unit.routingKey(block: block, code: event.unit, type: event.type), dossierHeader: event.dossier,
        messageID: event.eventId)
    guard fixtureConfig.admissionRefusal(of: event, envelope: envelope) == nil else { return }
    guard let unit = fixtureConfig.unitID(event.unit), fixtureConfig.unit(unit).code.utf8.elementsEqual(event.unit.utf8)
    else { fatalError("admitted an event of an unknown unit: \(Printable.escaped(event.unit))") }
    guard let agency = DossierCode.agency(of: event.dossier) else {
        fatalError("admitted a dossier code without an agency: \(Printable.escaped(event.dossier))")
    }
    if !agency.utf8.elementsEqual(event.unit.utf8) {
        guard let owner = fixtureConfig.unitID(String(agency)),
            fixtureConfig.sharesDossiers(receiving: owner, resolving: unit)
        else { fatalError("admitted \(event.unit) on \(Printable.escaped(event.dossier))") }
    }
}
