import Crypto

/// SHA-256 as SameDay uses it (broker password hashes, bearer-token hashes, checkpoint fingerprints, deterministic
/// event ids): swift-crypto's, with the byte-array and hex forms those callers need in one place.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func digest(_ bytes: some Collection<UInt8>) -> [UInt8] {
        Array(Crypto.SHA256.hash(data: Array(bytes)))
    }

    /// The digest as lower-case hex.
    public static func hex(_ bytes: some Collection<UInt8>) -> String { hexString(digest(bytes)) }

    public static func hexString(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Incremental SHA-256 over data that arrives in pieces (the checkpoint's fingerprint of an export's consumed
    /// prefix, hashed as the run moves on). `finalize()` leaves the hasher usable: it can go on and be finalized
    /// again later.
    public struct Hasher: Sendable {
        private var state = Crypto.SHA256()
        /// Bytes hashed so far.
        public private(set) var count: Int64 = 0

        public init() {}

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            state.update(bufferPointer: bytes)
            count += Int64(bytes.count)
        }

        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

        /// The digest of everything so far, as lower-case hex.
        public func finalize() -> String { SHA256.hexString(finalizeBytes()) }

        /// The 32-byte digest of everything so far (swift-crypto's `finalize()` leaves the state as it was).
        public func finalizeBytes() -> [UInt8] { Array(state.finalize()) }
    }
}
