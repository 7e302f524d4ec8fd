import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file that holds a secret: the broker credentials file, a broker URL file with its password, the store's
/// password file. Only its owner may have any permission on it: a file that group or others can read or write is
/// refused at load, naming the file and the fix, rather than used while the secret is open to them.
public enum SecretFile {
    /// A secret is one short line; a larger file is a wrong path, not a secret.
    public static let maximumBytes = 4096

    /// Refuses `path` unless it is a regular file with no permission bit for group or others (mode 0600 or 0400).
    /// `what` names what it holds, for the error ("the broker credentials").
    public static func checkPermissions(_ path: String, holding what: String) throws(FileError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FileError("\(path): cannot read \(what) (\(DurableFile.reason()))")
        }
        try check(info, path: path, holding: what)
    }

    /// Reads `path` (at most `maximumBytes` of UTF-8) after `checkPermissions`'s check, made on the opened file.
    public static func read(_ path: String, holding what: String) throws(FileError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("\(path): cannot read \(what) (\(DurableFile.reason()))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError("\(path): cannot read \(what) (\(DurableFile.reason()))") }
        try check(info, path: path, holding: what)
        var bytes = [UInt8](repeating: 0, count: maximumBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw FileError("\(path): cannot read \(what) (\(DurableFile.reason()))") }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumBytes, let text = String(validating: bytes[..<count], as: UTF8.self) else {
            throw FileError("\(path): \(what) must be at most \(maximumBytes) bytes of UTF-8")
        }
        return text
    }

    static func check(_ info: stat, path: String, holding what: String) throws(FileError) {
        guard info.st_mode & S_IFMT == S_IFREG else { throw FileError("\(path): \(what) must be in a regular file") }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw FileError(
                "\(path): mode \(String(mode, radix: 8)) gives group or others access to \(what); chmod 600 \(path)"
            )
        }
    }
}
