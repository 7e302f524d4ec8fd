import Foundation
import RabbitMQ
import SameDayBoard
import SameDayBroker
import SameDayNotify
import SameDayTestKit
import SameDayWorker
import Testing

/// The files in deploy/ as ops use them.
@Suite("Deploy: every shard on one host from the shipped files (needs broker)", .serialized, .needs(.rabbitMQ))
struct DeployTests {
    /// The `Environment=` lines of the shipped worker unit for shard `shard`.
    func unitEnvironment(shard: Int, unit file: String = "sameday-worker@.service") throws -> [String: String] {
        try UnitFile(file, instance: "\(shard)").environment
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

/// One shipped unit file as systemd reads it: its `Key=value` lines by section, in order (`ExecStart=`,
/// `Environment=` and others repeat), with `%i` replaced by the instance.
struct UnitFile {
    let name: String
    let lines: [(section: String, key: String, value: String)]

    init(_ name: String, instance: String = "0") throws {
        let text = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/systemd/" + name), encoding: .utf8)
        var section = ""
        var lines: [(section: String, key: String, value: String)] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let value = line[line.index(after: equals)...].replacingOccurrences(of: "%i", with: instance)
            lines.append((section, String(line[..<equals]), value.replacingOccurrences(of: "%%", with: "%")))
        }
        self.name = name
        self.lines = lines
    }

    /// Every unit of deploy/systemd with this suffix (".service", ".timer").
    static func shipped(_ suffix: String) throws -> [String] {
        let folder = repositoryRoot.appendingPathComponent("deploy/systemd").path
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(suffix) }.sorted()
    }

    func values(_ key: String, in section: String = "Service") -> [String] {
        lines.filter { $0.section == section && $0.key == key }.map(\.value)
    }

    var environment: [String: String] {
        var environment: [String: String] = [:]
        for assignment in values("Environment") {
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            environment[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
        }
        return environment
    }

    /// The folders systemd creates, owned by the unit's user, before it starts (`StateDirectory=`).
    var stateDirectories: [String] {
        values("StateDirectory").flatMap { $0.split(separator: " ") }.map { "/var/lib/" + $0 }
    }

    /// `ReadWritePaths=` (a leading "-" only says that a missing path is no error).
    var readWritePaths: [String] {
        values("ReadWritePaths").flatMap { $0.split(separator: " ") }.map {
            String($0.hasPrefix("-") ? $0.dropFirst() : $0)
        }
    }

    /// Whether the service may write `path` under `ProtectSystem=strict`.
    func canWrite(_ path: String) -> Bool {
        (readWritePaths + stateDirectories).contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// Each `ExecStart=` as words; a `sh -c` script is split too (its quotes dropped), so redirections and `mv`
    /// are words of their own.
    var commands: [[String]] {
        values("ExecStart").map { command in
            command.split(whereSeparator: { $0 == " " }).map {
                $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            }
        }
    }
}

extension [String] {
    /// The word after `option` (`--config FILE`).
    func value(after option: String) -> String? {
        guard let index = firstIndex(of: option), index + 1 < count else { return nil }
        return self[index + 1]
    }
}

/// The shipped units against what the binary does with their command lines and the configuration files installed
/// from deploy/ (docs/operations.md, section 4): a path a service writes outside its sandbox's writable folders
/// fails at run time, and a unit failing at every start restarts for ever.
@Suite("Deploy: the shipped systemd units")
struct DeployUnitTests {
    /// Where the files the units name come from (docs/operations.md, "Files on a worker machine"; docs/adapters.md).
    let installedFrom = [
        "/etc/sameday/worker.json": "deploy/worker.json",
        "/etc/sameday/receiver.json": "deploy/adapters/receiver.json",
        "/etc/sameday/notify.json": "deploy/notify.json",
        "/etc/sameday/board.json": "deploy/board.json",
    ]

    func shippedFile(named installed: String?) throws -> String {
        let path = try #require(installed, "the unit names its --config")
        let file = try #require(installedFrom[path], "\(path): which file of deploy/ is installed there?")
        return repositoryRoot.appendingPathComponent(file).path
    }

    @Test(
        "the receiver's spool, from its command line and receiver.json, is in a folder systemd creates and may write"
    )
    func receiverSpool() throws {
        let unit = try UnitFile("sameday-receiver.service")
        let command = try #require(unit.commands.first)
        #expect(command.prefix(2) == ["/usr/local/bin/sameday", "receive"])
        let installed = try #require(command.value(after: "--config"))
        let data = try Data(contentsOf: URL(fileURLWithPath: try shippedFile(named: installed)))
        let settings = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let spool = try #require((settings["spool"] as? [String: Any])?["directory"] as? String)
        // Relative paths in receiver.json are relative to the file (docs/adapters.md).
        let directory = spool.hasPrefix("/") ? spool : (installed as NSString).deletingLastPathComponent + "/" + spool
        let writable = unit.canWrite(directory)
        #expect(writable, "spool \(directory) is read-only for the receiver")
        #expect(
            unit.stateDirectories.contains { directory == $0 || directory.hasPrefix($0 + "/") },
            "spool \(directory) is in no StateDirectory=: nothing creates it for the user sameday")
    }

    @Test("the workers' and sources' folders, from worker.json and each unit's environment, are writable")
    func workerFolders() throws {
        let units: [(name: String, folders: (WorkerConfiguration) -> [String])] = [
            (
                "sameday-worker@.service",
                { [$0.stateDirectory, $0.resolvedAlertsDirectory, $0.resolvedRollupsDirectory] }
            ),
            ("sameday-sources.service", { [$0.resolvedSourcesDirectory, $0.sourcesAlertsDirectory] }),
        ]
        for (name, folders) in units {
            let unit = try UnitFile(name, instance: "2")
            let command = try #require(unit.commands.first)
            let configuration = try WorkerConfiguration.load(
                path: try shippedFile(named: command.value(after: "--config")), environment: unit.environment)
            for folder in folders(configuration) {
                let writable = unit.canWrite(folder)
                #expect(writable, "\(name): \(folder) is read-only for the service")
            }
        }
    }

    @Test("sameday notify's shipped notify.json is read, and its state folder is one the unit may write")
    func notifyFolders() throws {
        let unit = try UnitFile("sameday-notify.service")
        let command = try #require(unit.commands.first)
        #expect(command.prefix(2) == ["/usr/local/bin/sameday", "notify"])
        let settings = try NotifySettings.load(path: try shippedFile(named: command.value(after: "--notify")))
        #expect(unit.canWrite(settings.stateDirectory), "\(settings.stateDirectory) is read-only for the notifier")
        #expect(
            settings.mail?.program == "/usr/bin/msmtp", "postfix's setgid postdrop cannot run under NoNewPrivileges")
        #expect(settings.metricsListen == "127.0.0.1:9462")
    }

