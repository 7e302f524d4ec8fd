import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The exclusive lock on a shard's state folder: with SQLite a shard has exactly one worker, and a second instance
/// (a standby started by mistake, a unit started twice) must not fire the same timers from a copy of the state.
public struct StateLock: Sendable {
    let descriptor: Int32

    public struct Held: Error, CustomStringConvertible {
        public var description: String
    }

    public init(folder: String, shard: Int) throws {
        try self.init(
            folder: folder, file: "shard-\(shard).lock",
            heldBy: "another worker of shard \(shard): with SQLite state a shard has one worker")
    }

    /// The lock of `sameday sources`' state folder: one watcher of the events stream per deployment.
    public init(sourcesFolder folder: String) throws {
        try self.init(
            folder: folder, file: "sources.lock",
            heldBy: "another `sameday sources`: one watcher reads the events stream and raises source_silent")
    }

    /// The lock of `sameday notify`'s state folder: one notifier per store, or people would get messages twice.
    public init(notifyFolder folder: String) throws {
        try self.init(
            folder: folder, file: "notify.lock",
            heldBy: "another `sameday notify`: one notifier keeps a notification store")
    }

    /// The lock of `sameday board`'s state folder: one board per state file.
    public init(boardFolder folder: String) throws {
        try self.init(
            folder: folder, file: "board.lock", heldBy: "another `sameday board` on the same state folder")
    }

    private init(folder: String, file: String, heldBy: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + file
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw Held(description: "\(path): cannot open the state lock (errno \(errno))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw Held(description: "\(path) is held by \(heldBy); stop the other one first")
        }
    }

    public func release() { close(descriptor) }
}
