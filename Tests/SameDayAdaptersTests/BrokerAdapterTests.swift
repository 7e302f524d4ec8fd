import Foundation
import RabbitMQ
import SameDayAdapters
import SameDayBroker
import SameDayCore
import SameDayTestKit
import Testing

/// Writes a CSV export of `count` received/resolved rows for District 1 and returns its path.
func writeExport(rows count: Int, in dir: String) -> String {
    var lines = ["Mã hồ sơ;Mã thủ tục;Mã đơn vị;Trạng thái;Thời gian;Hình thức"]
    for i in 0..<count {
        let status = i % 2 == 0 ? "Đã tiếp nhận" : "Đã có kết quả"
        let minute = String(format: "%02d", i % 60)
        lines.append(
            "760-220518-\(String(format: "%04d", i / 2));2.000815.000.00.00.H29;760;\(status);18/05/2022 09:\(minute):00;Trực tiếp"
        )
    }
    let path = dir + "/export.csv"
    write(lines.joined(separator: "\r\n") + "\r\n", to: path)
    return path
}

@Suite("Adapters on the real broker (needs broker)", .serialized, .needs(.rabbitMQ))
struct BrokerAdapterTests {
    @Test("a CSV export is published with confirms; re-running it publishes only duplicates (same ids)")
    func publishAndRerun() async throws {
        let dir = temporaryFolder("publish")
        let input = writeExport(rows: 300, in: dir)
        let p = try profile(vietnameseProfileJSON)
        let (first, second, ids) = try await withTopology("publish") { topology in
            let spool = try Spool(directory: dir + "/spool")
            func run() throws -> PublishSummary {
                let sink = DurablePublisher(
                    publisher: liveBroker(name: "adapter-publish"), spool: spool, configuration: hcmc,
                    names: topology.producerNames)
                defer { sink.close() }
                return try FilePublisher(profile: p, configuration: hcmc, sink: sink).run(input: input)
            }
            let first = try run()
            let second = try run()
            return (first, second, try drainWorkQueues(topology, name: "adapter-publish.drain"))
        }
        #expect(first.published == 300 && first.rejected == 0 && first.spooled == 0)
        #expect(second.published == 300)
        #expect(ids.count == 600 && Set(ids).count == 300, "after dedupe: 300 events")
        #expect(!FileManager.default.fileExists(atPath: input + ".checkpoint"), "a finished run removes its checkpoint")
    }

    @Test("a crash mid-file resumes from the checkpoint: every event delivered, none lost")
    func crashAndResume() async throws {
        let dir = temporaryFolder("resume")
        let input = writeExport(rows: 3000, in: dir)
        let p = try profile(vietnameseProfileJSON)
        let (resumed, ids) = try await withTopology("resume") { topology in
            let spool = try Spool(directory: dir + "/spool")
            let crashing = DurablePublisher(
                publisher: liveBroker(name: "adapter-resume"), spool: spool, configuration: hcmc,
                names: topology.producerNames)
            let first = FilePublisher(profile: p, configuration: hcmc, sink: crashing)
            first.crashAfterRecords = 2000
            first.checkpointEvery = 512
            #expect(throws: AdapterError.self) { try first.run(input: input) }
            crashing.close()  // unconfirmed messages die with the "crashed" process
            #expect(FileManager.default.fileExists(atPath: input + ".checkpoint"))
            let sink = DurablePublisher(
                publisher: liveBroker(name: "adapter-resume.2"), spool: spool, configuration: hcmc,
                names: topology.producerNames)
            defer { sink.close() }
            let summary = try FilePublisher(profile: p, configuration: hcmc, sink: sink).run(input: input)
            return (summary, try drainWorkQueues(topology, name: "adapter-resume.drain"))
        }
        #expect(resumed.resumedAtLine != nil && resumed.resumedAtLine! > 1 && resumed.resumedAtLine! <= 2002)
        #expect(Set(ids).count == 3000, "every event delivered at least once")
    }