    @Test(
        "sameday board's shipped board.json is read; its state folder is writable, the workers' folders it reads exist")
    func boardFolders() throws {
        let unit = try UnitFile("sameday-board.service")
        let command = try #require(unit.commands.first)
        #expect(command.prefix(2) == ["/usr/local/bin/sameday", "board"])
        let settings = try BoardSettings.load(path: try shippedFile(named: command.value(after: "--board")))
        #expect(unit.canWrite(settings.stateDirectory), "\(settings.stateDirectory) is read-only for the board")
        #expect(settings.metricsListen == "127.0.0.1:9461")
        #expect(settings.cookiesAreSecure, "served behind the TLS proxy: the cookie must be Secure")
        // The folders and stores it reads are the workers' (deploy/worker.json, one shard per folder).
        let worker = try WorkerConfiguration.load(
            path: try shippedFile(named: command.value(after: "--config")), environment: [:])
        let shards = (0..<worker.shards).map { shard in
            var each = worker
            each.shard = shard
            each.stateDirectory = "/var/lib/sameday/shard-\(shard)"
            return each
        }
        #expect(settings.alertFolders == shards.map(\.resolvedAlertsDirectory))
        #expect(settings.rollups == shards.map(\.resolvedRollupsDirectory))
        #expect(settings.timelineStores == shards.map(\.databasePath))
    }

    @Test("every file the report writes is in its output folder, which systemd creates and lets it write")
    func reportOutput() throws {
        let unit = try UnitFile("sameday-report.service")
        var written: [String] = []
        for command in unit.commands {
            for (index, word) in command.enumerated() where index + 1 < command.count {
                if word == ">" || word == "--out" { written.append(command[index + 1]) }
                if word == "mv", index + 2 < command.count { written += command[index + 1...index + 2] }
            }
        }
        #expect(written.count >= 3, "the CSV file (through a temporary file) and the page: \(written)")
        for path in written {
            let folder = (path as NSString).deletingLastPathComponent
            let writable = unit.canWrite(path)
            #expect(writable, "\(path) is read-only for the report")
            // Neither the shell's redirection nor --out creates a folder.
            #expect(unit.stateDirectories.contains(folder), "\(folder) is no StateDirectory=: nothing creates it")
        }
    }

    @Test("every ReadWritePaths= folder is one systemd creates, so the sandbox can be set up at the first start")
    func readWritePathsExist() throws {
        for name in try UnitFile.shipped(".service") {
            let unit = try UnitFile(name)
            for path in unit.readWritePaths {
                #expect(unit.stateDirectories.contains(path), "\(name): ReadWritePaths=\(path) is no StateDirectory=")
            }
        }
    }

    @Test("every service runs as sameday, hardened, with UMask=0027 and a start limit")
    func hardening() throws {
        let required = [
            ("User", "sameday"), ("Group", "sameday"), ("UMask", "0027"), ("NoNewPrivileges", "true"),
            ("ProtectSystem", "strict"), ("ProtectHome", "true"), ("PrivateTmp", "true"), ("PrivateDevices", "true"),
            ("ProtectKernelTunables", "true"), ("ProtectKernelModules", "true"), ("ProtectKernelLogs", "true"),
            ("ProtectControlGroups", "true"), ("ProtectClock", "true"), ("ProtectProc", "invisible"),
            ("RestrictSUIDSGID", "true"), ("RestrictNamespaces", "true"), ("LockPersonality", "true"),
            ("MemoryDenyWriteExecute", "true"), ("CapabilityBoundingSet", ""), ("SystemCallArchitectures", "native"),
        ]
        let services = try UnitFile.shipped(".service")
        #expect(
            Set([
                "sameday-worker@.service", "sameday-sources.service", "sameday-receiver.service",
                "sameday-report.service",
            ])
            .isSubset(of: services))
        for name in services {
            let unit = try UnitFile(name)
            for (key, value) in required {
                #expect(unit.values(key) == [value], "\(name): \(key)=\(value)")
            }
            #expect(
                unit.values("SystemCallFilter").first == "@system-service", "\(name): SystemCallFilter=@system-service")
            #expect(!unit.values("RestrictAddressFamilies").isEmpty, "\(name): RestrictAddressFamilies=")
            // In [Unit]: [Service] knows only the old names of these settings.
            let burst = unit.values("StartLimitBurst", in: "Unit").compactMap { Int($0) }
            #expect(burst.count == 1 && burst[0] > 0, "\(name): StartLimitBurst= in [Unit]")
            #expect(
                unit.values("StartLimitIntervalSec", in: "Unit").count == 1, "\(name): StartLimitIntervalSec= in [Unit]"
            )
        }
    }
}
