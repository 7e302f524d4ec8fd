import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// E-mail through the host's mail transfer agent, by its `sendmail` interface (docs/notify.md, "Channels": the MTA
/// owns queueing, retries, TLS, DKIM and relay authentication; SameDay speaks no SMTP).
///
/// A message is handed over as `<program> <arguments…> -i -f <sender> -- <recipient>`, the message on standard
/// input. The recipient is an argument, never taken from the headers (`-t` is not used), so nothing in a header can
/// add a recipient; `--` ends the options, and both addresses are checked before anything runs. The program is
/// Debian's `/usr/sbin/sendmail` (postfix, or msmtp-mta) by default; `arguments` lets it be, say,
/// `/usr/bin/msmtp -C /etc/sameday/msmtp.conf`.
///
/// Exit status 0 is delivered (for postfix: queued); EX_TEMPFAIL (75), a timeout (the program is killed) or a death
/// by a signal is retryable; anything else is permanent. The reason carries what the program printed, bounded and
/// with control characters escaped.
///
/// `deliver` blocks its thread until the program ends or the timeout passes: the notify service runs channels on
/// threads of its own, never on an event loop or Swift's cooperative pool.
public struct SendmailChannel: Sendable {
    public struct Settings: Sendable, Equatable {
        /// An absolute path.
        public var program: String
        /// Placed before SameDay's own options (`-C /etc/sameday/msmtp.conf` for msmtp).
        public var arguments: [String]
        public var timeout: Duration

        public init(program: String = "/usr/sbin/sendmail", arguments: [String] = [], timeout: Duration = .seconds(60))
        {
            self.program = program
            self.arguments = arguments
            self.timeout = timeout
        }
    }

    public let settings: Settings

    /// sysexits.h: a temporary failure, try again later.
    public static let exTempFail: Int32 = 75
    /// What the program printed that is kept for the reason.
    static let outputLimit = 2048
    /// The longest address taken (RFC 5321's path limit, less the angle brackets).
    static let maxAddressLength = 254

    public init(_ settings: Settings = Settings()) throws(ChannelConfigurationError) {
        guard settings.program.hasPrefix("/") else {
            throw ChannelConfigurationError("sendmail program must be an absolute path, not \(settings.program)")
        }
        guard settings.timeout > .zero else { throw ChannelConfigurationError("sendmail timeout must be positive") }
        for argument in [settings.program] + settings.arguments
        where argument.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ChannelConfigurationError("sendmail program and arguments must not contain control characters")
        }
        self.settings = settings
    }

    /// The whole command line for a message from `sender` to `recipient` (bare addresses, already checked).
    public func commandLine(sender: String, recipient: String) -> [String] {
        [settings.program] + settings.arguments + ["-i", "-f", sender, "--", recipient]
    }

    /// Hands `message` to the MTA, addressed to the address in `message.to`, from the address in `message.from`.
    public func deliver(_ message: MailMessage) -> DeliveryOutcome {
        deliver(rendered: message.rendered(), from: message.from, to: message.to)
    }

    /// Hands a message already rendered (`MailMessage.rendered()`, as the notifier stores it) to the MTA.
    public func deliver(rendered: String, from: String, to: String) -> DeliveryOutcome {
        func refused(_ role: String, _ address: String) -> DeliveryOutcome {
            .permanent(reason: "\(role) address not accepted: \(DeliveryOutcome.printable(address.utf8, limit: 100))")
        }
        guard let sender = Self.envelopeAddress(from) else { return refused("sender", from) }
        guard let recipient = Self.envelopeAddress(to) else { return refused("recipient", to) }
        // The sendmail interface takes a message in local text form: LF line ends (the MTA writes CRLF on the wire).
        let text = rendered.replacingOccurrences(of: "\r\n", with: "\n")
        let name = (settings.program as NSString).lastPathComponent
        let result = ChildProcessRun.run(
            commandLine(sender: sender, recipient: recipient), input: Array(text.utf8), timeout: settings.timeout,
            outputLimit: Self.outputLimit)
        let said = result.output.isEmpty ? "" : ": " + DeliveryOutcome.printable(result.output)
        switch result.end {
        case .exited(0):
            return .delivered
        case .exited(Self.exTempFail):
            return .retryable(reason: "\(name) exited 75 (temporary failure)\(said)")
        case .exited(let status):
            return .permanent(reason: "\(name) exited \(status)\(said)")
        case .signalled(let signal):
            return .retryable(reason: "\(name) was killed by signal \(signal)\(said)")
        case .timedOut:
            return .retryable(reason: "\(name) did not finish within \(settings.timeout); killed\(said)")
        case .couldNotStart(let error):
            return .permanent(reason: "cannot run \(settings.program): \(error)")
        case .couldNotStage(let error):
            return .retryable(reason: error)
        }
    }

    /// The bare address of `"Name <local@domain>"` or `"local@domain"`, if SameDay will hand it to sendmail: ASCII,
    /// no white space or control characters, none of `<>()[],;:"\`, exactly one `@` with text on both sides, not
    /// starting with `-`, at most 254 characters.
    public static func envelopeAddress(_ header: String) -> String? {
        var candidate = Substring(header)
        if let open = header.lastIndex(of: "<") {
            guard let close = header[open...].firstIndex(of: ">"),
                header[header.index(after: close)...].allSatisfy({ $0 == " " })
            else { return nil }
            candidate = header[header.index(after: open)..<close]
        }
        let bytes = Array(candidate.utf8)
        guard !bytes.isEmpty, bytes.count <= maxAddressLength, bytes[0] != UInt8(ascii: "-") else { return nil }
        let forbidden = Set("<>()[],;:\"\\".utf8)
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !forbidden.contains($0) }) else { return nil }
        let at = bytes.indices.filter { bytes[$0] == UInt8(ascii: "@") }
        guard at.count == 1, at[0] > 0, at[0] < bytes.count - 1 else { return nil }
        return String(candidate)
    }
}

