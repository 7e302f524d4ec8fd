import Foundation
import RabbitMQ
import SameDayBroker
import SameDayTestKit
import Testing

/// The files in deploy/ as ops use them.
@Suite("Deploy: every shard on one host from the shipped files (needs broker)", .serialized)
struct DeployTests {
    /// The `Environment=` lines of the shipped worker unit for shard `shard`.
    func unitEnvironment(shard: Int, unit file: String = "sameday-worker@.service") throws -> [String: String] {
        let unit = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/systemd/" + file), encoding: .utf8)
        var environment: [String: String] = [:]
        for line in unit.split(separator: "\n") where line.hasPrefix("Environment=") {
            let assignment = line.dropFirst("Environment=".count).replacingOccurrences(of: "%i", with: "\(shard)")
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            environment[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
        }
        return environment
    }

    func get(_ url: String) -> Int32 {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "-o", "/dev/null", "--fail", "--max-time", "2", url]
        guard (try? curl.run()) != nil else { return -1 }
        curl.waitUntilExit()
        return curl.terminationStatus
    }

    @Test(
        "four workers start from deploy/worker.json and the systemd unit, each on its own metrics port; a second worker of a shard is refused"
    )
    func fourShardsOneHost() async throws {
        let prefix = LocalBroker.uniqueName("deploy") + "."
        let topology = SameDayTopology(shards: 4, namePrefix: prefix)
        let connection = try Connection.open(LocalBroker.configuration(name: "deploy test"))
        try topology.topology.declare(on: connection)
        connection.close()
        let folder = temporaryFolder("deploy")
        defer {
            if let cleanup = try? Connection.open(LocalBroker.configuration(name: "deploy cleanup")) {
                try? topology.topology.delete(on: cleanup)
                cleanup.close()
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
        func start(shard: Int, errors: Pipe? = nil) throws -> Process {
            var environment = ProcessInfo.processInfo.environment
            for (key, value) in try unitEnvironment(shard: shard) { environment[key] = value }
            // What differs from a real host: the state under a temporary folder, the test broker, a private
            // copy of the topology, the repository's configuration folder.
            environment["SAMEDAY_STATE_DIR"] = folder + "/shard-\(shard)"
            environment["SAMEDAY_AMQP_CREDENTIALS_FILE"] = ""
            environment["SAMEDAY_AMQP_URL"] = LocalBroker.url.description.replacingOccurrences(
                of: "guest@", with: "guest:guest@")
            environment["SAMEDAY_NAME_PREFIX"] = prefix
            environment["SAMEDAY_DOMAIN_CONFIG"] = hcmcConfiguration
            let process = Process()
            process.executableURL = try samedayExecutable()
            process.arguments = [
                "worker", "--config", repositoryRoot.appendingPathComponent("deploy/worker.json").path,
            ]
            process.environment = environment
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = errors ?? FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            return process
        }
        let workers = try (0..<4).map { try start(shard: $0) }
        defer { for worker in workers where worker.isRunning { worker.terminate() } }
        let deadline = ContinuousClock.now + .seconds(60)
        var ready: Set<Int> = []
        while ready.count < 4 && ContinuousClock.now < deadline {
            for shard in 0..<4 where !ready.contains(shard) && get("http://127.0.0.1:\(9464 + shard)/readyz") == 0 {
                ready.insert(shard)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(ready == [0, 1, 2, 3], "every shard ready on port 9464 + shard")
        #expect(workers.allSatisfy { $0.isRunning })

        let errors = Pipe()
        let second = try start(shard: 2, errors: errors)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus == 1)
        #expect(message.contains("held by another worker of shard 2"))

        for worker in workers { worker.terminate() }
        for worker in workers { worker.waitUntilExit() }
        #expect(workers.allSatisfy { $0.terminationStatus == 0 }, "SIGTERM stops each gracefully")
    }

    @Test(
        "sameday sources starts from deploy/worker.json and its systemd unit, answers /readyz on 9463, refuses a second instance and stops on SIGTERM"
    )
    func sourcesFromShippedFiles() async throws {
        let prefix = LocalBroker.uniqueName("deploy-sources") + "."
        let topology = SameDayTopology(shards: 4, namePrefix: prefix)
        let connection = try Connection.open(LocalBroker.configuration(name: "deploy sources test"))
        try topology.topology.declare(on: connection)
        connection.close()
        let folder = temporaryFolder("deploy-sources")
        defer {
            if let cleanup = try? Connection.open(LocalBroker.configuration(name: "deploy cleanup")) {
                try? topology.topology.delete(on: cleanup)
                cleanup.close()
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
        func start(errors: Pipe? = nil) throws -> Process {
            var environment = ProcessInfo.processInfo.environment
            for (key, value) in try unitEnvironment(shard: 0, unit: "sameday-sources.service") {
                environment[key] = value
            }
            #expect(environment["SAMEDAY_SOURCES_METRICS_LISTEN"] == "127.0.0.1:9463")
            environment["SAMEDAY_SOURCES_DIR"] = folder + "/sources"
            environment["SAMEDAY_AMQP_CREDENTIALS_FILE"] = ""
            environment["SAMEDAY_AMQP_URL"] = LocalBroker.url.description.replacingOccurrences(
                of: "guest@", with: "guest:guest@")
            environment["SAMEDAY_NAME_PREFIX"] = prefix
            environment["SAMEDAY_DOMAIN_CONFIG"] = hcmcConfiguration
            let process = Process()
            process.executableURL = try samedayExecutable()
            process.arguments = [
                "sources", "--config", repositoryRoot.appendingPathComponent("deploy/worker.json").path,
            ]
            process.environment = environment
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = errors ?? FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            return process
        }
        let sources = try start()
        defer { if sources.isRunning { sources.terminate() } }
        let deadline = ContinuousClock.now + .seconds(30)
        var ready = false
        while !ready && ContinuousClock.now < deadline {
            ready = get("http://127.0.0.1:9463/readyz") == 0
            if !ready { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(ready, "ready on 127.0.0.1:9463")
        #expect(FileManager.default.fileExists(atPath: folder + "/sources/sources.sqlite"))

        let errors = Pipe()
        let second = try start(errors: errors)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus == 1)
        #expect(message.contains("held by another `sameday sources`"))

        sources.terminate()
        sources.waitUntilExit()
        #expect(sources.terminationStatus == 0, "SIGTERM stops it gracefully")
    }
}
