import Foundation

/// Debian's headless Chromium (`scripts/install-deps.sh` installs it), run on a file:// page with no network: a
/// throwaway profile, every host name unresolvable, and the page's own Content-Security-Policy.
struct Chromium {
    let path: String

    /// nil when no chromium is installed.
    static let installed: Chromium? = {
        let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }.map(Chromium.init)
    }()

    /// On CI the browser test must run: a missing chromium there is a broken install, not a reason to skip.
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    struct Run {
        var stdout: String
        var stderr: String
        var status: Int32
        /// The page's console messages: uncaught errors, console.* calls, blocked loads (Chromium logs every one as
        /// `…:CONSOLE:N] "message", source: …` with --enable-logging=stderr).
        var consoleMessages: [String] {
            stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        }
    }

    func run(_ arguments: [String], page: URL, in folder: URL) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--no-first-run",
                "--disable-extensions", "--disable-sync", "--disable-background-networking",
                "--disable-component-update", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--user-data-dir=\(folder.appendingPathComponent("profile").path)",
                "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
            ] + arguments + [page.absoluteString]
        let out = folder.appendingPathComponent("chromium.out")
        let err = folder.appendingPathComponent("chromium.err")
        guard FileManager.default.createFile(atPath: out.path, contents: nil),
            FileManager.default.createFile(atPath: err.path, contents: nil)
        else { throw CocoaError(.fileWriteUnknown) }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        // A hung browser must not hang the suite.
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return Run(
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "", status: process.terminationStatus)
    }

    /// The page's DOM after load, and its console messages.
    func dumpDOM(_ page: URL, in folder: URL) throws -> Run { try run(["--dump-dom"], page: page, in: folder) }

    /// A PNG of the page at 1280×2000.
    func screenshot(_ page: URL, to png: URL, in folder: URL) throws -> Run {
        try run(["--window-size=1280,2000", "--screenshot=\(png.path)"], page: page, in: folder)
    }
}
