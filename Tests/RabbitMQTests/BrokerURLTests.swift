import Testing

@testable import RabbitMQ

@Suite("Broker URLs")
struct BrokerURLTests {
    @Test("full URL with credentials, port and vhost")
    func full() throws {
        let url = try BrokerURL(parsing: "amqp://worker:s%40cret@broker.local:5673/sameday")
        #expect(
            url
                == BrokerURL(
                    host: "broker.local", port: 5673, user: "worker", password: "s@cret", virtualHost: "sameday"))
    }

    @Test("defaults: guest, 5672, vhost /")
    func defaults() throws {
        #expect(try BrokerURL(parsing: "amqp://localhost") == BrokerURL(host: "localhost"))
        #expect(try BrokerURL(parsing: "amqp://localhost/").virtualHost == "/")
        #expect(try BrokerURL(parsing: "amqp://localhost/%2F").virtualHost == "/")
    }

    @Test("amqps defaults to 5671 and TLS")
    func tls() throws {
        let url = try BrokerURL(parsing: "amqps://u:p@[::1]/")
        #expect(url.useTLS && url.port == 5671 && url.host == "::1")
    }

    @Test(
        "bad URLs name what is wrong",
        arguments: [
            ("http://localhost", "must start with amqp://"),
            ("amqp://", "missing host"),
            ("amqp://host:99999", "port '99999'"),
            ("amqp://host:abc", "port 'abc'"),
            ("amqp://host/a/b", "one path segment"),
            ("amqp://host/v?heartbeat=5", "query parameters"),
            ("amqp://u:p%zz@host", "percent-escape"),
            ("amqp://[::1", "unterminated"),
            ("amqp://:pw@host", "empty user"),
        ])
    func bad(text: String, expected: String) {
        #expect {
            try BrokerURL(parsing: text)
        } throws: { error in
            let error = error as! AMQPError
            return error.kind == .invalidURL && error.message.contains(expected) && !error.isRetriable
        }
    }

    @Test("the password never appears in errors or descriptions")
    func redaction() throws {
        let url = try BrokerURL(parsing: "amqp://worker:topsecret@host:5672/v")
        #expect(!url.description.contains("topsecret"))
        do {
            _ = try BrokerURL(parsing: "amqp://worker:topsecret@host:notaport/v")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("topsecret"))
            #expect(error.description.contains("worker:***@"))
        }
    }

    @Test("a URL that carries a password is told apart (commands refuse it on their command line)")
    func carriesPassword() throws {
        for text in [
            "amqp://guest:guest@127.0.0.1:5672/%2F", "amqps://u:p%40ss@[::1]/v?cacertfile=/ca.pem", "amqp://u:@h",
            "amqp://a:5672/%2F, amqp://w:s3cret@b:5673/%2F", "amqp://u:pa@ss@h/v",
        ] {
            #expect(BrokerURL.carriesPassword(text), "\(text)")
        }
        for text in [
            "amqp://127.0.0.1:5672/%2F", "amqp://worker@broker:5672/sameday", "amqps://h?cacertfile=/a:b@c",
            "amqp://a:5672,amqp://b:5673", "amqp://[::1]:5672/%2F", "",
        ] {
            #expect(!BrokerURL.carriesPassword(text), "\(text)")
        }
        // Without a password in the URL, RabbitMQ's default applies: the local broker's guest user logs in.
        #expect(try BrokerURL(parsing: "amqp://127.0.0.1:5672/%2F").password == "guest")
    }

    @Test("several brokers, comma-separated, for a cluster")
    func cluster() throws {
        let configuration = try ConnectionConfiguration(urls: ["amqp://a:5672, amqp://b:5673", "amqp://c"])
        #expect(configuration.brokers.map(\.host) == ["a", "b", "c"])
        #expect(configuration.brokers.map(\.port) == [5672, 5673, 5672])
    }
}
