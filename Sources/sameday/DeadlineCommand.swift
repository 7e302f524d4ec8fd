import ArgumentParser
import Foundation
import SameDayCore

/// `sameday deadline`: the deadline and alert thresholds of a dossier received now.
struct DeadlineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadline",
        abstract: "Compute a dossier's deadline and alert thresholds on its unit's working calendar.",
        discussion: """
            Prints one JSON object: sla, calendar, received, start (T0 moved into the next session), due, and the \
            warning, critical, overdue and escalated instants, all RFC 3339 with +07:00.
            """)

    @Option(help: "Configuration folder (units.csv, catalog.csv, calendars.json, optional alerting.json).")
    var config: String
    @Option(help: "Unit code from units.csv.")
    var unit: String
    @Option(help: "Procedure code (not in the catalog: the default SLA applies).")
    var procedure: String
    @Option(help: "When the dossier was received, RFC 3339 with offset.")
    var received: String

    func run() throws {
        try runReportingFailures {
            let cfg = try CoreFiles.loadConfiguration(config)
            let receivedAt = try CoreFiles.parseInstant(received, option: "--received")
            guard let unitID = cfg.unitID(unit) else { throw CommandFailure("--unit \"\(unit)\": not in units.csv") }
            let ref = cfg.procedureRef(procedure, unit: unitID)
            let d = cfg.deadline(unit: unitID, procedure: ref, received: receivedAt)
            // A dossier with just this `received` event gives the thresholds the worker would use.
            var dossier = Dossier(code: "deadline-query")
            _ = try dossier.insert(
                DossierEvent(
                    eventId: "q", dossier: "deadline-query", unit: unit, procedure: procedure, type: .received,
                    occurredAt: receivedAt, source: "cli"), config: cfg)
            let schedule = dossier.alertSchedule(state: dossier.state(config: cfg), config: cfg)
            var w = JSONWriter()
            w.beginObject()
            w.field("unit", unit)
            w.field("procedure", procedure)
            w.field("inCatalog", cfg.catalogEntry(ref) != nil ? "yes" : "no")
            if let entry = cfg.catalogEntry(ref) {
                w.field("scope", { if case .unit(let u) = entry.scope { return u } else { return "city" } }())
            }
            w.field("sla", d.sla.description)
            w.field("calendar", d.calendar)
            w.field("received", RFC3339.format(d.received))
            w.field("start", RFC3339.format(d.start))
            if let c = d.cutoff {
                w.field("cutoff", String(format: "%02d:%02d", c / 3600, c / 60 % 60))
                w.field("cutoffFrom", d.cutoffSource?.rawValue ?? "")
                w.key("afterCutoff")
                w.bool(d.afterCutoff)
            }
            w.field("due", RFC3339.format(d.due))
            for level in AlertLevel.clockLevels {
                w.key(level.name)
                if let at = schedule?.instants[level] { w.string(RFC3339.format(at)) } else { w.null() }
            }
            w.endObject()
            print(w.text)
        }
    }
}
