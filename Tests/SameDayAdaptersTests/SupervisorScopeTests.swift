import Foundation
import SameDayAdapters
import SameDayBroker
import SameDayCore
import Testing

@Suite("Supervisors' units in the unit-systems registry")
struct SupervisorRegistryTests {
    func parse(_ text: String, units: [SameDayCore.Unit]? = hcmc.units) throws -> UnitSystemRegistry {
        try UnitSystemRegistry.parse(Array(text.utf8), file: "unit-systems.json", units: units)
    }

    @Test("a bare name is city-level; an object has its units, and includeSubunits adds the units under them")
    func forms() throws {
        let registry = try parse(
            """
            {"unitSystems": [], "supervisors": [
              "so-noi-vu",
              {"name": "q1", "units": ["760"], "includeSubunits": true},
              {"name": "cong-an", "units": ["000.00.29.G01"], "includeSubunits": true},
              {"name": "q1-only", "units": ["760", "000.00.15.H29"], "includeSubunits": false},
              {"name": "stp", "units": ["000.00.15.H29"]}
            ]}
            """)
        let supervisors = registry.supervisors
        #expect(supervisors.map(\.name) == ["so-noi-vu", "q1", "cong-an", "q1-only", "stp"])
        #expect(supervisors[0].units == nil)
        let wards = hcmc.units.filter { $0.parent == "760" }.map(\.code)
        #expect(wards.count == 10 && wards.contains("26734"))
        #expect(supervisors[1].units?.first == "760" && Set(supervisors[1].units ?? []) == Set(["760"] + wards))
        #expect(supervisors[2].units == ["000.00.29.G01", "000.41.29.G01", "000.64.29.G01"])
        #expect(supervisors[3].units == ["760", "000.00.15.H29"], "no subunits unless asked")
        #expect(supervisors[4].units == ["000.00.15.H29"] && !supervisors[4].includeSubunits)
        let broker = try registry.brokerSupervisors()
        #expect(broker[0] == .init(name: "so-noi-vu") && broker[2].units?.count == 3)
        let users = SameDayBrokerUsers(unitSystems: [], supervisors: broker, topology: SameDayTopology(shards: 1))
        try users.validate()
        #expect(
            users.permissions(supervisor: broker[2]).topic?.read
                == "^([a-z_]+|\\*)\\.([a-z]+|\\*)\\.(000_00_29_G01|000_41_29_G01|000_64_29_G01)$")
        #expect(registry.supervisor(named: "q1")?.includeSubunits == true && registry.supervisor(named: "x") == nil)
    }

    @Test("the shipped registry: the city's supervisor and District 1's, with its wards")
    func shipped() throws {
        let registry = try UnitSystemRegistry.load(
            path: repoPath("deploy/adapters/unit-systems.json"), allowDemoTokens: true, units: hcmc.units)
        #expect(registry.supervisors.map(\.name) == ["so-noi-vu", "q1-lanh-dao"])
        #expect(registry.supervisors[0].units == nil && registry.supervisors[1].units?.count == 11)
    }

    @Test("mistakes are named with file, line, column and key")
    func errors() throws {
        let cases: [(String, String)] = [
            (
                "{\"unitSystems\": [], \"supervisors\": [\n  {\"name\": \"q1\", \"units\": [\"760\", \"999999\"]}]}",
                "unit-systems.json:2:35: key \"supervisors[0].units[1]\": unit \"999999\" is not in units.csv"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [7]}",
                "unit-systems.json:1:37: key \"supervisors[0]\": expected a name (a city-level supervisor) or an object"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\"}]}",
                "key \"supervisors[0].units\": missing: a non-empty array of unit codes (a city-level supervisor is a bare name)"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\", \"units\": []}]}",
                "key \"supervisors[0].units\": missing: a non-empty array"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\", \"units\": [\"760\"], \"subunits\": true}]}",
                "key \"supervisors[0].subunits\": unknown key (allowed: includeSubunits, name, units)"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\", \"units\": [\"760\"], \"includeSubunits\": \"yes\"}]}",
                "key \"supervisors[0].includeSubunits\": expected true or false"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [\"q1\", {\"name\": \"q1\", \"units\": [\"760\"]}]}",
                "key \"supervisors[1].name\": \"q1\" appears twice"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [\"so.noi.vu\"]}",
                "key \"supervisors[0]\": \"so.noi.vu\" is not a simple name"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\", \"units\": [\"*\"]}]}",
                "key \"supervisors[0].units[0]\": \"*\" is not a unit code"
            ),
            (
                "{\"unitSystems\": [], \"supervisors\": [{\"name\": \"q1\", \"units\": [\"760\", \"760\"]}]}",
                "key \"supervisors[0].units[1]\": \"760\" appears twice"
            ),
        ]
        for (text, expected) in cases {
            do {
                _ = try parse(text)
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }

    @Test("read without the configuration: units as listed, and includeSubunits fails only when broker users are made")
    func withoutConfiguration() throws {
        let text = """
            {"unitSystems": [], "supervisors": [
              {"name": "stp", "units": ["000.00.15.H29"]},
              {"name": "q1", "units": ["760", "not-checked"], "includeSubunits": true}
            ]}
            """
        let registry = try parse(text, units: nil)
        #expect(registry.supervisors[0].units == ["000.00.15.H29"] && registry.supervisors[0].missingUnitTree == nil)
        #expect(registry.supervisors[1].units == ["760", "not-checked"])
        do {
            _ = try registry.brokerSupervisors()
            Issue.record("expected an error")
        } catch {
            #expect(
                "\(error)"
                    == "unit-systems.json:3:70: key \"supervisors[1].includeSubunits\": her subunits come from the unit tree: give the configuration folder (--config DIR)"
            )
        }
        #expect(throws: (any Error).self) { try parse(text) }  // with the configuration, "not-checked" is unknown
    }
}
