import Logging
import ServiceLifecycle

/// The service group setup `sameday worker`, `sameday sources` and `sameday receive` share (and the tests that run
/// them in process): any service ending, an error included, shuts the whole group down gracefully, in reverse order
/// of the services; with signals, SIGTERM and SIGINT do the same.
extension ServiceGroupConfiguration.ServiceConfiguration {
    public static func stoppingTheGroup(_ service: some Service, name: String) -> Self {
        .init(
            service: service, successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)
    }
}

extension ServiceGroupConfiguration {
    public static func stoppedBySignals(_ services: [ServiceConfiguration], logger: Logger) -> Self {
        .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    }

    /// The same group without signal handlers (a test in a process that shares its signals).
    public static func stoppingTogether(_ services: [ServiceConfiguration], logger: Logger) -> Self {
        .init(services: services, logger: logger)
    }
}