    @Test(
        "broker stopped → events accepted into the spool → broker started → every event delivered, none twice after dedupe"
    )
    func spoolDuringOutage() async throws {
        let dir = temporaryFolder("outage")
        let input = writeExport(rows: 500, in: dir)
        let p = try profile(vietnameseProfileJSON)
        let (down, status, flushed, after, ids) = try await withTopology("outage") { topology in
            let spool = try Spool(directory: dir + "/spool")
            let offline = DurablePublisher(
                publisher: stoppedBroker(name: "adapter-outage"), spool: spool, configuration: hcmc,
                names: topology.producerNames)
            let down = try FilePublisher(profile: p, configuration: hcmc, sink: offline).run(input: input)
            let status = spool.status
            // The broker is back: the next run (or `sameday publish --flush`) sends the spool first, in order.
            let online = DurablePublisher(
                publisher: liveBroker(name: "adapter-outage.back"), spool: spool, configuration: hcmc,
                names: topology.producerNames)
            defer { online.close() }
            let flushed = try online.flushSpool()
            return (down, status, flushed, spool.status, try drainWorkQueues(topology, name: "adapter-outage.drain"))
        }
        #expect(down.published == 0 && down.spooled == 500)
        #expect(status.pendingEvents == 500 && status.pendingBytes > 0)
        #expect(flushed == 500)
        #expect(after.pendingEvents == 0 && after.pendingBytes == 0)
        #expect(ids.count == 500 && Set(ids).count == 500)
    }

    @Test("`publish --tail`: the events that reached the broker are read back from the events stream, per unit")
    func tailReadsTheStream() async throws {
        let dir = temporaryFolder("tail")
        let input = writeExport(rows: 6, in: dir)
        let p = try profile(vietnameseProfileJSON)
        let (summary, tail, all) = try await withTopology("tail") { topology in
            let sink = DurablePublisher(
                publisher: liveBroker(name: "adapter-tail"), spool: try Spool(directory: dir + "/spool"),
                configuration: hcmc, names: topology.producerNames)
            defer { sink.close() }
            let summary = try FilePublisher(profile: p, configuration: hcmc, sink: sink).run(input: input)
            let connection = LocalBroker.configuration(name: "adapter-tail.read")
            let tail = try EventsTail.read(
                connection: connection, names: topology.producerNames, since: "first", units: ["760"], count: 2,
                idle: .seconds(1))
            let all = try EventsTail.read(
                connection: connection, names: topology.producerNames, since: "1h", units: ["769"], count: 10,
                idle: .seconds(1))
            return (summary, tail, all)
        }
        #expect(summary.published == 6)
        #expect(tail.map(\.routingKey) == ["district.760.received", "district.760.resolved"])
        #expect(tail.last?.body.contains("\"dossier\":\"760-220518-0002\"") == true)
        #expect(all.isEmpty, "another unit's filter sees none of them")
        #expect(EventsTail.isValidSince("15m") && EventsTail.isValidSince("first") && !EventsTail.isValidSince("1x"))
    }

