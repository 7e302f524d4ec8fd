import Foundation
import SameDayAdapters
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

@Suite("`sameday receive` as a service group: one graceful-shutdown path (no broker)", .serialized)
struct ReceiverCommandTests {
    @Test(
        "SIGTERM: the request in hand is answered, the forwarder stops after the HTTP server, exit 0; a taken port is exit 1"
    )
    func gracefulStop() async throws {
        let dir = temporaryFolder("receive-command")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No broker at this address: a request is answered once its events are in the spool.
        write(
            """
            {"config": "\(repoPath("deploy/config/hcmc-2022"))", "unitSystems": "\(repoPath("deploy/adapters/unit-systems.json"))",
             "spool": {"directory": "spool"}, "brokerURLFile": "receiver.amqp"}
            """, to: dir + "/receiver.json")
        writeSecret("amqp://guest:guest@127.0.0.1:5699/%2F\n", to: dir + "/receiver.amqp")
        let process = try startSameday(
            ["receive", "--config", dir + "/receiver.json", "--listen", "127.0.0.1:0"], in: dir,
            environment: demoEnvironment())
        defer { if process.isRunning { process.terminate() } }
        // Hummingbird says where it listens (port 0: the system's choice).
        let marker = "Server started and listening on 127.0.0.1:"
        var port: Int?
        let deadline = Date().addingTimeInterval(60)
        while port == nil && process.isRunning && Date() < deadline {
            let errors = (try? String(contentsOfFile: dir + "/.stderr", encoding: .utf8)) ?? ""
            if let range = errors.range(of: marker) {
                port = Int(errors[range.upperBound...].prefix { $0.isNumber })
            } else {
                usleep(50_000)
            }
        }
        let listening = try #require(port, "\((try? String(contentsOfFile: dir + "/.stderr", encoding: .utf8)) ?? "")")

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(listening)/v1/events")!)
        request.httpMethod = "POST"
        request.timeoutInterval = 60
        request.setValue("Bearer demo-token-motcua-q1", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(eventJSON("command-1").utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        let body = String(decoding: data, as: UTF8.self)
        #expect((response as? HTTPURLResponse)?.statusCode == 202, "\(body)")
        #expect(body.contains("\"spooled\":1"), "\(body)")

        // A second receiver on the same port cannot listen: it says so and exits 1 (its group shut down).
        let other = dir + "/second"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let second = try runSameday(
            ["receive", "--config", dir + "/receiver.json", "--listen", "127.0.0.1:\(listening)", "--dry-run"],
            in: other, environment: demoEnvironment())
        #expect(second.status == 1 && second.errors.contains("already in use"), "\(second.errors)")

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "graceful stop on SIGTERM")
        // The forwarder stopped and let go of the spool: it opens again, holding the event.
        let spool = try Spool(directory: dir + "/spool")
        #expect(spool.status.pendingEvents == 1)
    }
}
