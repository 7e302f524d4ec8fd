import Foundation

/// RabbitMQ's `rabbit_password_hashing_sha256` password hash, as a definitions file carries it in `password_hash`:
/// base64 of a 4-byte random salt followed by SHA-256(salt ‖ UTF-8 password). The broker recomputes it with the
/// salt it finds in the first four bytes, so a hash generated here logs in exactly like `rabbitmqctl add_user`.
/// SHA-256 is swift-crypto's, through `SHA256` (this module).
public enum RabbitPasswordHash {
    /// The `hashing_algorithm` to write next to the hash.
    public static let algorithm = "rabbit_password_hashing_sha256"

    /// The hash of `password` with a fresh random salt (the system's cryptographic generator).
    public static func make(password: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = withUnsafeBytes(of: generator.next() as UInt32) { Array($0) }
        return make(password: password, salt: salt)
    }

    /// The hash of `password` with a given 4-byte salt (tests; a fixed salt must never be used for a real user).
    public static func make(password: String, salt: [UInt8]) -> String {
        precondition(salt.count == 4, "RabbitMQ's salt is 4 bytes")
        return Data(salt + SHA256.digest(salt + Array(password.utf8))).base64EncodedString()
    }

    /// Whether `hash` (as `make` writes it) is the hash of `password`.
    public static func matches(_ hash: String, password: String) -> Bool {
        guard let bytes = Data(base64Encoded: hash).map(Array.init), bytes.count == 36 else { return false }
        return make(password: password, salt: Array(bytes[0..<4])) == hash
    }
}
