// rabbitmq-c's field-table codec: exported by librabbitmq but declared only in its private header. The fuzz
// target `fieldtable` decodes fuzzed bytes with it, as the library does for message headers.
#ifndef SAMEDAY_CAMQPFUZZ_TABLE_CODEC_H
#define SAMEDAY_CAMQPFUZZ_TABLE_CODEC_H

#include "shim.h"

int amqp_decode_table(amqp_bytes_t encoded, amqp_pool_t *pool, amqp_table_t *output, size_t *offset);
int amqp_encode_table(amqp_bytes_t encoded, amqp_table_t *input, size_t *offset);

#endif