    @Test("the users definitions import into RabbitMQ: users without a password, with the generated rights")
    func usersDefinitionsImport() throws {
        let system = LocalBroker.uniqueName("system")
        let supervisor = LocalBroker.uniqueName("supervisor")
        let users = SameDayBrokerUsers(
            unitSystems: [.init(name: system, units: ["760", "000.00.18.H29"])], supervisors: [.init(name: supervisor)],
            topology: SameDayTopology(shards: 4), worker: nil, receiver: nil)  // no shared names on a shared broker
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(system).json")
        try users.definitionsJSON().write(to: file)
        let names = users.allPermissions.map(\.user)
        defer {
            for name in names { _ = try? LocalBroker.rabbitmqctl(["delete_user", name]) }
            try? FileManager.default.removeItem(at: file)
        }
        try LocalBroker.rabbitmqctl(["import_definitions", file.path])
        let permissions = try LocalBroker.rabbitmqctl(["list_permissions", "-q", "--no-table-headers"])
        #expect(permissions.contains("adapter.\(system)\t^$\t^sameday\\.events$\t^$"))
        let rights = users.permissions(supervisor: .init(name: supervisor))
        #expect(permissions.contains("\(rights.user)\t\(rights.configure)\t\(rights.write)\t\(rights.read)"))
        let topic = try LocalBroker.rabbitmqctl(["list_topic_permissions", "-q", "--no-table-headers"])
        #expect(topic.contains("adapter.\(system)\tsameday.events\t^[a-z]+\\.(000_00_18_H29|760)\\.[a-z_]+$\t^$"))
        // No password was set, so nobody can log in as the user until an operator sets one.
        #expect(throws: LocalBrokerError.self) {
            try LocalBroker.rabbitmqctl(["authenticate_user", "adapter.\(system)", ""])
        }
    }

    @Test("a unit's broker credentials cannot publish another unit's events (403)")
    func leastPrivilege() async throws {
        let topology = SameDayTopology(shards: 1, namePrefix: LocalBroker.uniqueName("acl") + ".")
        let users = SameDayBrokerUsers(
            unitSystems: [.init(name: "motcua-q1-test", units: ["760", "26734"])], supervisors: [], topology: topology)
        let rights = users.permissions(users.unitSystems[0])
        let user = LocalBroker.uniqueName("user")
        let password = UUID().uuidString
        try LocalBroker.rabbitmqctl(["add_user", user, password])
        defer { _ = try? LocalBroker.rabbitmqctl(["delete_user", user]) }
        try LocalBroker.rabbitmqctl(["set_permissions", user, rights.configure, rights.write, rights.read])
        try LocalBroker.rabbitmqctl([
            "set_topic_permissions", user, rights.topic!.exchange, rights.topic!.write, rights.topic!.read,
        ])
        var connection = LocalBroker.configuration(name: "acl-unit")
        connection.brokers[0].user = user
        connection.brokers[0].password = password
        connection.reconnect = Backoff.Policy(initialDelay: .milliseconds(10), maximumAttempts: 1)
        let unitConnection = connection
        let (own, other) = try await BlockingThread.run {
            () throws -> (Result<Int, AMQPError>, Result<Int, AMQPError>) in
            let admin = try Connection.open(LocalBroker.configuration(name: "acl-admin"))
            defer {
                try? topology.topology.delete(on: admin)
                admin.close()
            }
            try topology.topology.declare(on: admin)
            return (
                Self.publish(unit: "26734", connection: unitConnection, topology: topology),
                Self.publish(unit: "769", connection: unitConnection, topology: topology)
            )
        }
        #expect(try own.get() == 1)
        switch other {
        case .success: Issue.record("publishing District Thủ Đức's event with District 1's user must be refused")
        case .failure(let error):
            #expect(error.kind == .channelClosed && error.replyCode == 403 && !error.isRetriable)
        }
    }

    static func publish(unit: String, connection: ConnectionConfiguration, topology: SameDayTopology)
        -> Result<Int, AMQPError>
    {
        let event = DossierEvent(
            eventId: "acl-\(unit)", dossier: "\(unit)-220518-0001", unit: unit, procedure: "2.000815.000.00.00.H29",
            type: .received, occurredAt: RFC3339.parse("2022-05-18T08:00:00+07:00")!, source: "acl-test")
        do throws(AMQPError) {
            let publisher = try Publisher(PublisherConfiguration(connection: connection))
            defer { publisher.close() }
            try publisher.publish(EventMessage.make(event, configuration: hcmc, names: topology.producerNames))
            try publisher.waitForConfirms(timeout: .seconds(5))
            return .success(publisher.confirmedCount)
        } catch {
            return .failure(error)
        }
    }
}
