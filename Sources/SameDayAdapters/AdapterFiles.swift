import SameDayFiles

extension AdapterError {
    /// Runs a durable-file operation in the adapters' error type (the file's name and reason are kept).
    static func files<T>(_ body: () throws(FileError) -> T) throws(AdapterError) -> T {
        do {
            return try body()
        } catch {
            throw AdapterError(error.description)
        }
    }
}
