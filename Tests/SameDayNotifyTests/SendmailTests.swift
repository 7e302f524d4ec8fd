import Foundation
import Testing

@testable import SameDayNotify

#if canImport(Glibc)
    import Glibc
#endif

/// The sendmail channel against small shell scripts standing in for sendmail: the command line and the input it gets,
/// and what each way of ending means.
@Suite("Sendmail channel: command line, input, exit status, timeout, addresses")
struct SendmailTests {
    /// A script in a folder of its own; `body` is its shell text after `#!/bin/sh`.
    func program(_ folder: TemporaryFolder, _ body: String) throws -> String {
        try folder.write("sendmail", "#!/bin/sh\n" + body + "\n", mode: 0o700)
    }

    func deliver(
        _ program: String, arguments: [String] = [], timeout: Duration = .seconds(10),
        _ message: MailMessage = ChannelFixture.mail()
    ) async throws -> DeliveryOutcome {
        let channel = try SendmailChannel(.init(program: program, arguments: arguments, timeout: timeout))
        return await onThread { channel.deliver(message) }
    }

    @Test("envelope addresses: bare or in angle brackets; nothing sendmail could take as an option or a header")
    func addresses() {
        #expect(
            SendmailChannel.envelopeAddress("lanhdao.phong@quan1.hcmc.example") == "lanhdao.phong@quan1.hcmc.example")
        #expect(SendmailChannel.envelopeAddress("SameDay <sameday@hcmc.example>") == "sameday@hcmc.example")
        #expect(SendmailChannel.envelopeAddress("\"Phòng, Quận 1\" <a+b@x.example>") == "a+b@x.example")
        let refused = [
            "", "no-at.example", "a@b@c.example", "@x.example", "a@", "a b@x.example", "-oQ/tmp@x.example",
            "a@x.example\r\nBcc: evil@x.example", "a@x.example\nBcc: evil@x.example", "tên@x.vn", "a\u{0}@x.example",
            "<a@x.example", "Name <a@x.example> trailing", "a;b@x.example", "a@[127.0.0.1]",
            String(repeating: "a", count: 250) + "@x.example", "Name <>",
        ]
        for address in refused {
            #expect(SendmailChannel.envelopeAddress(address) == nil, "\(address.debugDescription)")
        }
        let channel = try! SendmailChannel(
            .init(program: "/usr/bin/msmtp", arguments: ["-C", "/etc/sameday/msmtp.conf"]))
        #expect(
            channel.commandLine(sender: "sameday@hcmc.example", recipient: "a@x.example") == [
                "/usr/bin/msmtp", "-C", "/etc/sameday/msmtp.conf", "-i", "-f", "sameday@hcmc.example", "--",
                "a@x.example",
            ])
        #expect(throws: ChannelConfigurationError.self) { try SendmailChannel(.init(program: "sendmail")) }
        #expect(throws: ChannelConfigurationError.self) {
            try SendmailChannel(.init(program: "/usr/sbin/sendmail", timeout: .zero))
        }
    }

    @Test("runs <program> <arguments> -i -f <sender> -- <recipient> with the message, LF line ends, on its input")
    func commandLineAndInput() async throws {
        let folder = try TemporaryFolder("sendmail-args")
        defer { folder.remove() }
        let sendmail = try program(
            folder,
            """
            for a in "$@"; do printf '%s\\n' "$a"; done > "\(folder.path)/args"
            cat > "\(folder.path)/input"
            exit 0
            """)
        let message = ChannelFixture.mail()
        #expect(try await deliver(sendmail, arguments: ["-C", "/etc/sameday/msmtp.conf"], message) == .delivered)
        #expect(
            folder.read("args")
                == "-C\n/etc/sameday/msmtp.conf\n-i\n-f\nsameday@hcmc.example\n--\nlanhdao.phong@quan1.hcmc.example\n")
        let input = try #require(folder.read("input"))
        #expect(!input.contains("\r"), "the sendmail interface takes LF line ends")
        #expect(input == message.rendered().replacingOccurrences(of: "\r\n", with: "\n"))
        #expect(input.contains("\nX-SameDay-Alerts: "))
    }

    @Test(
        "the message is whole in the program's input before it starts: a file, not a pipe a killed notifier cuts short")
    func inputWholeBeforeStart() async throws {
        let folder = try TemporaryFolder("sendmail-staged")
        defer { folder.remove() }
        // Before reading anything: the size of what is on standard input (a pipe has none) and what it is.
        let sendmail = try program(
            folder,
            """
            stat -L -c %s /dev/stdin > "\(folder.path)/size"
            readlink /proc/$$/fd/0 > "\(folder.path)/stdin"
            cat > "\(folder.path)/input"
            """)
        var message = ChannelFixture.mail()
        message.plain = String(repeating: "Hồ sơ trễ hạn. ", count: 20_000)
        #expect(try await deliver(sendmail, message) == .delivered)
        let rendered = message.rendered().replacingOccurrences(of: "\r\n", with: "\n")
        #expect(folder.read("size") == "\(rendered.utf8.count)\n")
        #expect(folder.read("input") == rendered)
        let stdin = try #require(folder.read("stdin"))
        #expect(stdin.hasSuffix(" (deleted)\n"), "an unlinked file, gone with its last reader: \(stdin)")
    }

    @Test("exit 75 (EX_TEMPFAIL) is retryable, with what it printed, control characters escaped")
    func temporaryFailure() async throws {
        let folder = try TemporaryFolder("sendmail-75")
        defer { folder.remove() }
        let sendmail = try program(
            folder, #"cat >/dev/null; printf 'queue full\n\033[31mtry later\n' >&2; exit 75"#)
        let outcome = try await deliver(sendmail)
        #expect(
            outcome == .retryable(reason: #"sendmail exited 75 (temporary failure): queue full\n\u{1B}[31mtry later"#))
    }

    @Test("another exit status is permanent, with what the program said")
    func permanentFailure() async throws {
        let folder = try TemporaryFolder("sendmail-67")
        defer { folder.remove() }
        let sendmail = try program(folder, #"cat >/dev/null; echo "sendmail: user unknown" >&2; exit 67"#)
        #expect(try await deliver(sendmail) == .permanent(reason: "sendmail exited 67: sendmail: user unknown"))
        let silent = try program(folder, "exit 1")
        #expect(try await deliver(silent) == .permanent(reason: "sendmail exited 1"))
    }

    @Test("a sendmail that hangs is killed, with its children, at the timeout: retryable")
    func hangs() async throws {
        let folder = try TemporaryFolder("sendmail-hang")
        defer { folder.remove() }
        // Reads nothing and waits on a child: the channel must not wait for the input to be taken, nor for the child.
        let sendmail = try program(
            folder,
            """
            echo $$ > "\(folder.path)/shell.pid"
            sleep 60 &
            echo $! > "\(folder.path)/sleep.pid"
            echo "connecting to relay" >&2
            wait
            """)
        // Bigger than a pipe's buffer, so the write would block if it were not bounded by the deadline.
        var message = ChannelFixture.mail()
        message.plain = String(repeating: "Hồ sơ chờ xử lý. ", count: 20_000)
        let started = ContinuousClock.now
        let outcome = try await deliver(sendmail, timeout: .milliseconds(700), message)
        let elapsed = ContinuousClock.now - started
        #expect(outcome.isRetryable)
        #expect(outcome.reason?.hasPrefix("sendmail did not finish within 0.7 seconds; killed") == true, "\(outcome)")
        #expect(outcome.reason?.contains("connecting to relay") == true, "\(outcome)")
        #expect(elapsed >= .milliseconds(650) && elapsed < .seconds(5), "\(elapsed)")
        let shell = try #require(
            folder.read("shell.pid").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let sleeper = try #require(
            folder.read("sleep.pid").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        #expect(processGone(shell))
        // The orphaned sleep is reaped by init, not by us: give it a moment.
        var waited = 0
        while !processGone(sleeper) && waited < 100 {
            usleep(20_000)
            waited += 1
        }
        #expect(processGone(sleeper), "the whole process group was killed")
    }

    @Test("a sendmail that exits without reading a large message does not kill us with SIGPIPE")
    func closesInput() async throws {
        let folder = try TemporaryFolder("sendmail-epipe")
        defer { folder.remove() }
        let ok = try program(folder, "exit 0")
        var message = ChannelFixture.mail()
        message.plain = String(repeating: "x", count: 1_000_000)
        #expect(try await deliver(ok, message) == .delivered)
        let failing = try program(folder, "echo 'cannot open queue' >&2; exit 75")
        #expect(
            try await deliver(failing, message)
                == .retryable(reason: "sendmail exited 75 (temporary failure): cannot open queue"))
    }

    @Test("killed by a signal is retryable; a program that cannot run is permanent")
    func signalsAndMissing() async throws {
        let folder = try TemporaryFolder("sendmail-signal")
        defer { folder.remove() }
        let killed = try program(folder, "kill -TERM $$")
        #expect(try await deliver(killed) == .retryable(reason: "sendmail was killed by signal 15"))
        let missing = folder.path + "/no-such-sendmail"
        #expect(
            try await deliver(missing)
                == .permanent(reason: "cannot run \(missing): No such file or directory"))
        let notExecutable = try folder.write("not-executable", "#!/bin/sh\nexit 0\n", mode: 0o600)
        #expect(try await deliver(notExecutable).reason == "cannot run \(notExecutable): Permission denied")
    }

    @Test("what the program prints is bounded")
    func boundedOutput() async throws {
        let folder = try TemporaryFolder("sendmail-chatty")
        defer { folder.remove() }
        let chatty = try program(folder, "cat >/dev/null; yes 'a long complaint' | head -c 1000000 >&2; exit 70")
        let outcome = try await deliver(chatty)
        #expect(outcome.isPermanent)
        #expect((outcome.reason?.count ?? 0) < 600, "\(outcome.reason?.count ?? 0) characters")
        #expect(outcome.reason?.hasPrefix("sendmail exited 70: a long complaint\\na long complaint") == true)
    }

    @Test("an address SameDay will not hand over is permanent, and nothing runs")
    func refusedAddresses() async throws {
        let folder = try TemporaryFolder("sendmail-refused")
        defer { folder.remove() }
        let sendmail = try program(folder, "touch \"\(folder.path)/ran\"; cat >/dev/null; exit 0")
        for to in [
            "a@x.example\r\nBcc: evil@x.example", "-oQ/tmp/x@x.example", "two@at@x.example", "space d@x.example",
            "no-at-sign", "tên@quan1.hcmc.vn", String(repeating: "a", count: 300) + "@x.example",
        ] {
            let outcome = try await deliver(sendmail, ChannelFixture.mail(to: to))
            #expect(outcome.isPermanent, "\(to.debugDescription)")
            #expect(outcome.reason?.hasPrefix("recipient address not accepted") == true)
            #expect(outcome.reason?.contains("\r") == false && outcome.reason?.contains("\n") == false)
        }
        var badSender = ChannelFixture.mail()
        badSender.from = "SameDay <-f@x.example>"
        #expect(try await deliver(sendmail, badSender).reason?.hasPrefix("sender address not accepted") == true)
        #expect(!folder.exists("ran"))
        #expect(try await deliver(sendmail, ChannelFixture.mail(to: "Lãnh đạo <lanhdao@x.example>")) == .delivered)
        #expect(folder.exists("ran"))
    }
}
