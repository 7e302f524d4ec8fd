// The one C header SameDay's RabbitMQ module sees: rabbitmq-c under either header layout, plus static inline
// wrappers for what Swift cannot call directly (the variadic login functions).
#ifndef SAMEDAY_CRABBITMQ_SHIM_H
#define SAMEDAY_CRABBITMQ_SHIM_H

#if __has_include(<rabbitmq-c/amqp.h>)
// rabbitmq-c 0.12 and later
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/framing.h>
#else
// rabbitmq-c 0.11 (Debian 12)
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <amqp_framing.h>
#endif

#include <sys/time.h>

/// `amqp_login_with_properties` with PLAIN credentials, callable from Swift.
static inline amqp_rpc_reply_t CRabbitMQ_login_plain(amqp_connection_state_t state, const char *vhost,
                                                     int channel_max, int frame_max, int heartbeat,
                                                     const amqp_table_t *client_properties,
                                                     const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, client_properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/// `amqp_login_with_properties` with the EXTERNAL mechanism (TLS client certificate), callable from Swift.
static inline amqp_rpc_reply_t CRabbitMQ_login_external(amqp_connection_state_t state, const char *vhost,
                                                        int channel_max, int frame_max, int heartbeat,
                                                        const amqp_table_t *client_properties,
                                                        const char *identity) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, client_properties,
                                      AMQP_SASL_METHOD_EXTERNAL, identity);
}

// Flag macros built from shifts, as constants Swift imports with their C type.
static const amqp_flags_t CRabbitMQ_BASIC_CONTENT_TYPE_FLAG = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_HEADERS_FLAG = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_DELIVERY_MODE_FLAG = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_MESSAGE_ID_FLAG = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_CORRELATION_ID_FLAG = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_TIMESTAMP_FLAG = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t CRabbitMQ_BASIC_TYPE_FLAG = AMQP_BASIC_TYPE_FLAG;

#endif
