// Read the staged image out of littlefs and inflate it (see stage_file.h). littlefs (lfs2)
// and uzlib are MicroPython's own lib/littlefs and lib/uzlib, compiled read-only and without
// malloc (CMakeLists.txt); every buffer is static and the filesystem is read through XIP.
#include <stddef.h>
#include <string.h>

#include "hardware/address_mapped.h"
#include "lfs2.h"
#include "uzlib.h"

#include "sha256.h"
#include "stage_file.h"

// The configuration MicroPython mounts the filesystem with (ports/rp2/modules/_boot.py:
// VfsLfs2(bdev, progsize=256); extmod/vfs_lfsx.c: read 32, cache 4 * 256, lookahead 32).
#define FS_READ_SIZE   32
#define FS_PROG_SIZE   256
#define FS_CACHE_SIZE  1024
#define FS_LOOKAHEAD   32

static uint8_t read_buf[FS_CACHE_SIZE], prog_buf[FS_CACHE_SIZE], file_buf[FS_CACHE_SIZE];
static uint32_t lookahead_buf[FS_LOOKAHEAD / 4];
static uint8_t src_buf[FS_CACHE_SIZE];
static uint8_t window[IOT_STAGE_WINDOW];

static int fs_read(const struct lfs2_config *c, lfs2_block_t block, lfs2_off_t off, void *buf, lfs2_size_t size) {
    memcpy(buf, (const uint8_t *)XIP_BASE + IOT_FS_OFFSET + block * IOT_FLASH_SECTOR + off, size);
    return 0;
}

static const struct lfs2_config fs_cfg = {
    .read = fs_read,
    .read_size = FS_READ_SIZE,
    .prog_size = FS_PROG_SIZE,
    .block_size = IOT_FLASH_SECTOR,
    .block_count = IOT_FS_SIZE / IOT_FLASH_SECTOR,
    .block_cycles = 100,
    .cache_size = FS_CACHE_SIZE,
    .lookahead_size = FS_LOOKAHEAD,
    .read_buffer = read_buf,
    .prog_buffer = prog_buf,
    .lookahead_buffer = lookahead_buf,
};

static lfs2_t fs;
static lfs2_file_t file;
static const struct lfs2_file_config file_cfg = { .buffer = file_buf };
static bool opened;
static uzlib_uncomp_t inflater;

unsigned stage_open(iot_stage_hdr_t *h) {
    if (!opened) {
        if (lfs2_mount(&fs, &fs_cfg) != 0) {
            return IOT_VERDICT_NONE; // no filesystem yet (a new device): nothing staged
        }
        if (lfs2_file_opencfg(&fs, &file, IOT_STAGE_PATH, LFS2_O_RDONLY, &file_cfg) != 0) {
            return IOT_VERDICT_NONE;
        }
        opened = true;
    }
    lfs2_soff_t size = lfs2_file_size(&fs, &file);
    if (lfs2_file_seek(&fs, &file, 0, LFS2_SEEK_SET) != 0
        || lfs2_file_read(&fs, &file, h, sizeof *h) != (lfs2_ssize_t)sizeof *h) {
        return size >= 0 && size < (lfs2_soff_t)sizeof *h ? IOT_VERDICT_TRUNCATED : IOT_VERDICT_BAD_HEADER;
    }
    uint8_t d[32];
    iot_sha256_t s;
    iot_sha256_init(&s);
    iot_sha256_update(&s, h, offsetof(iot_stage_hdr_t, header_sha256));
    iot_sha256_final(&s, d);
    if (memcmp(h->magic, IOT_STAGE_MAGIC, 8) != 0 || h->format != IOT_STAGE_FORMAT
        || memcmp(d, h->header_sha256, 32) != 0 || h->image_size == 0 || h->image_size > IOT_APP_SIZE
        || h->window == 0 || h->window > IOT_STAGE_WINDOW) {
        return IOT_VERDICT_BAD_HEADER;
    }
    if ((uint32_t)size != sizeof *h + h->stream_size) {
        return IOT_VERDICT_TRUNCATED; // a download cut short (or a file grown past its header)
    }
    return STAGE_READY;
}

// uzlib asks for a byte when its input buffer is empty: refill the buffer from the file.
static int next_source_byte(void *unused) {
    lfs2_ssize_t n = lfs2_file_read(&fs, &file, src_buf, sizeof src_buf);
    if (n <= 0) {
        return -1;
    }
    inflater.source = src_buf + 1;
    inflater.source_limit = src_buf + n;
    return src_buf[0];
}

void stage_rewind(void) {
    lfs2_file_seek(&fs, &file, IOT_STAGE_HDR_SIZE, LFS2_SEEK_SET);
    memset(window, 0, sizeof window); // a stream reaching before its start reads zeros, every pass
    uzlib_uncompress_init(&inflater, window, sizeof window);
    inflater.source = inflater.source_limit = NULL;
    inflater.source_read_cb = next_source_byte;
}

bool stage_inflate(uint8_t *buf, uint32_t n) {
    inflater.dest_start = inflater.dest = buf;
    inflater.dest_limit = buf + n;
    int res = uzlib_uncompress(&inflater);
    // UZLIB_DONE with a full buffer: the last block ended exactly at the image's end.
    return inflater.dest == inflater.dest_limit && !inflater.eof && (res == UZLIB_OK || res == UZLIB_DONE);
}

bool stage_at_end(void) {
    // One symbol more: the end-of-block marker of the final block, or a byte too many (which
    // lands in `extra`: uzlib writes at most one byte per symbol).
    uint8_t extra[4];
    inflater.dest_start = inflater.dest = extra;
    inflater.dest_limit = extra + 1;
    int res = uzlib_uncompress(&inflater);
    return res == UZLIB_DONE && inflater.dest == extra && inflater.bfinal;
}
