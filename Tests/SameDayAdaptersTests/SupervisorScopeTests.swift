import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayTestKit
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

@Suite("Supervisors see only their units, on the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct SupervisorScopeBrokerTests {
    /// Two supervisors from a registry read with the HCMC unit tree: District 1 with its wards (11 units) and the
    /// city police with its district offices (3), imported with passwords into a throwaway vhost.
    final class Fixture {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let vhost: String
        let topology = SameDayTopology(shards: 1)
        let folder: String
        let district: String
        let police: String
        let users: SameDayBrokerUsers
        var passwords: [String: String] = [:]

        init() throws {
            vhost = "test.scope.\(tag)"
            district = "q1-\(tag)"
            police = "ca-\(tag)"
            folder = temporaryFolder("scope")
            write(
                """
                {"unitSystems": [], "supervisors": [
                  {"name": "\(district)", "units": ["760"], "includeSubunits": true},
                  {"name": "\(police)", "units": ["000.00.29.G01"], "includeSubunits": true}
                ]}
                """, to: folder + "/unit-systems.json")
            let registry = try UnitSystemRegistry.load(
                path: folder + "/unit-systems.json", allowDemoTokens: false, units: hcmc.units)
            users = SameDayBrokerUsers(
                unitSystems: [], supervisors: try registry.brokerSupervisors(), topology: topology, worker: nil,
                receiver: nil, notify: nil)
            try users.validate()
            passwords = Dictionary(uniqueKeysWithValues: users.userNames.map { ($0, "pw-\(UUID().uuidString)") })
            let file = folder + "/definitions.json"
            try users.definitionsJSON(
                mergedWith: topology.topology.definitionsJSON(virtualHost: vhost), virtualHost: vhost,
                passwordHashes: users.passwordHashes(passwords: passwords)
            ).write(to: URL(fileURLWithPath: file))
            try LocalBroker.rabbitmqctl(["import_definitions", file])
            try LocalBroker.rabbitmqctl(["set_permissions", "-p", vhost, LocalBroker.url.user, ".*", ".*", ".*"])
            // Everything published is also routed here, so a key no supervisor binds is not unroutable.
            let admin = try Connection.open(operatorLogin)
            defer { admin.close() }
            try Topology(
                queues: [.init("sink", kind: .classic)],
                bindings: [.init(from: topology.alertsExchange, to: .queue("sink"), routingKey: "#")]
            ).declare(on: admin)
            for name in [district, police] {
                let user = SameDayBrokerUsers.userName(supervisor: name)
                writeSecret(
                    "amqp://\(user):\(passwords[user]!)@\(LocalBroker.url.host):\(LocalBroker.url.port)/\(vhost)\n",
                    to: folder + "/\(name).url")
                try FileManager.default.createDirectory(
                    atPath: folder + "/run-\(name)", withIntermediateDirectories: true)
            }
        }

        func cleanUp() {
            for user in users.userNames { _ = try? LocalBroker.rabbitmqctl(["delete_user", user]) }
            _ = try? LocalBroker.rabbitmqctl(["delete_vhost", vhost])
            try? FileManager.default.removeItem(atPath: folder)
        }

        var operatorLogin: ConnectionConfiguration {
            var connection = LocalBroker.configuration(name: "scope-operator")
            connection.brokers[0].virtualHost = vhost
            return connection
        }

        func login(_ supervisor: String) -> ConnectionConfiguration {
            let user = SameDayBrokerUsers.userName(supervisor: supervisor)
            var connection = operatorLogin
            connection.brokers[0].user = user
            connection.brokers[0].password = passwords[user]!
            connection.reconnect = Backoff.Policy(initialDelay: .milliseconds(10), maximumAttempts: 1)
            return connection
        }

        /// Publishes one alert per (routing key, dossier), as the worker does.
        func publish(_ alerts: [(key: String, dossier: String)]) throws {
            let publisher = try Publisher(
                PublisherConfiguration(connection: operatorLogin, confirmTimeout: .seconds(5)))
            defer { publisher.close() }
            for (key, dossier) in alerts {
                let parts = key.split(separator: ".")
                let body = """
                    {"alertId":"\(dossier)-\(parts[0])","level":"\(parts[0])","block":"\(parts[1])",\
                    "unit":"\(parts[2].replacingOccurrences(of: "_", with: "."))","dossier":"\(dossier)",\
                    "firedAt":"2022-05-18T17:00:00+07:00"}
                    """
                try publisher.publish(
                    OutboundMessage(
                        exchange: topology.alertsExchange, routingKey: key, body: Array(body.utf8),
                        messageID: "\(dossier)-\(parts[0])"))
            }
            try publisher.waitForConfirms(timeout: .seconds(5))
        }

        /// `sameday alerts …` as `supervisor`, run in a folder of its own.
        func start(_ supervisor: String, _ arguments: [String]) throws -> Process {
            try startSameday(
                arguments + [
                    "--url-file", folder + "/\(supervisor).url", "--config", repoPath("deploy/config/hcmc-2022"),
                ],
                in: folder + "/run-\(supervisor)", environment: environmentWithoutBroker())
        }

        func run(_ supervisor: String, _ arguments: [String], config: Bool = true) async throws -> CommandRun {
            let process = try startSameday(
                arguments + ["--url-file", folder + "/\(supervisor).url"]
                    + (config ? ["--config", repoPath("deploy/config/hcmc-2022")] : []),
                in: folder + "/run-\(supervisor)", environment: environmentWithoutBroker())
            return try await finishedWithin(.seconds(30), process, supervisor)
        }

        /// Waits for a started command; one still running after `limit` is stopped and the test fails.
        func finishedWithin(_ limit: Duration, _ process: Process, _ supervisor: String) async throws -> CommandRun {
            let deadline = ContinuousClock.now + limit
            while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning {
                process.terminate()
                Issue.record("sameday as \(supervisor) still running after \(limit)")
            }
            return finished(process, in: folder + "/run-\(supervisor)")
        }

        /// The routing keys bound from the alerts exchange to the queues whose names start with `prefix`.
        func boundKeys(queuePrefix prefix: String) throws -> [String] {
            let listing = try LocalBroker.rabbitmqctl([
                "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key", "-q",
                "--no-table-headers",
            ])
            return listing.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard fields.count == 3, fields[0] == topology.alertsExchange, fields[1].hasPrefix(prefix) else {
                    return nil
                }
                return fields[2]
            }
        }

        /// Waits until `condition` holds (polling), or fails the test after `limit`.
        func waitUntil(_ what: String, limit: Duration = .seconds(20), _ condition: () throws -> Bool) async throws {
            let deadline = ContinuousClock.now + limit
            while ContinuousClock.now < deadline {
                if try condition() { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            Issue.record("timed out waiting: \(what)")
        }

        /// Name, type, durability and ready messages of the vhost's queues whose names start with `prefix`.
        func queues(prefix: String) throws -> [[String]] {
            try LocalBroker.rabbitmqctl([
                "list_queues", "-p", vhost, "name", "type", "durable", "messages_ready", "-q", "--no-table-headers",
            ]).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }.filter {
                $0.first?.hasPrefix(prefix) == true
            }
        }
    }

    @Test("two supervisors each watch their units' alerts, and the broker refuses each the other's")
    func twoSupervisors() async throws {
        let fixture = try Fixture()
        defer { fixture.cleanUp() }
        let (district, police) = (fixture.district, fixture.police)
        let registry = fixture.folder + "/unit-systems.json"
        // Each watches the units the registry gives her: one binding per unit, all accepted.
        let districtWatch = try fixture.start(
            district, ["alerts", "watch", "--unit-systems", registry, "--count", "2"])
        let policeWatch = try fixture.start(police, ["alerts", "watch", "--unit-systems", registry, "--count", "1"])
        defer { [districtWatch, policeWatch].filter(\.isRunning).forEach { $0.terminate() } }
        let districtQueues = "sameday.alerts.\(district).watch."
        let policeQueues = "sameday.alerts.\(police).watch."
        try await fixture.waitUntil("both watchers bound") {
            try fixture.boundKeys(queuePrefix: districtQueues).count == 11
                && fixture.boundKeys(queuePrefix: policeQueues).count == 3
        }
        #expect(try fixture.boundKeys(queuePrefix: districtQueues).contains("*.*.26734"))
        #expect(
            try Set(fixture.boundKeys(queuePrefix: policeQueues))
                == ["*.*.000_00_29_G01", "*.*.000_41_29_G01", "*.*.000_64_29_G01"])

        try fixture.publish([
            ("critical.district.761", "761-quan-12"),  // Quận 12: neither's
            ("overdue.vertical.000_41_29_G01", "ca-quan-1"),  // the police's District 1 office
            ("overdue.district.760", "760-quan-1"),
            ("warning.commune.26734", "26734-tan-dinh"),  // a ward of District 1
        ])
        let districtRun = try await fixture.finishedWithin(.seconds(20), districtWatch, district)
        let policeRun = try await fixture.finishedWithin(.seconds(20), policeWatch, police)
        #expect(districtRun.status == 0 && policeRun.status == 0, "\(districtRun.errors) \(policeRun.errors)")
        #expect(districtRun.output.contains("760-quan-1") && districtRun.output.contains("26734-tan-dinh"))
        #expect(districtRun.output.contains("Phường Tân Định"), "unit names from --config")
        #expect(policeRun.output.contains("ca-quan-1") && policeRun.output.contains("Công an Quận 1"))
        for other in ["761-quan-12", "ca-quan-1"] { #expect(!districtRun.output.contains(other)) }
        for other in ["761-quan-12", "760-quan-1", "26734-tan-dinh"] { #expect(!policeRun.output.contains(other)) }

        // Asking for the other's unit, or for every unit, is refused by the broker, and the command says so.
        for (supervisor, arguments, key) in [
            (district, ["--unit", "000.41.29.G01"], "*.*.000_41_29_G01"),
            (police, ["--unit", "760"], "*.*.760"),
            (police, ["--unit", "000.00.29.G01", "--unit", "26734"], "*.*.26734"),
            (district, [], "*.*.*"),
        ] {
            let run = try await fixture.run(supervisor, ["alerts", "watch"] + arguments + ["--count", "1"])
            #expect(run.status == 1, "\(supervisor) \(arguments)")
            #expect(
                run.errors.contains("the broker refused to bind sameday.alerts.\(supervisor).watch.")
                    && run.errors.contains(
                        "with key \(key) (403 ACCESS_REFUSED): supervisor.\(supervisor) may not read")
                    && run.errors.contains("ACCESS_REFUSED - access to topic '\(key)'"),
                "\(run.errors)")
            #expect(run.output.isEmpty)
        }

        // Below the command: a wildcard for the unit, or another unit, is refused the same way; her unit is not.
        let queue = "sameday.alerts.\(district).direct"
        let exchange = "sameday.alerts.\(district).fan"
        let login = fixture.login(district)
        let keys = ["#", "overdue.#", "*.*.760.#", "*.*.761", "overdue.*.760"]
        let refused = try await BlockingThread.run { () throws -> [String: UInt16] in
            let connection = try Connection.open(login)
            // Her configure permission covers exchanges in her namespace too: an exchange-to-exchange binding from
            // the alerts exchange is checked against the same pattern.
            try Topology(
                exchanges: [.init(exchange, kind: .topic, durable: false)],
                queues: [AlertWatch.queueDeclaration(queue, durable: false)]
            ).declare(on: connection)
            connection.close()
            var codes: [String: UInt16] = [:]
            for key in keys {
                for destination in [Topology.Binding.Destination.queue(queue), .exchange(exchange)] {
                    // A connection per attempt: a refusal closes the channel.
                    let attempt = try Connection.open(login)
                    defer { attempt.close() }
                    do {
                        try Topology(bindings: [.init(from: "sameday.alerts", to: destination, routingKey: key)])
                            .declare(on: attempt)
                        codes["\(destination) \(key)"] = 200
                    } catch {
                        codes["\(destination) \(key)"] = (error as? AMQPError)?.replyCode ?? 0
                    }
                }
            }
            return codes
        }
        for key in keys {
            for destination in [Topology.Binding.Destination.queue(queue), .exchange(exchange)] {
                #expect(
                    refused["\(destination) \(key)"] == (key == "overdue.*.760" ? 200 : 403), "\(destination) \(key)")
            }
        }
    }

    @Test("a durable watch gets what was raised while it was off; alerts delete removes it")
    func durableWatch() async throws {
        let fixture = try Fixture()
        defer { fixture.cleanUp() }
        let district = fixture.district
        let queue = "sameday.alerts.\(district).inbox"
        let watch = ["alerts", "watch", "--durable", "inbox", "--unit", "760", "--count", "1"]
        let first = try fixture.start(district, watch)
        defer { if first.isRunning { first.terminate() } }
        try await fixture.waitUntil("the durable queue bound") {
            try fixture.boundKeys(queuePrefix: queue) == ["*.*.760"]
        }
        #expect(try fixture.queues(prefix: queue).first?.prefix(3) == [queue, "quorum", "true"])
        try fixture.publish([("overdue.district.760", "760-while-on")])
        let on = try await fixture.finishedWithin(.seconds(20), first, district)
        #expect(on.status == 0 && on.output.contains("760-while-on"), "\(on.errors)")
        #expect(on.errors.contains("durable: kept when you stop, sameday alerts delete inbox removes it"))

        // Nobody watches: the queue stays and keeps what is raised.
        try fixture.publish([("critical.district.760", "760-while-off"), ("overdue.commune.26734", "26734-not-bound")])
        try await fixture.waitUntil("the alert waits in the queue") {
            try fixture.queues(prefix: queue).first?.last == "1"
        }
        let next = try await fixture.run(district, watch)
        #expect(next.status == 0 && next.output.contains("760-while-off"), "\(next.errors)")
        #expect(!next.output.contains("760-while-on") && !next.output.contains("26734-not-bound"))

        try fixture.publish([("warning.district.760", "760-left-behind")])
        try await fixture.waitUntil("one alert waits") { try fixture.queues(prefix: queue).first?.last == "1" }
        let deleted = try await fixture.run(district, ["alerts", "delete", "inbox"], config: false)
        #expect(deleted.status == 0 && deleted.output == "deleted \(queue) and the 1 alerts waiting in it\n")
        #expect(try fixture.queues(prefix: queue).isEmpty)
        let again = try await fixture.run(district, ["alerts", "delete", "inbox"], config: false)
        #expect(again.status == 1 && again.errors.contains("no queue \(queue) to delete"), "\(again.errors)")
    }
}
