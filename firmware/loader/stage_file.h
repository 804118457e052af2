// The staged image as the loader sees it: the file IOT_STAGE_PATH in the application's
// littlefs (read-only, straight from XIP), a header and a raw deflate stream (layout.h).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

typedef struct {
    char magic[8];              // IOT_STAGE_MAGIC
    uint32_t format;            // IOT_STAGE_FORMAT
    uint32_t image_size;        // bytes the stream inflates to (<= IOT_APP_SIZE)
    uint32_t stream_size;       // deflate bytes after the header (file size - header)
    uint32_t window;            // deflate window the stream needs (<= IOT_STAGE_WINDOW)
    uint8_t image_sha256[32];   // SHA-256 of the inflated image
    char version[16];
    uint8_t reserved[24];       // zero
    uint8_t header_sha256[32];  // SHA-256 of the 96 bytes above
} iot_stage_hdr_t;

_Static_assert(sizeof(iot_stage_hdr_t) == IOT_STAGE_HDR_SIZE, "stage header size");

#define STAGE_READY 0xffu  // stage_open: a well-formed header over a file of the right length

// Mount the filesystem, open the staged file and check its header (magic, format, sizes,
// header hash, file length). STAGE_READY, IOT_VERDICT_NONE (no file or no filesystem),
// IOT_VERDICT_BAD_HEADER or IOT_VERDICT_TRUNCATED. The header is copied to *h.
unsigned stage_open(iot_stage_hdr_t *h);

// Start inflating from the first byte of the stream again (the file is never changed by the
// loader, so the output is the same every time).
void stage_rewind(void);

// The next n bytes of the inflated image into buf. False if the stream fails or ends early.
bool stage_inflate(uint8_t *buf, uint32_t n);

// True if the stream ends here: no byte after the image_size bytes inflated so far.
bool stage_at_end(void);
