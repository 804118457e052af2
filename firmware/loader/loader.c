// Image loader: boot2 + this program own the first 32 KB of flash, the application is linked
// after them (IOT_APP_OFFSET). At every boot the loader
//   1. replays its journal (two alternating flash sectors of 16-byte records),
//   2. takes a confirm request the application left in a watchdog scratch register,
//   3. starts installing a staged image (a compressed file in the application's littlefs,
//      stage_file.c) after inflating it once and checking its SHA-256, or resumes an
//      interrupted copy: inflate again from the start, skip to the first sector not journalled,
//   4. counts boots of a trial image and switches to safe mode after IOT_MAX_TRIAL_BOOTS,
//   5. tells the application the boot mode and what it did with the staged file (scratch
//      registers; the application deletes the file) and jumps into its vector table.
// The loader writes only its journal and the application region, never the filesystem.
// See docs/ota.md, "Full image swap".
#include <string.h>

#include "hardware/flash.h"
#include "hardware/structs/scb.h"
#include "hardware/structs/nvic.h"
#include "hardware/structs/watchdog.h"
#include "hardware/address_mapped.h"
#include "pico.h"
#include "pico/binary_info.h"

#include "layout.h"
#include "sha256.h"
#include "stage_file.h"

#define XIP(off) ((const uint8_t *)(XIP_BASE + (off)))

// ---- journal -----------------------------------------------------------------------------

enum {
    J_HEAD = 0x4a480001, // a = sequence number of this journal sector
    J_COPY = 0x4a430002, // a = image size, b = first word of its SHA-256: the copy starts
    J_SECT = 0x4a530003, // a = application sector index now holding the new bytes
    J_DONE = 0x4a440004, // the copy is complete and verified: the image is on trial
    J_BOOT = 0x4a420005, // a = number of trial boots so far
    J_CONF = 0x4a460006, // the trial image confirmed itself
    J_SAFE = 0x4a4d0007, // the trial image never confirmed: boot it in safe mode
};

typedef struct {
    uint32_t tag, a, b, check;
} jrec_t;

#define JREC_PER_SECTOR (IOT_FLASH_SECTOR / sizeof(jrec_t))
_Static_assert(IOT_APP_SIZE / IOT_FLASH_SECTOR + 3 < JREC_PER_SECTOR, "a whole copy fits one journal sector");

enum { ST_IDLE, ST_COPYING, ST_TRIAL, ST_CONFIRMED, ST_SAFE };

static struct {
    unsigned sector;    // active journal sector (0 or 1), or -1u when none is valid
    uint32_t seq;
    unsigned next_slot; // first erased slot
    int state;
    uint32_t size, sha0; // image being copied / last installed
    uint32_t next_sect;  // first application sector still to copy
    uint32_t boots;
} J;

static uint8_t page[FLASH_PAGE_SIZE];
static uint8_t sect_buf[IOT_FLASH_SECTOR];

static uint32_t rec_check(const jrec_t *r) {
    return (r->tag ^ 0xa5c3e187u) + (r->a * 0x9e3779b1u) + (r->b ^ (r->a << 7));
}

static const jrec_t *jslot(unsigned sector, unsigned slot) {
    return (const jrec_t *)XIP(IOT_JOURNAL_OFFSET + sector * IOT_FLASH_SECTOR) + slot;
}

static bool rec_valid(const jrec_t *r) {
    return r->check == rec_check(r);
}

static bool rec_erased(const jrec_t *r) {
    return (r->tag & r->a & r->b & r->check) == 0xffffffffu;
}