/// A channel's settings that cannot work: a relative program path, an unreadable token file, a URL that is not
/// HTTP. Reported when the channel is built, so the service refuses to start rather than failing every message.
public struct ChannelConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One run of a program with its standard input given whole from memory and its standard output and error captured
/// (bounded), ended by SIGKILL to its whole process group if it outlives `timeout`.
///
/// posix_spawn and waitpid, not Foundation's `Process`: the child gets a process group of its own (so a wrapper
/// script's children die with it), default signal dispositions and an empty signal mask, and the wait has a deadline.
enum ChildProcessRun {
    enum End: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case couldNotStart(String)
        /// The message could not be written to its temporary file (the folder full or unwritable).
        case couldNotStage(String)
    }

    struct Finished {
        var end: End
        /// The first bytes of standard output and error together.
        var output: [UInt8]
    }

    static func run(_ argv: [String], input: [UInt8], timeout: Duration, outputLimit: Int) -> Finished {
        let deadline = ContinuousClock.now + timeout
        // The input is written whole to a file before the program starts, and the program reads it from there: a
        // notifier SIGKILLed after the spawn cannot cut a message short (a program reading a pipe whose writer died
        // takes end of file for the message's end, and msmtp sends what it got).
        let inputFile: Int32
        switch stagedInput(input) {
        case .success(let file): inputFile = file
        case .failure(let error): return Finished(end: .couldNotStage(error.text), output: [])
        }
        defer { close(inputFile) }
        var outPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { return Finished(end: .couldNotStart(errnoText()), output: []) }
        // Close-on-exec, so no other program started meanwhile keeps them open (the child gets its own copies as
        // 1 and 2 from the spawn's dup2, which clears the flag).
        for fd in outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var readEnd: Int32 = outPipe[0]
        defer { if readEnd >= 0 { close(readEnd) } }

        let pid: pid_t
        switch spawn(argv, stdin: inputFile, output: outPipe[1]) {
        case .success(let spawned): pid = spawned
        case .failure(let error):
            close(outPipe[1])
            return Finished(end: .couldNotStart(error.text), output: [])
        }
        close(outPipe[1])
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        var tick: Int64 = 1

        /// Reads what is there; false at end of file or on an error.
        func drain() -> Bool {
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n > 0 {
                    output += chunk[..<min(n, max(outputLimit - output.count, 0))]
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
            }
        }

        while true {
            var raw: Int32 = 0
            let waited = waitpid(pid, &raw, WNOHANG)
            if waited == pid {
                // Gone: what it printed is in the pipe (a grandchild may hold the pipe open; its output is not
                // waited for).
                if readEnd >= 0 { _ = drain() }
                let signal = raw & 0x7F
                return Finished(end: signal == 0 ? .exited((raw >> 8) & 0xFF) : .signalled(signal), output: output)
            }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
                if readEnd >= 0 { _ = drain() }
                return Finished(end: .timedOut, output: output)
            }
            // Poll the output for a tick (1 ms, doubling to 50 ms while nothing happens), then look at the child
            // again: a program that ends closes its output, which wakes the poll at once.
            let remainingMilliseconds =
                remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
            let milliseconds = Int32(min(tick, max(1, remainingMilliseconds)))
            tick = min(tick * 2, 50)
            guard readEnd >= 0 else {
                usleep(UInt32(milliseconds) * 1000)
                continue
            }
            var fds = [pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, milliseconds) > 0 else { continue }
            tick = 1
            if !drain() {
                close(readEnd)
                readEnd = -1
            }
        }
    }

    /// An unlinked file in the temporary folder (`TMPDIR`, else /tmp) holding `input`, read from its start; gone
    /// when the last descriptor on it closes, the program's included.
    private static func stagedInput(_ input: [UInt8]) -> Swift.Result<Int32, SpawnError> {
        var template = Array((FileManager.default.temporaryDirectory.path + "/sameday-mail-XXXXXX").utf8CString)
        let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard file >= 0 else { return .failure(SpawnError(text: "cannot create a temporary file: \(errnoText())")) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(file, F_SETFD, FD_CLOEXEC)
        var written = 0
        while written < input.count {
            let n = input.withUnsafeBytes { write(file, $0.baseAddress! + written, $0.count - written) }
            if n > 0 {
                written += n
            } else if !(n < 0 && errno == EINTR) {
                let error = errnoText()
                close(file)
                return .failure(SpawnError(text: "cannot write the message to a temporary file: \(error)"))
            }
        }
        guard lseek(file, 0, SEEK_SET) == 0 else {
            let error = errnoText()
            close(file)
            return .failure(SpawnError(text: "cannot rewind the message's temporary file: \(error)"))
        }
        return .success(file)
    }

    struct SpawnError: Error {
        var text: String
    }

    private static func spawn(_ argv: [String], stdin: Int32, output: Int32) -> Swift.Result<pid_t, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { return .failure(SpawnError(text: String(cString: strerror(result)))) }
        return .success(pid)
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
