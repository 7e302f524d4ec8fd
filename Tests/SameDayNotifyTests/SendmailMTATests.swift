import Foundation
import SameDayTestKit
import Testing

@testable import SameDayNotify

#if canImport(Glibc)
    import Glibc
#endif

/// An SMTP server on loopback (scripts/smtp-sink.py, aiosmtpd) that keeps every message it accepts as a file.
final class SMTPSink {
    let folder: TemporaryFolder
    let pid: pid_t
    let port: Int
    private var stopped = false

    /// Started with posix_spawn and reaped with waitpid (as the bench does: Foundation's `Process` has been seen to
    /// hang on a child's exit here).
    init() throws {
        folder = try TemporaryFolder("smtp-sink")
        let argv = [
            "/usr/bin/python3", repositoryRoot.appendingPathComponent("scripts/smtp-sink.py").path, "--dir",
            folder.path,
            "--lifetime", "300",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Threads of the test process block most signals; the sink must get SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ) == 0 else {
            throw SinkDidNotStart()
        }
        self.pid = pid
        var waited = 0
        while !folder.exists("port") && waited < 500 {
            usleep(20_000)
            waited += 1
        }
        guard let text = folder.read("port"), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw SinkDidNotStart()
        }
        self.port = port
    }

    struct SinkDidNotStart: Error {}

    /// An msmtp configuration for the sink: 127.0.0.1, its port, no TLS, no authentication.
    func msmtpConfiguration(port: Int? = nil) throws -> String {
        try folder.write(
            "msmtp-\(port ?? self.port).conf",
            """
            defaults
            syslog off
            account sink
            host 127.0.0.1
            port \(port ?? self.port)
            tls off
            auth off
            from sameday@hcmc.example
            account default : sink

            """)
    }

    /// `550 address` or `451 address` lines: the sink refuses those recipients with that code.
    func refuse(_ lines: [String]) throws { try folder.write("refuse", lines.joined(separator: "\n") + "\n") }

    /// The stored messages, in order of arrival.
    var messages: [String] {
        var found: [String] = []
        while let next = folder.read("\(found.count + 1).eml") { found.append(next) }
        return found
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    deinit {
        stop()
        folder.remove()
    }
}

/// A stored message taken apart: unfolded headers, the Subject's encoded words decoded, the parts' bodies decoded.
struct StoredMail {
    var headers: [(name: String, value: String)] = []
    var parts: [String: String] = [:]