static void journal_load(void) {
    J.sector = -1u;
    J.seq = 0;
    for (unsigned s = 0; s < IOT_JOURNAL_SECTORS; s++) {
        const jrec_t *h = jslot(s, 0);
        if (rec_valid(h) && h->tag == J_HEAD && (J.sector == -1u || h->a > J.seq)) {
            J.sector = s;
            J.seq = h->a;
        }
    }
    J.state = ST_IDLE;
    J.next_slot = 0;
    if (J.sector == -1u) {
        return;
    }
    for (unsigned i = 1; i < JREC_PER_SECTOR; i++) {
        const jrec_t *r = jslot(J.sector, i);
        if (rec_erased(r)) {
            J.next_slot = i;
            return;
        }
        if (!rec_valid(r)) {
            continue; // torn by a power cut: ignored, the next record goes after it
        }
        switch (r->tag) {
            case J_COPY: J.state = ST_COPYING; J.size = r->a; J.sha0 = r->b; J.next_sect = 0; break;
            case J_SECT: if (J.state == ST_COPYING && r->a == J.next_sect) { J.next_sect++; } break;
            case J_DONE: if (J.state == ST_COPYING) { J.state = ST_TRIAL; J.boots = 0; } break;
            case J_BOOT: if (J.state == ST_TRIAL) { J.boots = r->a; } break;
            case J_CONF: if (J.state == ST_TRIAL || J.state == ST_SAFE) { J.state = ST_CONFIRMED; } break;
            case J_SAFE: if (J.state == ST_TRIAL) { J.state = ST_SAFE; } break;
        }
    }
    J.next_slot = JREC_PER_SECTOR; // full
}

static void make_rec(jrec_t *r, uint32_t tag, uint32_t a, uint32_t b) {
    r->tag = tag;
    r->a = a;
    r->b = b;
    r->check = rec_check(r);
}

// Start a fresh journal sector (the other one) holding HEAD and then the given records, then
// erase the old sector. A power cut before the new HEAD is complete leaves the old sector in
// charge; after it, the new sector has the higher sequence number.
static void journal_rotate(const jrec_t *recs, unsigned n) {
    unsigned target = (J.sector == 0) ? 1 : 0;
    uint32_t off = IOT_JOURNAL_OFFSET + target * IOT_FLASH_SECTOR;
    flash_range_erase(off, IOT_FLASH_SECTOR);
    memset(page, 0xff, sizeof page);
    jrec_t *p = (jrec_t *)page;
    make_rec(&p[0], J_HEAD, J.seq + 1, 0);
    memcpy(&p[1], recs, n * sizeof(jrec_t));
    flash_range_program(off, page, sizeof page);
    if (J.sector != -1u) {
        flash_range_erase(IOT_JOURNAL_OFFSET + J.sector * IOT_FLASH_SECTOR, IOT_FLASH_SECTOR);
    }
    J.sector = target;
    J.seq++;
    J.next_slot = 1 + n;
}

static void journal_snapshot(void);

static void journal_append(uint32_t tag, uint32_t a, uint32_t b) {
    if (J.sector == -1u || J.next_slot >= JREC_PER_SECTOR) {
        journal_snapshot();
    }
    unsigned slot = J.next_slot;
    uint32_t page_off = (slot * sizeof(jrec_t)) & ~(FLASH_PAGE_SIZE - 1);
    uint32_t off = IOT_JOURNAL_OFFSET + J.sector * IOT_FLASH_SECTOR + page_off;
    // Programming only clears bits: rewriting the page's existing records with the same
    // values is harmless and the erased slots stay erased.
    memcpy(page, XIP(off), sizeof page);
    make_rec((jrec_t *)(page + (slot * sizeof(jrec_t) - page_off)), tag, a, b);
    flash_range_program(off, page, sizeof page);
    J.next_slot = slot + 1;
}

// The active sector is full (or there is none): carry the state over into a fresh one.
static void journal_snapshot(void) {
    jrec_t r[3];
    unsigned n = 0;
    switch (J.state) {
        case ST_COPYING:
        case ST_TRIAL:
        case ST_CONFIRMED:
        case ST_SAFE:
            make_rec(&r[n++], J_COPY, J.size, J.sha0);
            break;
    }
    if (J.state == ST_TRIAL || J.state == ST_CONFIRMED || J.state == ST_SAFE) {
        make_rec(&r[n++], J_DONE, 0, 0);
        make_rec(&r[n++], J.state == ST_TRIAL ? J_BOOT : (J.state == ST_SAFE ? J_SAFE : J_CONF), J.boots, 0);
    }
    // A copy in progress restarts from sector 0 after a snapshot; it only happens if the
    // journal filled up, which one copy (HEAD + COPY + one SECT per sector + DONE) never does.
    journal_rotate(r, n);
}

