import Foundation
import RabbitMQ
import SameDayBroker
import SameDayTestKit
import Testing

@testable import SameDayBroker

@Suite("Broker users, passwords and TLS URLs")
struct BrokerUsersTests {
    @Test("SHA-256 matches FIPS 180-4 vectors (empty, abc, two blocks, 1 KiB)")
    func sha256() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(
            hex(SHA256.digest([]))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            hex(SHA256.digest(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(SHA256.digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let kibibyte = (0..<4).flatMap { _ in (0...255).map { UInt8($0) } }
        #expect(
            hex(SHA256.digest(kibibyte)) == "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9")
    }

    @Test("RabbitMQ password hash: base64(salt ‖ SHA-256(salt ‖ password)), RabbitMQ's documented example")
    func passwordHash() {
        // RabbitMQ's documentation: password "test12" with salt 908DC60A.
        #expect(
            RabbitPasswordHash.make(password: "test12", salt: [0x90, 0x8D, 0xC6, 0x0A])
                == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR")
        // UTF-8, as the broker hashes it (value from Python's hashlib).
        #expect(
            RabbitPasswordHash.make(password: "mật khẩu dài dài 123", salt: [1, 2, 3, 4])
                == "AQIDBLTrMq8R/4ZzH9Tlwnt3KzVhrx8t8/r+3cg+yRecnYUP")
        let a = RabbitPasswordHash.make(password: "correct horse battery staple")
        let b = RabbitPasswordHash.make(password: "correct horse battery staple")
        #expect(a != b, "each hash has its own random salt")
        #expect(RabbitPasswordHash.matches(a, password: "correct horse battery staple"))
        #expect(!RabbitPasswordHash.matches(a, password: "correct horse battery stapl"))
    }

    @Test("secrets: a missing, open, or short password file is an error naming each file; 0600 and 0400 load")
    func secrets() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.writeSecret(folder, "worker", "a-long-worker-password-0001", mode: 0o600)
        try Self.writeSecret(folder, "receiver", "a-long-receiver-password-01\n", mode: 0o400)
        #expect(
            try BrokerSecrets.load(folder: folder, users: ["worker", "receiver"])
                == ["worker": "a-long-worker-password-0001", "receiver": "a-long-receiver-password-01"])
        try Self.writeSecret(folder, "adapter.q1", "a-long-adapter-password-001", mode: 0o644)
        try Self.writeSecret(folder, "supervisor.x", "short", mode: 0o600)
        do {
            _ = try BrokerSecrets.load(folder: folder, users: ["worker", "adapter.q1", "supervisor.x", "nobody"])
            Issue.record("expected an error")
        } catch let error as BrokerSecretsError {
            #expect(error.problems.count == 3)
            #expect(error.description.contains("\(folder)/adapter.q1.password: mode 644"))
            #expect(error.description.contains("\(folder)/supervisor.x.password: the password must be at least 16"))
            #expect(error.description.contains("\(folder)/nobody.password: missing"))
            #expect(!error.description.contains("short"), "never print a password")
        }
    }

    @Test("the definitions in git hold no password hash, and one user per role with the expected rights")
    func definitionsInGitHoldNoSecret() throws {
        for file in ["deploy/rabbitmq/definitions.json", "deploy/rabbitmq/users.json"] {
            let data = try Data(contentsOf: repositoryRoot.appendingPathComponent(file))
            let document = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            let users = document["users"] as! [[String: Any]]
            #expect(users.allSatisfy { ($0["password_hash"] as? String) == "" }, "\(file) must hold no hash")
            #expect(
                Set(users.map { $0["name"] as! String }) == [
                    "adapter.motcua-q1", "adapter.dvc-so-tu-phap", "receiver", "worker", "notify", "board",
                    "supervisor.so-noi-vu", "supervisor.q1-lanh-dao",
                ])
        }
        let users = SameDayBrokerUsers(
            unitSystems: [.init(name: "q1", units: ["760", "26734"]), .init(name: "stp", units: ["000.00.18.H29"])],
            supervisors: ["so-noi-vu"], topology: SameDayTopology(shards: 4))
        let receiver = users.permissions(receiver: "receiver")
        #expect(receiver.configure == "^$" && receiver.read == "^$" && receiver.write == "^sameday\\.events$")
        #expect(receiver.topic?.write == "^[a-z]+\\.(000_00_18_H29|26734|760)\\.[a-z_]+$")
        let worker = users.permissions(worker: "worker")
        #expect(worker.configure == "^$")
        #expect(worker.write == "^(sameday\\.alerts|sameday\\.dead)$")
        #expect(worker.read == "^(sameday\\.work\\.[0-9]+|sameday\\.events\\.log)$", "sameday sources reads the stream")
        let notify = users.permissions(notify: "notify")
        #expect(notify.configure == "^sameday\\.notify$")
        #expect(notify.write == "^(sameday\\.notify|sameday\\.dead)$", "binding, and the dead-letter exchange it names")
        #expect(notify.read == "^(sameday\\.alerts|sameday\\.notify)$", "it reads its queue and binds to the alerts")
        let board = users.permissions(board: "board")
        #expect(board.configure == "^sameday\\.board$" && board.write == "^(sameday\\.board|sameday\\.dead)$")
        #expect(board.read == "^(sameday\\.alerts|sameday\\.board)$")
        let supervisor = users.permissions(supervisor: "so-noi-vu")
        #expect(
            supervisor.configure == "^sameday\\.alerts\\.so-noi-vu\\..+$" && supervisor.write == supervisor.configure)
        #expect(supervisor.read == "^sameday\\.alerts(\\.so-noi-vu(\\..+)?)?$")
        #expect(throws: BrokerUsersError.self) {
            try SameDayBrokerUsers(unitSystems: [], supervisors: ["a.b"], topology: SameDayTopology(shards: 1))
                .validate()
        }
    }

    @Test("a supervisor with units may bind only her units' alert keys; a city-level one has no topic permission")
    func supervisorScope() throws {
        let users = SameDayBrokerUsers(
            unitSystems: [],
            supervisors: [
                "city", .init(name: "q1", units: ["760", "26734"]), .init(name: "ca", units: ["000.00.29.G01"]),
            ],
            topology: SameDayTopology(shards: 1))
        try users.validate()
        #expect(users.permissions(supervisor: "city").topic == nil)
        let q1 = users.permissions(supervisor: users.supervisors[1])
        #expect(q1.topic?.exchange == "sameday.alerts" && q1.topic?.write == "^$")
        #expect(q1.topic?.read == "^([a-z_]+|\\*)\\.([a-z]+|\\*)\\.(26734|760)$")
        // Her queues and the exchange, as before: the topic permission is what narrows her to her units.
        #expect(q1.read == "^sameday\\.alerts(\\.q1(\\..+)?)?$" && q1.configure == "^sameday\\.alerts\\.q1\\..+$")
        let ca = try #require(users.permissions(supervisor: users.supervisors[2]).topic?.read)
        #expect(ca == "^([a-z_]+|\\*)\\.([a-z]+|\\*)\\.(000_00_29_G01)$")

        // RabbitMQ matches the pattern against the binding key (an unanchored search, hence ^…$).
        func allows(_ pattern: String, _ key: String) throws -> Bool {
            let regex = try NSRegularExpression(pattern: pattern)
            return regex.firstMatch(in: key, range: NSRange(key.startIndex..., in: key)) != nil
        }
        let read = try #require(q1.topic?.read)
        for key in ["*.*.760", "overdue.*.760", "*.commune.26734", "resolved_late.district.760", "source_silent.*.760"]
        {
            #expect(try allows(read, key), "\(key)")
        }
        for key in [
            "#", "*.*.*", "*.*.761", "*.*.7600", "*.*.76", "*.*.2673", "#.760", "*.760", "*.*.760.#", "*.*.760.*",
            "*.*.#", "#.#.760x", "x760", "*.*.000_00_29_G01", "Overdue.*.760",
        ] {
            #expect(try !allows(read, key), "\(key)")
        }
        // `$` also matches before a final newline (PCRE, as in RabbitMQ, and ICU alike): such a key is allowed, and
        // binds a last word "760\n" that no alert key has, so it brings nothing.
        #expect(try allows(read, "*.*.760\n"))
        #expect(try allows(ca, "*.vertical.000_00_29_G01"))
        // The code as written, with dots, is never a routing-key word; nor does a dot match any character.
        #expect(try !allows(ca, "*.*.000.00.29.G01") && !allows(ca, "*.*.000_00_29xG01"))

        // A unit that would be a wildcard, or no unit at all, is refused before it reaches the broker.
        for units in [["*"], ["760", "#"], []] {
            #expect(throws: BrokerUsersError.self, "\(units)") {
                try SameDayBrokerUsers(
                    unitSystems: [], supervisors: [.init(name: "x", units: units)], topology: SameDayTopology(shards: 1)
                ).validate()
            }
        }
    }

    @Test("a watch binds one key per unit; a durable watch queue is a bounded quorum queue that never expires")
    func watchQueues() {
        #expect(AlertWatch.routingKeys(level: nil, block: nil, units: []) == ["*.*.*"])
        #expect(
            AlertWatch.routingKeys(level: "overdue", block: nil, units: ["760", "000.00.29.G01", "760"])
                == ["overdue.*.760", "overdue.*.000_00_29_G01"])
        let topology = SameDayTopology(shards: 1)
        #expect(AlertWatch.durableQueue(topology: topology, owner: "q1", name: "inbox") == "sameday.alerts.q1.inbox")
        let durable = AlertWatch.declarations(
            topology: topology, queue: "sameday.alerts.q1.inbox", routingKeys: ["*.*.760", "*.*.26734"], durable: true)
        #expect(durable.queues.map(\.kind) == [.quorum] && durable.queues[0].durable)
        #expect(durable.queues[0].arguments["x-expires"] == nil)
        #expect(durable.queues[0].arguments["x-max-length"] == .int(AlertWatch.durableMaxLength))
        #expect(durable.bindings.map(\.routingKey) == ["*.*.760", "*.*.26734"])
        let transient = AlertWatch.declarations(topology: topology, queue: "q", routingKey: "#")
        #expect(transient.queues[0].kind == .classic && !transient.queues[0].durable)
        #expect(transient.queues[0].arguments["x-expires"] == .int(AlertWatch.expiresMilliseconds))
    }

    @Test("generated with secrets, every user gets a hash of its own password")
    func definitionsWithSecrets() throws {
        let users = SameDayBrokerUsers(
            unitSystems: [.init(name: "q1", units: ["760"])], supervisors: ["sv"], topology: SameDayTopology(shards: 1))
        let passwords = Dictionary(uniqueKeysWithValues: users.userNames.map { ($0, "pw-of-\($0)-0123456789") })
        let data = users.definitionsJSON(passwordHashes: try users.passwordHashes(passwords: passwords))
        let listed = (try JSONSerialization.jsonObject(with: data) as! [String: Any])["users"] as! [[String: Any]]
        #expect(listed.count == 6, "adapter, receiver, worker, notify, board, supervisor")
        for user in listed {
            let name = user["name"] as! String
            #expect(user["hashing_algorithm"] as? String == "rabbit_password_hashing_sha256")
            #expect(RabbitPasswordHash.matches(user["password_hash"] as! String, password: passwords[name]!))
        }
        #expect(throws: BrokerUsersError.self) { try users.passwordHashes(passwords: ["worker": "x"]) }
    }

    @Test("amqps URLs carry the TLS files as RabbitMQ's query parameters; bad ones are named")
    func tlsQueryParameters() throws {
        let url = try BrokerURL(
            parsing:
                "amqps://w:p%3Fq@localhost:5671/%2F?cacertfile=/tls/ca.pem&certfile=/tls/c.pem&keyfile=/tls/c%20k.key")
        #expect(url.useTLS && url.host == "localhost" && url.password == "p?q" && url.virtualHost == "/")
        #expect(
            url.tls
                == TLSConfiguration(
                    caCertificatePath: "/tls/ca.pem", clientCertificatePath: "/tls/c.pem", clientKeyPath: "/tls/c k.key"
                ))
        #expect(try BrokerURL(parsing: "amqps://h?verify=verify_none").tls?.verifyPeer == false)
        #expect(try BrokerURL(parsing: "amqps://h").tls == nil)
        #expect(try BrokerURL(parsing: "amqp://u:pa?ss@h/v").password == "pa?ss")
        for (text, expected) in [
            ("amqp://h/v?cacertfile=/x", "amqps:// only"),
            ("amqps://h?heartbeat=5", "query parameter 'heartbeat' is not supported"),
            ("amqps://h?certfile=/c.pem", "certfile and keyfile go together"),
            ("amqps://h?verify=maybe", "verify_peer or verify_none"),
            ("amqps://h?cacertfile=", "needs a value"),
        ] {
            #expect(throws: AMQPError.self, "\(text)") { try BrokerURL(parsing: text) }
            do { _ = try BrokerURL(parsing: text) } catch { #expect(error.message.contains(expected), "\(text)") }
        }
    }

    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sameday-secrets-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    static func writeSecret(_ folder: String, _ user: String, _ password: String, mode: Int) throws {
        let path = BrokerSecrets.path(folder: folder, user: user)
        try Data(password.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }
}

