// amqp-reference-bench: the AMQP benchmark of sameday-bench written directly against rabbitmq-c, as the yardstick
// for the Swift wrapper. Publishes N persistent messages with confirms into a fresh quorum queue on one connection,
// consumes them with manual multiple-acks on a second, and prints one JSON line with both rates.
#define _POSIX_C_SOURCE 200809L // clock_gettime and getpid even under a strict -std=c11

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h> // rabbitmq-c 0.12 and later
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h> // rabbitmq-c 0.11 (Debian 12)
#include <amqp_tcp_socket.h>
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h> // struct timeval: amqp.h only forward-declares it
#include <time.h>
#include <unistd.h>

#define CHANNEL 1
#define HEARTBEAT 30
#define STALL_SECONDS 10 // no confirm or delivery for this long means the broker is stuck: give up

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("amqp-reference-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

// AMQP_RESPONSE_NORMAL is 1, so compare explicitly; explain library and broker errors.
static void check_reply(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        die("%s: %s", what, amqp_error_string2(r.library_error));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = r.reply.decoded;
        die("%s: connection closed by broker: %u %.*s", what, c->reply_code, (int)c->reply_text.len,
            (const char *)c->reply_text.bytes);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = r.reply.decoded;
        die("%s: channel closed by broker: %u %.*s", what, c->reply_code, (int)c->reply_text.len,
            (const char *)c->reply_text.bytes);
    }
    die("%s: unexpected reply (type %d, method 0x%08x)", what, (int)r.reply_type, (unsigned)r.reply.id);
}

static void check_status(int status, const char *what) {
    if (status != AMQP_STATUS_OK) die("%s: %s", what, amqp_error_string2(status));
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Connect with timeouts everywhere (a plain socket open or RPC can hang), log in, open channel 1.
static amqp_connection_state_t connect_broker(const char *host, int port) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!conn || !sock) die("out of memory creating the connection");
    struct timeval connect_tv = {5, 0}, rpc_tv = {STALL_SECONDS, 0};
    int status = amqp_socket_open_noblock(sock, host, port, &connect_tv);
    if (status != AMQP_STATUS_OK) die("cannot connect to %s:%d: %s", host, port, amqp_error_string2(status));
    check_status(amqp_set_handshake_timeout(conn, &connect_tv), "set handshake timeout");
    check_status(amqp_set_rpc_timeout(conn, &rpc_tv), "set rpc timeout");
    check_reply(amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, HEARTBEAT, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                "login");
    amqp_channel_open(conn, CHANNEL);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    return conn;
}

static void disconnect(amqp_connection_state_t conn) {
    check_reply(amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS), "channel.close");
    check_reply(amqp_connection_close(conn, AMQP_REPLY_SUCCESS), "connection.close");
    check_status(amqp_destroy_connection(conn), "destroy connection");
}

// Publisher-confirm bookkeeping: tags are 1...N; acks may be single or "multiple" (everything up to the tag).
typedef struct {
    uint8_t *confirmed; // confirmed[tag] != 0 once acked or nacked
    uint64_t floor;     // every tag below this is confirmed
    uint64_t published; // highest tag sent so far
    uint64_t in_flight;
    uint64_t nacks, returns;
} confirms_t;

static void settle(confirms_t *c, uint64_t tag, int multiple) {
    if (tag < 1 || tag > c->published) die("confirm for unknown delivery tag %llu", (unsigned long long)tag);
    uint64_t from = multiple ? c->floor : tag;
    for (uint64_t t = from; t <= tag; t++)
        if (!c->confirmed[t]) c->confirmed[t] = 1, c->in_flight--;
    while (c->confirmed[c->floor]) c->floor++; // confirmed[N + 1] is a 0 sentinel
}

