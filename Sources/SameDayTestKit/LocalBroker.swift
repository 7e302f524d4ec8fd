import Foundation
import RabbitMQ

/// The real RabbitMQ that integration tests talk to: on loopback only, started by `deploy/local-broker.sh`.
/// Set `SAMEDAY_TEST_AMQP_URL` to use another local port or vhost.
public enum LocalBroker {
    public static var url: BrokerURL {
        let text =
            ProcessInfo.processInfo.environment["SAMEDAY_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"
        do {
            return try BrokerURL(parsing: text)
        } catch {
            fatalError("SAMEDAY_TEST_AMQP_URL: \(error)")
        }
    }

    /// A connection configuration for a test, named so `rabbitmqctl` can find it, with quick reconnects.
    public static func configuration(name: String, heartbeat: Int = 30) -> ConnectionConfiguration {
        ConnectionConfiguration(
            brokers: [url], heartbeat: heartbeat, connectionName: name,
            reconnect: Backoff.Policy(initialDelay: .milliseconds(50), maximumDelay: .seconds(1), maximumAttempts: 40))
    }

    /// A name no other test or run uses.
    public static func uniqueName(_ purpose: String) -> String {
        "test.\(purpose).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs `rabbitmqctl` with `arguments` and returns its standard output; throws with its error output.
    @discardableResult
    public static func rabbitmqctl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/rabbitmqctl")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LocalBrokerError(
                "rabbitmqctl \(arguments.joined(separator: " ")): \(String(decoding: errorData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Closes, from the broker's side, every connection whose client-provided name is `connectionName`;
    /// returns how many it closed.
    @discardableResult
    public static func closeConnections(named connectionName: String) throws -> Int {
        // One line per connection: the pid (as close_connection wants it), a tab, the client properties as an
        // Erlang term in which our name appears as {"connection_name","NAME"}.
        let listing = try rabbitmqctl(["list_connections", "pid", "client_properties", "-q", "--no-table-headers"])
        let marker = "{\"connection_name\",\"\(connectionName)\"}"
        var closed = 0
        for line in listing.split(separator: "\n") where line.contains(marker) {
            guard let pid = line.split(separator: "\t").first else { continue }
            try rabbitmqctl(["close_connection", String(pid), "closed by a SameDay test"])
            closed += 1
        }
        return closed
    }

    /// Deletes queues by name, ignoring the ones already gone.
    public static func deleteQueues(_ names: [String]) {
        for name in names { _ = try? rabbitmqctl(["delete_queue", name]) }
    }
}

public struct LocalBrokerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The `sameday` executable built next to the test bundle (`swift build --build-tests`), for tests that run it as
/// ops and unit staff do.
public func samedayExecutable() throws -> URL {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
        Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
    ].map { $0.appendingPathComponent("sameday") }
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw LocalBrokerError("the sameday executable is not built next to the tests (swift build --build-tests)")
    }
    return found
}