// ---- installing ----------------------------------------------------------------------

static uint32_t sha_word0(const uint8_t *sha) {
    uint32_t w;
    memcpy(&w, sha, 4);
    return w;
}

static bool region_matches(uint32_t offset, uint32_t size, const uint8_t *sha) {
    uint8_t d[32];
    iot_sha256_t s;
    iot_sha256_init(&s);
    iot_sha256_update(&s, XIP(offset), size);
    iot_sha256_final(&s, d);
    return memcmp(d, sha, 32) == 0;
}

static uint32_t sectors(uint32_t size) {
    return (size + IOT_FLASH_SECTOR - 1) / IOT_FLASH_SECTOR;
}

// Inflate the whole stream once and hash it, before the application region is touched.
static unsigned verify_stream(const iot_stage_hdr_t *h) {
    iot_sha256_t s;
    iot_sha256_init(&s);
    stage_rewind();
    for (uint32_t off = 0; off < h->image_size; off += IOT_FLASH_SECTOR) {
        uint32_t n = h->image_size - off < IOT_FLASH_SECTOR ? h->image_size - off : IOT_FLASH_SECTOR;
        if (!stage_inflate(sect_buf, n)) {
            return IOT_VERDICT_BAD_STREAM;
        }
        iot_sha256_update(&s, sect_buf, n);
    }
    if (!stage_at_end()) {
        return IOT_VERDICT_BAD_STREAM;
    }
    uint8_t d[32];
    iot_sha256_final(&s, d);
    return memcmp(d, h->image_sha256, 32) == 0 ? STAGE_READY : IOT_VERDICT_BAD_HASH;
}

// Copy from J.next_sect on, one journalled sector at a time. The stream is inflated from its
// start every time (sectors before J.next_sect are inflated and dropped: they are in place
// already), so a resumed copy needs no inflater state in flash. Each sector is erased and
// programmed, read back, and only then journalled: after a power cut it is simply done again.
// False if the stream does not inflate as it did when it was verified.
static bool copy_image(void) {
    uint32_t nsect = sectors(J.size);
    if (J.next_sect >= nsect) {
        return true;
    }
    stage_rewind();
    for (uint32_t i = 0; i < nsect; i++) {
        uint32_t off = i * IOT_FLASH_SECTOR;
        uint32_t n = J.size - off < IOT_FLASH_SECTOR ? J.size - off : IOT_FLASH_SECTOR;
        memset(sect_buf + n, 0xff, IOT_FLASH_SECTOR - n); // the last sector's tail stays erased
        if (!stage_inflate(sect_buf, n)) {
            return false;
        }
        if (i < J.next_sect) {
            continue;
        }
        while (memcmp(XIP(IOT_APP_OFFSET + off), sect_buf, IOT_FLASH_SECTOR) != 0) {
            flash_range_erase(IOT_APP_OFFSET + off, IOT_FLASH_SECTOR);
            flash_range_program(IOT_APP_OFFSET + off, sect_buf, IOT_FLASH_SECTOR);
        } // read back until it holds the new bytes
        journal_append(J_SECT, i, 0);
        J.next_sect = i + 1;
    }
    return true;
}

static void start_copy(uint32_t size, uint32_t sha0) {
    jrec_t r;
    make_rec(&r, J_COPY, size, sha0);
    journal_rotate(&r, 1);
    J.state = ST_COPYING;
    J.size = size;
    J.sha0 = sha0;
    J.next_sect = 0;
}

static void __attribute__((noreturn)) halt(uint32_t code) {
    watchdog_hw->scratch[IOT_SCRATCH_BOOTMODE] = code;
    for (;;) {
        __asm volatile ("wfi");
    }
}

// ---- boot ------------------------------------------------------------------------------

