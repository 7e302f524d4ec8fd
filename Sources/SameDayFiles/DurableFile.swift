import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A durable write that failed, naming the file and the reason.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Every durable write of SameDay goes through here: the worker's rollup and alert files, the adapters' spool, its
/// offset, checkpoints and rejects files, the definitions the topology command writes. Each `write`, `fsync`,
/// `rename` and `close` result is checked (a full disk or an I/O error is an error with the file's name, never a
/// silent loss), and a file created, replaced or removed has its folder fsynced too, so the name itself survives a
/// power cut.
public enum DurableFile {
    /// Files that may hold personal data (rejects hold whole source records) are created owner-only.
    public static let privateMode: mode_t = 0o600
    public static let publicMode: mode_t = 0o644

    static func reason(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Writes all of `bytes` at the file's position (or its end, for `O_APPEND`).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        var written = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    failure = n < 0 ? errno : EIO
                    return
                }
                written += n
            }
        }
        if failure != 0 { throw FileError("\(path): write failed (\(reason(failure)))") }
    }

    /// fsync, checked.
    public static func sync(_ fd: Int32, path: String) throws(FileError) {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw FileError("\(path): fsync failed (\(reason()))")
        }
    }

    /// fsyncs the folder holding `path`, so that a file's creation, rename or removal is durable.
    public static func syncFolder(of path: String) throws(FileError) {
        var folder = (path as NSString).deletingLastPathComponent
        if folder.isEmpty { folder = "." }
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("\(folder): cannot open the folder to fsync it (\(reason()))") }
        defer { close(fd) }
        // Some file systems cannot fsync a folder (EINVAL): nothing more can be done there.
        if fsync(fd) != 0 {
            if errno != EINVAL { throw FileError("\(folder): fsync of the folder failed (\(reason()))") }
            return
        }
        folderSynced?(folder)
    }

    /// Test seam: called with each folder fsynced, after its fsync succeeded.
    @TaskLocal public static var folderSynced: (@Sendable (String) -> Void)?

    /// Opens (creating if needed) a file for appending. A file created here, or one that already exists with wider
    /// permissions, gets exactly `mode` (umask aside); a created file's folder is fsynced.
    public static func openForAppending(_ path: String, mode: mode_t, truncate: Bool = false, read: Bool = false)
        throws(FileError) -> Int32
    {
        let existed = access(path, F_OK) == 0
        let flags = (read ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        let fd = open(path, flags, mode)
        guard fd >= 0 else { throw FileError("\(path): cannot open (\(reason()))") }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o777 & ~mode != 0, fchmod(fd, mode) != 0 {
            let why = reason()
            close(fd)
            throw FileError("\(path): cannot restrict its permissions to \(String(mode, radix: 8)) (\(why))")
        }
        if !existed {
            do {
                try syncFolder(of: path)
            } catch {
                close(fd)
                throw error
            }
        }
        return fd
    }

    /// Temporary file in the same folder, write, fsync, close, rename over `path`, fsync the folder: readers see
    /// the old bytes or the new ones, never half, and after a crash the new name is there or the old one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = publicMode)
        throws(FileError)
    {
        _ = try writeAtomically(bytes, to: path, mode: mode, replaceIf: { true })
    }

    /// `writeAtomically`, with `replaceIf` asked right before the rename: false leaves `path` as it was and returns
    /// false (a worker that lost its lease while this file was being written must not replace the new holder's).
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: mode_t = publicMode, replaceIf: () -> Bool
    ) throws(FileError) -> Bool {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let tmp = (folder.isEmpty ? "" : folder + "/") + ".\(name).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError("\(tmp): cannot create (\(reason()))") }
        do {
            try writeAll(fd, bytes, path: tmp)
            try sync(fd, path: tmp)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        guard close(fd) == 0 else {
            let why = reason()
            unlink(tmp)
            throw FileError("\(tmp): close failed (\(why))")
        }
        guard replaceIf() else {
            unlink(tmp)
            return false
        }
        guard Glibc.rename(tmp, path) == 0 else {
            let why = reason()
            unlink(tmp)
            throw FileError("\(path): cannot replace (\(why))")
        }
        try syncFolder(of: path)
        return true
    }

    /// Appends `bytes` and fsyncs: a file that grows by whole records only (the worker's alerts files). A file
    /// created here gets `mode`, and its folder is fsynced.
    public static func append(_ bytes: [UInt8], to path: String, mode: mode_t = publicMode) throws(FileError) {
        try createFolder(of: path)
        let fd = try openForAppending(path, mode: mode)
        do {
            try writeAll(fd, bytes, path: path)
            try sync(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw FileError("\(path): close failed (\(reason()))") }
    }

    /// Creates the folder that will hold `path`, with its parents. Each folder made here has its parent fsynced
    /// after it, so its entry survives a power cut: otherwise a new day's `daily/YYYY-MM-DD/` could vanish with
    /// the files already synced inside it.
    public static func createFolder(of path: String) throws(FileError) {
        let folder = (path as NSString).deletingLastPathComponent
        guard !folder.isEmpty else { return }
        var missing: [String] = []  // innermost first
        var current = folder
        while !isFolder(current) {
            missing.append(current)
            let parent = (current as NSString).deletingLastPathComponent
            if parent.isEmpty || parent == current { break }
            current = parent
        }
        for created in missing.reversed() {
            guard mkdir(created, 0o777) == 0 else {
                // Made meanwhile by another process, which syncs its own parent.
                if errno == EEXIST && isFolder(created) { continue }
                throw FileError("\(created): cannot create the folder (\(reason()))")
            }
            try syncFolder(of: created)
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Renames a file and fsyncs the folder.
    public static func rename(_ from: String, to: String) throws(FileError) {
        guard Glibc.rename(from, to) == 0 else { throw FileError("\(from): cannot rename to \(to) (\(reason()))") }
        try syncFolder(of: to)
    }

    /// Removes a file (nothing to do if it is gone) and fsyncs the folder.
    public static func remove(_ path: String) throws(FileError) {
        if unlink(path) != 0 {
            if errno == ENOENT { return }
            throw FileError("\(path): cannot remove (\(reason()))")
        }
        try syncFolder(of: path)
    }

    /// Cuts a file to `length` bytes and fsyncs it.
    public static func truncate(_ fd: Int32, to length: Int64, path: String) throws(FileError) {
        guard ftruncate(fd, off_t(length)) == 0 else {
            throw FileError("\(path): cannot truncate to \(length) bytes (\(reason()))")
        }
        try sync(fd, path: path)
    }
}
