import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Threads named for the operating system too. On Linux, Foundation's `Thread.name` never reaches the kernel, so
/// `top -H`, `ps -L`, `/proc/<pid>/task/*/comm` and `perf` showed every SameDay thread under the name of whatever
/// thread created it; a stalled files thread and a busy commit thread looked the same to the people running the
/// service. The name is set by the new thread itself, first thing.
public enum NamedThread {
    /// The most bytes of a name Linux keeps (`TASK_COMM_LEN` less the terminator); a longer name is cut to it.
    public static let osNameLimit = 15

    /// Starts `body` on a new thread named `name`, for Foundation and for the operating system.
    public static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            nameCurrentThread(name)
            body()
        }
        thread.name = name
        thread.start()
    }

    /// Names the calling thread for the operating system: `name` less a leading `sameday.` if it is too long
    /// with it (the process is `sameday` already), then cut to `osNameLimit` bytes (ASCII names: a cut never splits
    /// a character).
    public static func nameCurrentThread(_ name: String) {
        // What pthread_setname_np does (Swift's Glibc module does not export it): the thread's own comm file.
        let file = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard file >= 0 else { return }
        let bytes = Array(osName(name).utf8)
        _ = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
        close(file)
    }

    static func osName(_ name: String) -> String {
        var bytes = Substring(name).utf8[...]
        if bytes.count > osNameLimit && name.hasPrefix("sameday.") { bytes = bytes.dropFirst("sameday.".utf8.count) }
        return String(decoding: bytes.prefix(osNameLimit), as: UTF8.self)
    }
}