@Suite("Broker users on the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct BrokerUsersBrokerTests {
    /// Every role, created from generated definitions (with hashes from a secrets folder) in a throwaway vhost,
    /// logs in with its password and is refused what its role must not do.
    @Test("each role logs in with its generated password hash and is refused what it must not do")
    func everyRoleLeastPrivilege() async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let vhost = "test.roles.\(tag)"
        let topology = SameDayTopology(shards: 2)
        let users = SameDayBrokerUsers(
            unitSystems: [
                .init(name: "q1-\(tag)", units: ["760", "26734"]), .init(name: "stp-\(tag)", units: ["000.00.18.H29"]),
            ],
            supervisors: [.init(name: "sv-\(tag)"), .init(name: "other-\(tag)")], topology: topology,
            worker: "test.worker.\(tag)",
            receiver: "test.receiver.\(tag)")
        try users.validate()
        let secrets = try BrokerUsersTests.temporaryFolder()
        let passwords = Dictionary(uniqueKeysWithValues: users.userNames.map { ($0, "pw-\(UUID().uuidString)") })
        for (user, password) in passwords { try BrokerUsersTests.writeSecret(secrets, user, password, mode: 0o600) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(vhost).json")
        let hashes = try users.passwordHashes(passwords: BrokerSecrets.load(folder: secrets, users: users.userNames))
        try users.definitionsJSON(
            mergedWith: topology.topology.definitionsJSON(virtualHost: vhost), virtualHost: vhost,
            passwordHashes: hashes
        ).write(to: file)
        defer {
            for user in users.userNames { _ = try? LocalBroker.rabbitmqctl(["delete_user", user]) }
            _ = try? LocalBroker.rabbitmqctl(["delete_vhost", vhost])
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(atPath: secrets)
        }
        try LocalBroker.rabbitmqctl(["import_definitions", file.path])
        try LocalBroker.rabbitmqctl(["set_permissions", "-p", vhost, LocalBroker.url.user, ".*", ".*", ".*"])
        // Each login below uses the password from the secrets folder against the hash in the imported file.

        @Sendable func login(_ user: String, password: String? = nil) -> ConnectionConfiguration {
            var connection = LocalBroker.configuration(name: "roles.\(user)")
            connection.brokers[0].user = user
            connection.brokers[0].password = password ?? passwords[user]!
            connection.brokers[0].virtualHost = vhost
            connection.reconnect = Backoff.Policy(initialDelay: .milliseconds(10), maximumAttempts: 1)
            return connection
        }
        let adapter = login(SameDayBrokerUsers.userName(unitSystem: "q1-\(tag)"))
        let receiver = login("test.receiver.\(tag)")
        let worker = login("test.worker.\(tag)")
        let supervisor = login(SameDayBrokerUsers.userName(supervisor: "sv-\(tag)"))
        let events = topology.eventsExchange
        let watchQueue = AlertWatch.queue(topology: topology, owner: "sv-\(tag)", instance: "test.1")

        let outcome = try await BlockingThread.run { () throws -> [String: Outcome] in
            var seen: [String: Outcome] = [:]
            // Unit system (adapter): its own units' events only; it declares and reads nothing.
            seen["adapter publishes its unit"] = Self.publish(adapter, events, "district.760.received")
            seen["adapter publishes another unit"] = Self.publish(adapter, events, "district.769.received")
            seen["adapter declares a queue"] = Self.declare(
                adapter, Topology(queues: [.init("x-\(tag)", kind: .classic)]))
            seen["adapter consumes a shard"] = Self.consume(adapter, topology.workQueue(0))
            // Receiver: every served unit, nothing else.
            seen["receiver publishes District 1"] = Self.publish(receiver, events, "commune.26734.received")
            seen["receiver publishes the department"] = Self.publish(
                receiver, events, "department.000_00_18_H29.received")
            seen["receiver publishes an unserved unit"] = Self.publish(receiver, events, "district.769.received")
            seen["receiver consumes a shard"] = Self.consume(receiver, topology.workQueue(0))
            // Worker: consumes shards, publishes alerts and dead letters; configures nothing, publishes no event.
            seen["worker consumes a shard"] = Self.consume(worker, topology.workQueue(1))
            seen["worker publishes a dead letter"] = Self.publish(worker, topology.deadLetterExchange, "x")
            seen["worker declares an exchange"] = Self.declare(
                worker, Topology(exchanges: [.init("x-\(tag)", kind: .topic)]))
            seen["worker publishes an event"] = Self.publish(worker, events, "district.760.received")
            // `sameday sources` logs in as the worker and reads the events stream; a supervisor may not.
            seen["worker reads the events stream"] = Self.consume(worker, topology.eventsStream)
            seen["supervisor reads the events stream"] = Self.consume(supervisor, topology.eventsStream)
            // Supervisor: its own watch queue on the alerts exchange, and nothing else.
            seen["supervisor declares and binds its watch queue"] = Self.declare(
                supervisor, AlertWatch.declarations(topology: topology, queue: watchQueue, routingKey: "*.*.760"))
            seen["worker publishes an alert"] = Self.publish(worker, topology.alertsExchange, "overdue.district.760")
            seen["supervisor reads the alert"] = Self.consume(supervisor, watchQueue, expectMessage: true)
            seen["supervisor publishes an alert"] = Self.publish(
                supervisor, topology.alertsExchange, "overdue.district.760")
            seen["supervisor declares another supervisor's queue"] = Self.declare(
                supervisor,
                AlertWatch.declarations(
                    topology: topology,
                    queue: AlertWatch.queue(topology: topology, owner: "other-\(tag)", instance: "1"),
                    routingKey: "#"))
            seen["supervisor binds its queue to the events"] = Self.declare(
                supervisor, Topology(bindings: [.init(from: events, to: .queue(watchQueue), routingKey: "#")]))
            seen["supervisor consumes a shard"] = Self.consume(supervisor, topology.workQueue(0))
            seen["wrong password"] = Self.publish(
                login("test.worker.\(tag)", password: "not-it"), topology.alertsExchange, "x")
            return seen
        }
        let allowed = [
            "adapter publishes its unit", "receiver publishes District 1", "receiver publishes the department",
            "worker consumes a shard", "worker reads the events stream", "worker publishes a dead letter",
            "worker publishes an alert",
            "supervisor declares and binds its watch queue", "supervisor reads the alert",
        ]
        for (what, result) in outcome.sorted(by: { $0.key < $1.key }) {
            if allowed.contains(what) {
                #expect(result == .allowed, "\(what)")
            } else if what == "wrong password" {
                #expect(result == .loginRefused, "\(what)")
            } else {
                #expect(result == .refused403, "\(what) must be refused (403 ACCESS_REFUSED)")
            }
        }
        #expect(outcome.count == allowed.count + 13, "every case ran")
    }

    enum Outcome: Equatable, CustomStringConvertible {
        case allowed, refused403, loginRefused
        case other(String)
        var description: String {
            switch self {
            case .allowed: "allowed"
            case .refused403: "refused (403)"
            case .loginRefused: "login refused"
            case .other(let text): text
            }
        }
    }

    static func outcome(_ error: any Error) -> Outcome {
        guard let error = error as? AMQPError else { return .other("\(error)") }
        if error.kind == .authenticationFailed || error.message.contains("wrong credentials") { return .loginRefused }
        if error.replyCode == 403 { return .refused403 }
        return .other("\(error)")
    }

    static func publish(_ connection: ConnectionConfiguration, _ exchange: String, _ key: String) -> Outcome {
        do {
            let publisher = try Publisher(PublisherConfiguration(connection: connection, confirmTimeout: .seconds(5)))
            defer { publisher.close() }
            try publisher.publish(
                OutboundMessage(
                    exchange: exchange, routingKey: key, body: Array("{}".utf8), messageID: UUID().uuidString))
            try publisher.waitForConfirms(timeout: .seconds(5))
            return .allowed
        } catch {
            return outcome(error)
        }
    }

    static func declare(_ connection: ConnectionConfiguration, _ topology: Topology) -> Outcome {
        do {
            let opened = try Connection.open(connection)
            defer { opened.close() }
            try topology.declare(on: opened)
            return .allowed
        } catch {
            return outcome(error)
        }
    }

    static func consume(_ connection: ConnectionConfiguration, _ queue: String, expectMessage: Bool = false)
        -> Outcome
    {
        do {
            let consumer = try Consumer(ConsumerConfiguration(connection: connection, queue: queue, prefetch: 10))
            defer { consumer.close() }
            if expectMessage {
                guard let delivery = try consumer.next(timeout: .seconds(5)) else { return .other("no message") }
                try consumer.ack(delivery.tag)
            }
            return .allowed
        } catch {
            return outcome(error)
        }
    }
}
