import Foundation
import SameDayTestKit
import Testing

@testable import SameDayNotify

#if canImport(Glibc)
    import Glibc
#endif

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
