#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total;
    uint8_t buf[64];
    uint32_t used;
} iot_sha256_t;

void iot_sha256_init(iot_sha256_t *s);
void iot_sha256_update(iot_sha256_t *s, const void *data, size_t len);
void iot_sha256_final(iot_sha256_t *s, uint8_t out[32]);
