import Foundation
import SameDayWorker
import Testing

@Suite("Worker configuration")
struct WorkerConfigurationTests {
    func write(_ text: String) throws -> String {
        let path = temporaryFolder("config") + "/worker.json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("the shipped deploy/worker.json loads")
    func shipped() throws {
        let configuration = try WorkerConfiguration.load(
            path: repositoryRoot.appendingPathComponent("deploy/worker.json").path, environment: [:])
        #expect(
            configuration.shard == 0 && configuration.clock == .wall && configuration.batchSize == 1000
                && configuration.retainClosedDays == 62)
    }

    @Test("environment variables win over the file")
    func environment() throws {
        let path = try write(#"{"shard": 1, "clock": "wall", "stateDirectory": "/srv/a"}"#)
        let configuration = try WorkerConfiguration.load(
            path: path,
            environment: [
                "SAMEDAY_SHARD": "3", "SAMEDAY_SHARDS": "4", "SAMEDAY_CLOCK": "events", "SAMEDAY_STATE_DIR": "/srv/b",
            ])
        #expect(configuration.shard == 3 && configuration.clock == .events)
        #expect(configuration.databasePath == "/srv/b/shard-3.sqlite")
        #expect(configuration.resolvedAlertsDirectory == "/srv/b/alerts")
    }

    @Test("a misspelt key, a wrong type or a bad value is an error naming it")
    func errors() throws {
        #expect(throws: WorkerConfiguration.Invalid.self) {
            try WorkerConfiguration.load(path: try write(#"{"shardz": 2}"#), environment: [:])
        }
        do {
            _ = try WorkerConfiguration.load(path: try write("{\n  \"prefetch\": \"many\"\n}"), environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".hasSuffix(#"worker.json:2:15: key "prefetch": expected an integer, found "many""#))
        }
        do {
            _ = try WorkerConfiguration.load(path: try write(#"{"shard": 0, "prefetch": 0}"#), environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".hasSuffix(#"worker.json:1:26: key "prefetch": must be 1…65535"#))
        }
        do {
            _ = try WorkerConfiguration.load(path: nil, environment: ["SAMEDAY_CLOCK": "sundial"])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("SAMEDAY_CLOCK=sundial"))
        }
    }

    @Test("credentials come from the credentials file, not the URL")
    func credentials() throws {
        let folder = temporaryFolder("credentials")
        try Data("sameday-worker:s3cret\n".utf8).write(to: URL(fileURLWithPath: folder + "/credentials"))
        chmod(folder + "/credentials", 0o600)
        var configuration = WorkerConfiguration()
        configuration.brokers = ["amqp://a:5672/%2F,amqp://b:5673/%2F"]
        configuration.credentialsFile = folder + "/credentials"
        let connection = try configuration.connection(name: "test")
        #expect(connection.brokers.map(\.user) == ["sameday-worker", "sameday-worker"])
        #expect(connection.brokers.map(\.password) == ["s3cret", "s3cret"])
    }

    @Test("a credentials file that group or others may access is refused, naming the file and the fix")
    func credentialsFileMode() throws {
        let file = temporaryFolder("credentials") + "/worker.credentials"
        try Data("worker:s3cret\n".utf8).write(to: URL(fileURLWithPath: file))
        var configuration = WorkerConfiguration()
        configuration.credentialsFile = file
        for mode: mode_t in [0o640, 0o604, 0o620] {
            chmod(file, mode)
            #expect {
                try configuration.connection(name: "test")
            } throws: { error in
                "\(error)" == "\(file): mode \(String(mode, radix: 8)) gives group or others access to the broker "
                    + "credentials; chmod 600 \(file)"
            }
        }
        chmod(file, 0o400)
        #expect(try configuration.connection(name: "test").brokers[0].password == "s3cret")
    }
}