// Read frames until at most `limit` publishes are unconfirmed.
static void wait_confirms(amqp_connection_state_t conn, confirms_t *c, uint64_t limit) {
    while (c->in_flight > limit) {
        amqp_frame_t frame;
        struct timeval tv = {STALL_SECONDS, 0};
        int status = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
        if (status == AMQP_STATUS_TIMEOUT)
            die("no confirm within %d s (%llu in flight)", STALL_SECONDS, (unsigned long long)c->in_flight);
        check_status(status, "waiting for confirms");
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *ack = frame.payload.method.decoded;
            settle(c, ack->delivery_tag, ack->multiple);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *nack = frame.payload.method.decoded;
            uint64_t before = c->in_flight;
            settle(c, nack->delivery_tag, nack->multiple);
            c->nacks += before - c->in_flight;
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: { // unroutable: the message follows, then its ack
            amqp_message_t msg;
            check_reply(amqp_read_message(conn, frame.channel, &msg, 0), "reading a returned message");
            amqp_destroy_message(&msg);
            c->returns++;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            check_reply((amqp_rpc_reply_t){.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = frame.payload.method},
                        "publishing");
            break;
        default: break; // e.g. connection.blocked: nothing to do but keep waiting
        }
        amqp_maybe_release_buffers(conn);
    }
}

static long parse_arg(const char *name, const char *value, long min) {
    char *end;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || *end || v < min) die("%s needs an integer >= %ld", name, min);
    return v;
}

