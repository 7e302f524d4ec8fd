import Foundation
import Testing

@testable import SameDayCore

@Suite("The source column of units.csv and catalog.csv")
struct SourceColumnTests {
    private func catalog(_ rows: [String]) -> String {
        (["procedure,name,field,sla,cutoff,scope,source"] + rows).joined(separator: "\n") + "\n"
    }

    @Test("a cell is a citation, or unconfirmed / illustrative with an optional reason")
    func cells() {
        #expect(Provenance(cell: "K1 bo-cong-an/2.001159") == .cited("K1 bo-cong-an/2.001159"))
        #expect(Provenance(cell: "unconfirmed") == .unconfirmed(why: ""))
        #expect(Provenance(cell: "unconfirmed: no 2022 source") == .unconfirmed(why: "no 2022 source"))
        #expect(Provenance(cell: "illustrative:made up") == .illustrative(why: "made up"))
        // A word that only starts like one is a citation, as check-config.py reads it.
        #expect(Provenance(cell: "unconfirmedness") == .cited("unconfirmedness"))
        #expect(Provenance(cell: "") == nil)
        #expect(Provenance(cell: String(repeating: "x", count: 301)) == nil)
        #expect(Provenance.unconfirmed(why: "").isUnconfirmed && Provenance.illustrative(why: "x").isUnconfirmed)
        #expect(!Provenance.cited("S1").isUnconfirmed && !Provenance.unstated.isUnconfirmed)
    }

    @Test("the loader keeps each row's source; a file without the column states nothing")
    func loads() throws {
        let c = try Configuration.parse(
            Fixture.files(
                replacing: "catalog.csv",
                with: catalog([
                    "1.000001.000.00.00.H29,Chứng thực,Chứng thực,same-day,,city,\"S1, S2\"",
                    "1.000003.000.00.00.H29,Xây dựng,Xây dựng,days:3,,city,unconfirmed: only a hobby data set",
                ])))
        #expect(c.catalog.map(\.source) == [.cited("S1, S2"), .unconfirmed(why: "only a hobby data set")])
        #expect(c.unconfirmedRows.catalog == 1)
        #expect(Fixture.config.catalog.allSatisfy { $0.source == .unstated })
        #expect(Fixture.config.unconfirmedRows == (units: 0, catalog: 0))
    }

    @Test("an empty source is refused, naming the line and the field")
    func emptyRefused() {
        #expect {
            try Configuration.parse(
                Fixture.files(
                    replacing: "catalog.csv",
                    with: catalog(["1.000001.000.00.00.H29,Chứng thực,Chứng thực,same-day,,city,"])))
        } throws: { e in
            let e = e as! ConfigurationError
            return e.file == "catalog.csv" && e.line == 2 && e.field == "source"
                && e.message.contains("unconfirmed or illustrative")
        }
    }

    @Test("the shipped configuration: every row has a source, no code is illustrative, the vertical codes are real")
    func shipped() {
        #expect(hcmc.catalog.allSatisfy { $0.source != .unstated })
        #expect(hcmc.units.allSatisfy { $0.source != .unstated })
        let illustrative = hcmc.catalog.filter {
            if case .illustrative = $0.source { return true } else { return false }
        }
        #expect(illustrative.isEmpty)
        #expect(!hcmc.catalog.contains { $0.procedure.hasPrefix("9.") })
        // Every unconfirmed row says why.
        for e in hcmc.catalog {
            if case .unconfirmed(let why) = e.source { #expect(!why.isEmpty, "\(e.procedure)") }
        }
        // The police and social insurance register real same-day procedures; the tax offices none.
        let sameDayVertical = hcmc.catalog.filter {
            guard case .unit(let owner) = $0.scope, $0.sla == .sameDay else { return false }
            return hcmc.unitID(owner).map { hcmc.unit($0).block == .vertical } ?? false
        }
        #expect(
            Set(sameDayVertical.map { String($0.procedure.prefix(8)) }) == ["1.010041", "2.001159", "1.002759"])
    }

    @Test("seed-2022 draws no unconfirmed procedure unless asked")
    func seedDrawsConfirmedOnly() throws {
        let unconfirmed = Set(hcmc.catalog.filter { $0.source.isUnconfirmed }.map(\.procedure))
        #expect(unconfirmed.count == 6)
        let events = try SeedMonth(scenario: .seed, scale: 0.005).events(config: hcmc)
        #expect(!events.isEmpty)
        #expect(!events.contains { unconfirmed.contains($0.procedure) })
        let all = try SeedMonth(scenario: .seed, scale: 0.005, includeUnconfirmed: true).events(config: hcmc)
        #expect(all.contains { unconfirmed.contains($0.procedure) })
        // The vertical block's same-day dossiers are the police's and social insurance's.
        let vertical = Set(
            events.filter { $0.type == .received && $0.procedure.hasPrefix("1.0") && $0.unit.hasSuffix("G22") }
                .map(\.procedure))
        #expect(vertical == ["1.002759.000.00.00.H29"])
    }
}
