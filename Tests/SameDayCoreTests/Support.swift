import Foundation
import Testing

@testable import SameDayCore

/// The HCMC 2022 configuration as shipped (deploy/config/hcmc-2022): the seed scenario's, and the calendars through 2026.
let hcmc: Configuration = {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/config/hcmc-2022")
    func read(_ name: String) throws -> [UInt8] { try [UInt8](Data(contentsOf: dir.appendingPathComponent(name))) }
    do {
        return try Configuration.parse(
            ConfigurationFiles(
                units: read("units.csv"), catalog: read("catalog.csv"), calendars: read("calendars.json"),
                alerting: read("alerting.json")))
    } catch {
        fatalError("hcmc-2022 config: \(error)")
    }
}()

/// Test fixtures: the small configuration under `Fixtures/config`, read relative to this file.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/config")

    /// A fixture file's bytes; a missing one stops the run (an empty stand-in would make a configuration that must
    /// be refused look refused for the wrong reason).
    static func bytes(_ name: String) -> [UInt8] {
        do {
            return try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
        } catch {
            fatalError("fixture \(name): \(error)")
        }
    }

    static func files(replacing name: String? = nil, with content: String? = nil) -> ConfigurationFiles {
        func get(_ n: String) -> [UInt8] { n == name ? Array((content ?? "").utf8) : bytes(n) }
        return ConfigurationFiles(
            units: get("units.csv"), catalog: get("catalog.csv"), calendars: get("calendars.json"),
            alerting: get("alerting.json"))
    }

    static let config: Configuration = {
        do { return try Configuration.parse(files()) } catch { fatalError("fixture config: \(error)") }
    }()

    static let sameDay = "1.000001.000.00.00.H29"
    static let sameDayCutoff16 = "1.000002.000.00.00.H29"
    static let days3 = "1.000003.000.00.00.H29"
    static let hours4 = "1.000004.000.00.00.H29"
    static let days1 = "1.000005.000.00.00.H29"
}

/// `"2022-05-18 15:00"` in local time (+07:00).
func t(_ s: String) -> Instant {
    let full = s.count == 16 ? s.replacingOccurrences(of: " ", with: "T") + ":00+07:00" : s
    guard let v = RFC3339.parse(full) else { fatalError("bad test time \(s)") }
    return v
}

func fmt(_ i: Instant?) -> String {
    i.map { String(RFC3339.format($0).prefix(16)).replacingOccurrences(of: "T", with: " ") } ?? "nil"
}

/// Builds events for one dossier with sequential ids.
struct EventBuilder {
    var dossier = "760-220518-0001"
    var unit = "760"
    var procedure = Fixture.sameDay
    var n = 0

    mutating func callAsFunction(
        _ type: EventType, _ at: String, channel: Channel? = nil, outcome: Outcome? = nil, newDue: String? = nil
    ) -> DossierEvent {
        n += 1
        return DossierEvent(
            eventId: "\(dossier)#\(n)", dossier: dossier, unit: unit, procedure: procedure, type: type,
            occurredAt: t(at), channel: type == .received ? (channel ?? .direct) : nil, outcome: outcome,
            newDueAt: newDue.map(t), source: "test")
    }
}

extension Array where Element == DossierAction {
    var alerts: [Alert] {
        compactMap { if case .emit(let a) = $0 { return a } else { return nil } }
    }
}