int main(int argc, char **argv) {
    long messages = 200000, size = 300, window = 1000, prefetch = 500, ack_every = 100, port = 5672;
    const char *host = "127.0.0.1";
    char queue_buf[128];
    snprintf(queue_buf, sizeof queue_buf, "bench.c.%ld.%ld", (long)getpid(), (long)time(NULL));
    const char *queue_name = queue_buf;
    for (int i = 1; i < argc; i += 2) { // every option takes a value
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--messages")) messages = parse_arg(a, v, 1);
        else if (!strcmp(a, "--size")) size = parse_arg(a, v, 0);
        else if (!strcmp(a, "--window")) window = parse_arg(a, v, 1);
        else if (!strcmp(a, "--prefetch")) prefetch = parse_arg(a, v, 1);
        else if (!strcmp(a, "--ack-every")) ack_every = parse_arg(a, v, 1);
        else if (!strcmp(a, "--port")) port = parse_arg(a, v, 1);
        else if (!strcmp(a, "--host") && v) host = v;
        else if (!strcmp(a, "--queue") && v) queue_name = v;
        else die("usage: %s [--messages N] [--size BYTES] [--window W] [--prefetch P] [--ack-every A] "
                 "[--queue NAME] [--host HOST] [--port PORT]", argv[0]);
    }
    if (prefetch > 65535) die("--prefetch must fit basic.qos (<= 65535)");
    if (ack_every > prefetch) die("--ack-every must not exceed --prefetch (deliveries stop at prefetch unacked)");
    amqp_bytes_t queue = amqp_cstring_bytes(queue_name);

    // 1. Publisher connection; it declares the durable quorum queue.
    amqp_connection_state_t pub = connect_broker(host, (int)port);
    amqp_table_entry_t qtype = {.key = amqp_cstring_bytes("x-queue-type"),
                                .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_table_t qargs = {.num_entries = 1, .entries = &qtype};
    amqp_queue_declare(pub, CHANNEL, queue, 0, 1, 0, 0, qargs);
    check_reply(amqp_get_rpc_reply(pub), "queue.declare");

    // 2. Publish with confirms, at most `window` unconfirmed.
    amqp_confirm_select(pub, CHANNEL);
    check_reply(amqp_get_rpc_reply(pub), "confirm.select");
    char *body_buf = malloc((size_t)size + 1);
    confirms_t conf = {.confirmed = calloc((size_t)messages + 2, 1), .floor = 1};
    if (!body_buf || !conf.confirmed) die("out of memory");
    memset(body_buf, 'x', (size_t)size);
    amqp_bytes_t body = {.len = (size_t)size, .bytes = body_buf};
    char id[32];
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG,
                                     .delivery_mode = 2}; // persistent
    double t0 = now_seconds();
    for (long n = 1; n <= messages; n++) {
        int len = snprintf(id, sizeof id, "m-%ld", n);
        props.message_id = (amqp_bytes_t){.len = (size_t)len, .bytes = id};
        check_status(amqp_basic_publish(pub, CHANNEL, amqp_empty_bytes, queue, 1, 0, &props, body), "basic.publish");
        conf.in_flight++, conf.published++;
        wait_confirms(pub, &conf, (uint64_t)window - 1);
    }
    wait_confirms(pub, &conf, 0);
    double publish_s = now_seconds() - t0;
    if (conf.nacks) die("broker nacked %llu of %ld messages", (unsigned long long)conf.nacks, messages);
    if (conf.returns)
        fprintf(stderr, "amqp-reference-bench: warning: %llu messages returned as unroutable\n",
                (unsigned long long)conf.returns);
    disconnect(pub); // idle during the consume phase anyway; a second connection as the design requires

    // 3. Consume on a second connection, manual acks with multiple=1 every `ack_every`.
    amqp_connection_state_t con = connect_broker(host, (int)port);
    amqp_basic_qos(con, CHANNEL, 0, (uint16_t)prefetch, 0);
    check_reply(amqp_get_rpc_reply(con), "basic.qos");
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(con, CHANNEL, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_reply(amqp_get_rpc_reply(con), "basic.consume");
    amqp_bytes_t tag = amqp_bytes_malloc_dup(ok->consumer_tag); // the reply lives in a pool we release below
    uint8_t *seen = conf.confirmed; // reuse: clear it, then mark each message id as it arrives
    memset(seen, 0, (size_t)messages + 2);
    uint64_t expected = (uint64_t)messages - conf.returns, received = 0, last_tag = 0;
    t0 = now_seconds();
    while (received < expected) {
        amqp_envelope_t env;
        struct timeval tv = {STALL_SECONDS, 0};
        amqp_maybe_release_buffers(con);
        amqp_rpc_reply_t r = amqp_consume_message(con, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
            die("no delivery within %d s (%llu of %llu received)", STALL_SECONDS, (unsigned long long)received,
                (unsigned long long)expected);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            // A non-delivery frame is pending: fatal if it closes or cancels, otherwise skip it.
            amqp_frame_t frame;
            check_status(amqp_simple_wait_frame(con, &frame), "reading a pending frame");
            if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD)
                die("the broker cancelled the consumer (%llu of %llu received)", (unsigned long long)received,
                    (unsigned long long)expected);
            if (frame.frame_type == AMQP_FRAME_METHOD && (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                          frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
                check_reply((amqp_rpc_reply_t){.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                                               .reply = frame.payload.method},
                            "consuming");
            continue;
        }
        check_reply(r, "consuming");
        // Verify: right size, and a message id "m-<n>" within 1...N that we have not seen before.
        const amqp_bytes_t mid = env.message.properties.message_id;
        uint64_t n = 0;
        int id_ok = (env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) && mid.len > 2 && mid.len < 22 &&
                    !memcmp(mid.bytes, "m-", 2);
        for (size_t k = 2; id_ok && k < mid.len; k++) {
            char ch = ((const char *)mid.bytes)[k];
            id_ok = ch >= '0' && ch <= '9';
            n = n * 10 + (uint64_t)(ch - '0');
        }
        if (!id_ok || n < 1 || n > (uint64_t)messages)
            die("delivery %llu has a bad message id", (unsigned long long)env.delivery_tag);
        if (seen[n]) die("message m-%llu delivered twice", (unsigned long long)n);
        if (env.message.body.len != (size_t)size)
            die("message m-%llu has %zu bytes, expected %ld", (unsigned long long)n, env.message.body.len, size);
        seen[n] = 1;
        last_tag = env.delivery_tag;
        received++;
        amqp_destroy_envelope(&env);
        if (received % (uint64_t)ack_every == 0)
            check_status(amqp_basic_ack(con, CHANNEL, last_tag, 1), "basic.ack");
    }
    if (received % (uint64_t)ack_every != 0) check_status(amqp_basic_ack(con, CHANNEL, last_tag, 1), "basic.ack");
    double consume_s = now_seconds() - t0;

    // 4. Clean up: stop the consumer, delete the queue, close everything.
    amqp_basic_cancel(con, CHANNEL, tag);
    check_reply(amqp_get_rpc_reply(con), "basic.cancel");
    amqp_queue_delete(con, CHANNEL, queue, 0, 0);
    check_reply(amqp_get_rpc_reply(con), "queue.delete");
    disconnect(con);
    amqp_bytes_free(tag);
    free(body_buf);
    free(conf.confirmed);

    printf("{\"impl\":\"c\",\"messages\":%ld,\"size\":%ld,\"publish_per_s\":%.0f,\"consume_per_s\":%.0f}\n", messages,
           size, (double)messages / publish_s, (double)received / consume_s);
    return 0;
}
