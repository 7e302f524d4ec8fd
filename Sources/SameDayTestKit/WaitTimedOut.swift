/// What a test helper that waits throws when its deadline passes before the thing it waited for happened, so the
/// test fails saying what it waited for instead of going on as if it had happened.
public struct WaitTimedOut: Error, CustomStringConvertible {
    public var what: String
    public var after: Duration?

    public init(what: String, after: Duration? = nil) {
        self.what = what
        self.after = after
    }

    public var description: String {
        "timed out waiting for \(what)" + (after.map { " after \($0)" } ?? "")
    }
}