    init(_ raw: String) throws {
        let lines = raw.components(separatedBy: "\r\n")
        let end = try #require(lines.firstIndex(of: ""))
        for line in lines[..<end] {
            if line.hasPrefix(" ") || line.hasPrefix("\t"), !headers.isEmpty {
                headers[headers.count - 1].value += line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append(
                    (
                        String(line[..<colon]),
                        String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                    ))
            }
        }
        let type = try #require(header("Content-Type"))
        let boundary = try #require(
            type.components(separatedBy: "boundary=\"").last?.components(separatedBy: "\"").first)
        let body = lines[(end + 1)...]
        var index = body.startIndex
        while let start = body[index...].firstIndex(of: "--\(boundary)") {
            let partLines = body[(start + 1)...].prefix { !$0.hasPrefix("--\(boundary)") }
            index = start + 1 + partLines.count
            guard let blank = partLines.firstIndex(of: "") else { continue }
            let partType =
                partLines[..<blank].first { $0.hasPrefix("Content-Type: ") }?.dropFirst(14)
                .components(separatedBy: ";").first ?? ""
            let encoded = partLines[(blank + 1)...].joined()
            if let data = Data(base64Encoded: encoded) { parts[partType] = String(decoding: data, as: UTF8.self) }
        }
    }

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

    /// RFC 2047 B-encoded UTF-8 words, separated by folding white space, decoded.
    var subject: String? {
        guard let value = header("Subject") else { return nil }
        let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.allSatisfy({ $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") }) else { return value }
        let bytes = words.compactMap { Data(base64Encoded: String($0.dropFirst(10).dropLast(2))) }
        guard bytes.count == words.count else { return nil }
        return String(decoding: bytes.reduce(Data(), +), as: UTF8.self)
    }
}

@Suite(
    "Sendmail channel through a real MTA: msmtp to an SMTP sink on loopback",
    .needs(.msmtp, .aiosmtpd), .serialized)
struct SendmailMTATests {
    let msmtp = "/usr/bin/msmtp"

    func deliver(_ channel: SendmailChannel, _ message: MailMessage) async -> DeliveryOutcome {
        await onThread { channel.deliver(message) }
    }

    @Test("a digest handed to msmtp arrives: envelope recipient, Subject and the plain part decode to what was sent")
    func delivered() async throws {
        let sink = try SMTPSink()
        let channel = try SendmailChannel(.init(program: msmtp, arguments: ["-C", try sink.msmtpConfiguration()]))
        let message = ChannelFixture.mail()
        #expect(await deliver(channel, message) == .delivered)

        let stored = try #require(sink.messages.first)
        #expect(sink.messages.count == 1)
        let mail = try StoredMail(stored)
        #expect(mail.header("X-Sink-Rcpt-To") == "lanhdao.phong@quan1.hcmc.example")
        #expect(mail.header("X-Sink-Mail-From") == "sameday@hcmc.example")
        #expect(mail.header("To") == "lanhdao.phong@quan1.hcmc.example")
        #expect(mail.header("From") == "SameDay <sameday@hcmc.example>")
        #expect(mail.header("Message-ID") == message.messageID)
        #expect(mail.header("X-SameDay-Alerts") == ChannelFixture.digest.alertIDs.joined(separator: ", "))
        #expect(mail.subject == ChannelFixture.text.subject)
        #expect(mail.subject == "[SameDay] Quận 1: 2 hồ sơ có nguy cơ trễ hạn (1 quá hạn)")
        #expect(mail.parts["text/plain"] == ChannelFixture.text.plain)
        #expect(mail.parts["text/html"] == ChannelFixture.text.html)
        #expect(mail.parts["text/plain"]?.contains("1. [Quá hạn] Hồ sơ 26734-220518-0007") == true)
    }

    @Test("headers cannot add a recipient: only the envelope recipient receives the message")
    func headersAddNobody() async throws {
        let sink = try SMTPSink()
        let channel = try SendmailChannel(.init(program: msmtp, arguments: ["-C", try sink.msmtpConfiguration()]))
        let message = ChannelFixture.mail(
            subject: "Nhắc việc\r\nBcc: evil@attacker.example\r\nCc: also@attacker.example")
        #expect(await deliver(channel, message) == .delivered)
        let mail = try StoredMail(try #require(sink.messages.first))
        #expect(mail.header("X-Sink-Rcpt-To") == "lanhdao.phong@quan1.hcmc.example")
        #expect(mail.header("Bcc") == nil && mail.header("Cc") == nil)
    }

    @Test("a recipient the server refuses (550) is permanent, with msmtp's words; nothing is stored")
    func refused() async throws {
        let sink = try SMTPSink()
        try sink.refuse(["550 nobody@quan1.hcmc.example"])
        let channel = try SendmailChannel(.init(program: msmtp, arguments: ["-C", try sink.msmtpConfiguration()]))
        let outcome = await deliver(channel, ChannelFixture.mail(to: "nobody@quan1.hcmc.example"))
        #expect(outcome.isPermanent, "\(outcome)")
        #expect(outcome.reason?.hasPrefix("msmtp exited 65: ") == true, "\(outcome)")
        #expect(outcome.reason?.contains("550 refused by the test sink: nobody@quan1.hcmc.example") == true)
        #expect(sink.messages.isEmpty)
        // The refusal was for that address only.
        #expect(await deliver(channel, ChannelFixture.mail()) == .delivered)
        #expect(sink.messages.count == 1)
    }

    @Test("no SMTP server listening: msmtp exits 75, retryable")
    func serverDown() async throws {
        let sink = try SMTPSink()
        try await withRefusingPort { port in
            let configuration = try sink.msmtpConfiguration(port: port)
            let channel = try SendmailChannel(.init(program: msmtp, arguments: ["-C", configuration]))
            let outcome = await deliver(channel, ChannelFixture.mail())
            #expect(outcome.isRetryable, "\(outcome)")
            #expect(outcome.reason?.hasPrefix("msmtp exited 75 (temporary failure): ") == true, "\(outcome)")
            #expect(outcome.reason?.contains("Connection refused") == true, "\(outcome)")
        }
        #expect(sink.messages.isEmpty)
    }
}