static void __attribute__((noreturn)) start_app(void) {
    const uint32_t *vt = (const uint32_t *)XIP(IOT_APP_OFFSET);
    uint32_t sp = vt[0], pc = vt[1];
    bool ok = (sp & 3) == 0 && sp > SRAM_BASE && sp <= SRAM_END
        && pc >= XIP_BASE + IOT_APP_OFFSET && pc < XIP_BASE + IOT_APP_OFFSET + IOT_APP_SIZE;
    if (!ok) {
        halt(0x4e4f4150u); // "NOAP": nothing to start
    }
    nvic_hw->icer = 0xffffffffu;
    nvic_hw->icpr = 0xffffffffu;
    scb_hw->vtor = XIP_BASE + IOT_APP_OFFSET;
    __asm volatile ("msr msp, %0\n\tbx %1\n" : : "r" (sp), "r" (pc));
    __builtin_unreachable();
}

// What `picotool info` shows for a factory image (the application's own binary info is at
// IOT_APP_OFFSET, where picotool does not look).
bi_decl(bi_program_name("iot_loader"));
bi_decl(bi_program_description("OTA image loader; the application is at 0x1000a000 (docs/ota.md)"));

static iot_stage_hdr_t hdr;

int main(void) {
    // A watchdog the application enabled may still be running after its reset; a copy takes
    // seconds on hardware, so stop it (the application enables its own again).
    hw_clear_bits(&watchdog_hw->ctrl, WATCHDOG_CTRL_ENABLE_BITS);
    uint32_t request = watchdog_hw->scratch[IOT_SCRATCH_REQUEST];
    watchdog_hw->scratch[IOT_SCRATCH_REQUEST] = 0;
    journal_load();

    if (request == IOT_REQ_CONFIRM && (J.state == ST_TRIAL || J.state == ST_SAFE)) {
        journal_append(J_CONF, 0, 0);
        J.state = ST_CONFIRMED;
    }

    unsigned verdict = IOT_VERDICT_NONE;
    if (J.state != ST_COPYING) {
        verdict = stage_open(&hdr);
        if (verdict == STAGE_READY) {
            uint32_t sha0 = sha_word0(hdr.image_sha256);
            if (J.state != ST_IDLE && J.sha0 == sha0 && J.size == hdr.image_size
                && region_matches(IOT_APP_OFFSET, hdr.image_size, hdr.image_sha256)) {
                verdict = IOT_VERDICT_INSTALLED; // the running image; the app has not deleted the file yet
            } else if ((verdict = verify_stream(&hdr)) == STAGE_READY) {
                start_copy(hdr.image_size, sha0);
            }
        }
    } else if (stage_open(&hdr) != STAGE_READY || hdr.image_size != J.size
               || sha_word0(hdr.image_sha256) != J.sha0) {
        halt(0x4e4f5354u); // "NOST": a copy was cut short and its staged file is gone
    }

    for (int attempt = 0; J.state == ST_COPYING; attempt++) {
        if (!copy_image() || !region_matches(IOT_APP_OFFSET, J.size, hdr.image_sha256)) {
            // The region does not hash to the staged image (flash fault): start over once.
            if (attempt == 0) {
                start_copy(J.size, J.sha0);
                continue;
            }
            halt(0x42414443u); // "BADC"
        }
        journal_append(J_DONE, 0, 0);
        J.state = ST_TRIAL;
        J.boots = 0;
        verdict = IOT_VERDICT_INSTALLED;
    }

    uint32_t mode = IOT_BOOT_NORMAL;
    if (J.state == ST_TRIAL) {
        if (J.boots >= IOT_MAX_TRIAL_BOOTS) {
            journal_append(J_SAFE, 0, 0);
            J.state = ST_SAFE;
        } else {
            J.boots++;
            journal_append(J_BOOT, J.boots, 0);
            mode = IOT_BOOT_TRIAL;
        }
    }
    if (J.state == ST_SAFE) {
        mode = IOT_BOOT_SAFE;
    }
    watchdog_hw->scratch[IOT_SCRATCH_BOOTMODE] = mode;
    watchdog_hw->scratch[IOT_SCRATCH_INFO] = (J.boots & 0xffu) | ((verdict == STAGE_READY ? 0 : verdict) << 8);
    start_app();
}
