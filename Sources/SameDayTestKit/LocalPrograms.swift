import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A program from Debian's packages some suites run for real (scripts/install-deps.sh installs them), found by its
/// installed files.
public enum LocalProgram: Sendable, CustomStringConvertible {
    /// msmtp, a sendmail-compatible SMTP client: /usr/bin/msmtp (Debian's msmtp).
    case msmtp
    /// aiosmtpd for the system's Python, which runs scripts/smtp-sink.py (Debian's python3-aiosmtpd).
    case aiosmtpd
    /// Headless Chromium driven by Selenium, with pika to publish (Debian's chromium, chromium-driver,
    /// python3-selenium, python3-pika): scripts/board-browser-check.py.
    case browser

    /// The files whose presence says the program is installed.
    public var files: [String] {
        switch self {
        case .msmtp: ["/usr/bin/msmtp"]
        case .aiosmtpd: ["/usr/bin/python3", "/usr/lib/python3/dist-packages/aiosmtpd/__init__.py"]
        case .browser:
            [
                "/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/python3",
                "/usr/lib/python3/dist-packages/selenium/__init__.py",
                "/usr/lib/python3/dist-packages/pika/__init__.py",
            ]
        }
    }

    public var description: String {
        switch self {
        case .msmtp: "msmtp (Debian's msmtp, /usr/bin/msmtp)"
        case .aiosmtpd: "aiosmtpd (Debian's python3-aiosmtpd, for /usr/bin/python3)"
        case .browser:
            "headless Chromium with Selenium and pika (Debian's chromium, chromium-driver, python3-selenium, python3-pika)"
        }
    }

    public var isInstalled: Bool {
        files.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
}

/// A program a suite needs is not installed although SAMEDAY_TEST_SERVICES_REQUIRED=1 says it must be.
public struct ProgramAbsent: Error, CustomStringConvertible {
    public var programs: [LocalProgram]
    public var description: String {
        "needs \(programs.map(\.description).joined(separator: " and ")), not installed (scripts/install-deps.sh "
            + "installs it), and \(LocalService.requiredVariable)=1 makes it mandatory"
    }
}

extension Trait where Self == ConditionTrait {
    /// Skips a suite or test, saying which Debian package is missing, when one of `programs` is not installed; with
    /// SAMEDAY_TEST_SERVICES_REQUIRED=1 (scripts/test.sh) the absence is an error and the tests fail instead.
    public static func needs(_ programs: LocalProgram..., sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        .enabled(
            Comment(
                rawValue: "needs \(programs.map(\.description).joined(separator: " and ")) "
                    + "(\(LocalService.requiredVariable)=1 makes it mandatory)"),
            sourceLocation: sourceLocation
        ) {
            let missing = programs.filter { !$0.isInstalled }
            if missing.isEmpty { return true }
            if LocalService.servicesRequired { throw ProgramAbsent(programs: missing) }
            return false
        }
    }
}

/// A TCP port on loopback that nothing listens on right now (the kernel's choice), for a server a test starts.
public func unusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    precondition(bound, "cannot bind a loopback port (errno \(errno))")
    return Int(UInt16(bigEndian: address.sin_port))
}
