// Host harness for the image loader: loader.c, stage_file.c and sha256.c, unchanged, with
// MicroPython's lib/littlefs and lib/uzlib, compiled with gcc for the build machine
// (host_build.py) against the shim in include/ (pico_host.h), and this file, which provides
// the flash, the power cuts and the runs. docs/ota.md, "Tests and measurements".
//
// The model is firmware/loader/emu.py's (rp2040py's QSPI flash):
//  * 2 MB of NOR flash, mapped at the RP2040's XIP address 0x10000000 (the loader reads it
//    through its own XIP pointers, littlefs through XIP as on the chip);
//  * flash_range_erase = one 4 KB sector erase (0x20) per sector: the sector becomes 0xFF;
//    flash_range_program = one page program (0x02) per 256-byte page: each byte ANDed in
//    (programming only clears bits), as rp2040py applies it;
//  * a power cut after operation n: operations 1..n reach the flash, the run stops there and
//    nothing after it happens. A torn cut programs the first half of that page (emu.py's
//    Device(torn=True)); a torn erase erases the first half of the sector (emu.replay's).
//  * the jump into the application = "the loader would boot this": the run stops, reporting
//    the boot mode and info the loader left in the watchdog scratch registers; halt() = the
//    loader stops with its code in scratch 1.
// Every power-on is a fork()ed child (the loader's statics start as on a fresh chip, watchdog
// scratch registers zero, as after a power cut); the flash is shared with the parent.
//
//   loader_host boot IN OUT [--cut N] [--torn] [--ops FILE]
//       one power-on from flash image IN; OUT = the flash after it; FILE = "opcode address"
//       of every operation that reached the flash. Prints: status mode info ops halt_code.
//   loader_host sweep START OLD NEW [--stride S] [--workers W --worker I] [--double-every D]
//                     [--no-torn]
//       record the uncut swap from START, then cut it after operation k, plain and torn, and
//       power on again until it boots; every boot must be a whole image (OLD or NEW, NEW once
//       the copy's journal record is in), the filesystem and the loader untouched; at every
//       D-th point the resumed copy is cut a second time. k: every operation with S = 1 (the
//       default), else every S-th plus every journal write and the first and last 20; of those,
//       worker I of W takes every W-th (W processes share the points).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pico_host.h"
#include "layout.h"

#define OP_ERASE   0x20
#define OP_PROGRAM 0x02
#define MAX_OPS    16384

enum { ST_NONE, ST_JUMPED, ST_HALTED, ST_CUT, ST_RETURNED };
static const char *status_name[] = { "none", "jumped", "halted", "cut", "returned" };

typedef struct { uint8_t op; uint32_t addr; uint8_t data[FLASH_PAGE_SIZE]; } op_t;

// Shared between the parent and the power-on child.
typedef struct {
    uint32_t cut_after; // 0: no cut
    int torn, record;
    uint32_t nops;
    int status;
    uint32_t mode, info, halt_code, vtor, sp, pc;
    op_t ops[MAX_OPS];
} shared_t;

static uint8_t *const flash = (uint8_t *)XIP_BASE;
static shared_t *sh;

host_watchdog_hw_t host_watchdog;
host_nvic_hw_t host_nvic;
host_scb_hw_t host_scb;

int iot_loader_main(void); // loader.c's main (-Dmain=iot_loader_main)

static void die(const char *msg) {
    fprintf(stderr, "loader_host: %s\n", msg);
    exit(2);
}

// One erase or page program reaches the flash (or, at the cut, half of it), counted.
static void apply(uint8_t *f, const op_t *o, bool half) {
    if (o->op == OP_ERASE) {
        memset(f + (o->addr & ~(FLASH_SECTOR_SIZE - 1)), 0xff, half ? FLASH_SECTOR_SIZE / 2 : FLASH_SECTOR_SIZE);
    } else {
        uint32_t n = half ? FLASH_PAGE_SIZE / 2 : FLASH_PAGE_SIZE;
        for (uint32_t i = 0; i < n && o->addr + i < IOT_FLASH_SIZE; i++) {
            f[o->addr + i] &= o->data[i];
        }
    }
}

static void flash_op(uint8_t op, uint32_t addr, const uint8_t *data) {
    op_t o = { .op = op, .addr = addr };
    if (data) {
        memcpy(o.data, data, FLASH_PAGE_SIZE);
    }
    uint32_t k = ++sh->nops;
    if (sh->record) {
        if (k > MAX_OPS) {
            die("too many flash operations");
        }
        sh->ops[k - 1] = o;
    }
    bool cut = sh->cut_after && k == sh->cut_after;
    apply(flash, &o, cut && sh->torn);
    if (cut) { // the power goes: nothing after this operation happens
        sh->status = ST_CUT;
        _exit(0);
    }
}

// hardware/flash.h, as the bootrom does it: 4 KB sector erases (a 64 KB aligned range would be
// block erases, which the loader never asks for and emu.py does not count), 256-byte pages.
void flash_range_erase(uint32_t off, size_t count) {
    if (off % FLASH_SECTOR_SIZE || count % FLASH_SECTOR_SIZE || off + count > IOT_FLASH_SIZE) {
        die("flash_range_erase: bad range");
    }
    if (off % 65536 == 0 && count >= 65536) {
        die("flash_range_erase: a 64 KB block erase is not modelled");
    }
    for (uint32_t a = off; a < off + count; a += FLASH_SECTOR_SIZE) {
        flash_op(OP_ERASE, a, NULL);
    }
}

void flash_range_program(uint32_t off, const uint8_t *data, size_t count) {
    if (off % FLASH_PAGE_SIZE || count % FLASH_PAGE_SIZE || off + count > IOT_FLASH_SIZE) {
        die("flash_range_program: bad range");
    }
    for (uint32_t i = 0; i < count; i += FLASH_PAGE_SIZE) {
        flash_op(OP_PROGRAM, off + i, data + i);
    }
}

// loader.c's two inline assembly statements, rewritten by host_build.py into calls: halt()'s
// "wfi" loop and start_app()'s "msr msp; bx" (the jump into the application).
__attribute__((noreturn, force_align_arg_pointer)) void host_wfi(void) {
    sh->status = ST_HALTED;
    sh->halt_code = host_watchdog.scratch[IOT_SCRATCH_BOOTMODE];
    _exit(0);
}

__attribute__((noreturn, force_align_arg_pointer)) void host_jump(void) {
    const uint32_t *vt = (const uint32_t *)(XIP_BASE + IOT_APP_OFFSET);
    sh->status = ST_JUMPED;
    sh->mode = host_watchdog.scratch[IOT_SCRATCH_BOOTMODE];
    sh->info = host_watchdog.scratch[IOT_SCRATCH_INFO];
    sh->vtor = host_scb.vtor;
    sh->sp = vt[0];
    sh->pc = vt[1];
    _exit(0);
}

// One power-on from the flash as it is: a fresh chip (child process) runs the loader.
static int power_on(uint32_t cut_after, int torn, int record) {
    sh->cut_after = cut_after;
    sh->torn = torn;
    sh->record = record;
    sh->nops = 0;
    sh->status = ST_NONE;
    sh->mode = sh->info = sh->halt_code = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        die("fork failed");
    }
    if (pid == 0) {
        iot_loader_main();
        sh->status = ST_RETURNED;
        _exit(0);
    }
    int ws;
    if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        die("the loader crashed (signal or exit status)");
    }
    return sh->status;
}

static void setup(void) {
    void *p = mmap(flash, IOT_FLASH_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != flash) {
        die("cannot map the flash at 0x10000000");
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        die("mmap failed");
    }
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "loader_host: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n ? n : 1);
    if (fread(b, 1, n, f) != (size_t)n) {
        die("short read");
    }
    fclose(f);
    *len = n;
    return b;
}

static void load_flash(const char *path) {
    size_t n;
    uint8_t *b = read_file(path, &n);
    if (n != IOT_FLASH_SIZE) {
        die("a flash image is 2 MB");
    }
    memcpy(flash, b, n);
    free(b);
}

static int cmd_boot(int argc, char **argv) {
    uint32_t cut = 0;
    int torn = 0;
    const char *ops_path = NULL;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--cut") && i + 1 < argc) {
            cut = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--torn")) {
            torn = 1;
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            ops_path = argv[++i];
        } else {
            die("boot IN OUT [--cut N] [--torn] [--ops FILE]");
        }
    }
    load_flash(argv[2]);
    int st = power_on(cut, torn, 1);
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(flash, 1, IOT_FLASH_SIZE, f) != IOT_FLASH_SIZE || fclose(f)) {
        die("cannot write the flash image");
    }
    if (ops_path) {
        FILE *o = fopen(ops_path, "w");
        for (uint32_t i = 0; i < sh->nops; i++) {
            fprintf(o, "%u %u\n", sh->ops[i].op, sh->ops[i].addr);
        }
        fclose(o);
    }
    printf("%s 0x%08x 0x%08x %u 0x%08x\n", status_name[st], sh->mode, sh->info, sh->nops, sh->halt_code);
    return 0;
}

// ---- sweep -----------------------------------------------------------------------------

static uint8_t *start, *old_img, *new_img;
static size_t old_len, new_len;
static unsigned fails;

#define FAIL(...) do { if (fails++ < 20) { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

static uint32_t padded(size_t len) {
    return (len + IOT_FLASH_SECTOR - 1) / IOT_FLASH_SECTOR * IOT_FLASH_SECTOR;
}

// The application region holds `img` whole (the last sector's tail erased, as written).
static bool region_is(const uint8_t *img, size_t len) {
    const uint8_t *r = flash + IOT_APP_OFFSET;
    if (memcmp(r, img, len) != 0) {
        return false;
    }
    for (uint32_t i = len; i < padded(len); i++) {
        if (r[i] != 0xff) {
            return false;
        }
    }
    return true;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmd_sweep(int argc, char **argv) {
    unsigned stride = 1, workers = 1, worker = 0, double_every = 50;
    int with_torn = 1;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--stride") && i + 1 < argc) {
            stride = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            workers = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--worker") && i + 1 < argc) {
            worker = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--double-every") && i + 1 < argc) {
            double_every = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--no-torn")) {
            with_torn = 0;
        } else {
            die("sweep START OLD NEW [--stride S] [--workers W --worker I] [--double-every D] [--no-torn]");
        }
    }
    double t0 = now();
    size_t n;
    start = read_file(argv[2], &n);
    if (n != IOT_FLASH_SIZE) {
        die("a flash image is 2 MB");
    }
    old_img = read_file(argv[3], &old_len);
    new_img = read_file(argv[4], &new_len);

    // The uncut swap, recorded.
    memcpy(flash, start, IOT_FLASH_SIZE);
    if (power_on(0, 0, 1) != ST_JUMPED || !region_is(new_img, new_len)) {
        die("the uncut swap does not boot the new image");
    }
    uint32_t nops = sh->nops, base_mode = sh->mode, base_info = sh->info;
    op_t *ops = malloc(nops * sizeof *ops);
    memcpy(ops, sh->ops, nops * sizeof *ops);
    // The commit point: the first journal write that is a program (HEAD + COPY): from then on
    // every boot must be the new image.
    uint32_t commit = 0;
    for (uint32_t i = 0; i < nops && !commit; i++) {
        if (ops[i].op == OP_PROGRAM && ops[i].addr >= IOT_JOURNAL_OFFSET && ops[i].addr < IOT_APP_OFFSET) {
            commit = i + 1;
        }
    }

    // later_erases[i]: erases of the application region among operations i+1..n (1-based): a
    // copy resumed after a cut at operation k erases at most later_erases[k-1] + 1 sectors (the
    // rest of the copy and the sector it was in): it resumes, it does not start over.
    uint32_t *later_erases = calloc(nops + 1, sizeof *later_erases);
    for (uint32_t i = nops; i-- > 0;) {
        later_erases[i] = later_erases[i + 1] + (ops[i].op == OP_ERASE && ops[i].addr >= IOT_APP_OFFSET);
    }
    uint8_t *before = malloc(IOT_FLASH_SIZE); // the flash after operations 1..k-1
    memcpy(before, start, IOT_FLASH_SIZE);
    unsigned points = 0, torn_points = 0, power_ons = 0, boots_new = 0, boots_old = 0, doubles = 0;
    unsigned replay_checks = 0, second_boot_ops = 0;
    unsigned selected = 0;
    for (uint32_t k = 1; k <= nops; k++) {
        bool journal = ops[k - 1].addr >= IOT_JOURNAL_OFFSET && ops[k - 1].addr < IOT_APP_OFFSET;
        bool pick = stride <= 1 || (k - 1) % stride == 0 || journal || k <= 20 || k + 20 > nops;
        unsigned index = selected; // k's place among the points of all workers
        if (pick && selected++ % workers == worker) {
            for (int torn = 0; torn <= with_torn; torn++) {
                // The flash after the cut: the recording replayed (checked against a real cut
                // by the operation counter at every 16th point and the last operation).
                memcpy(flash, before, IOT_FLASH_SIZE);
                apply(flash, &ops[k - 1], torn);
                if (points % 16 == 0 || k == nops) {
                    static uint8_t replayed[IOT_FLASH_SIZE];
                    memcpy(replayed, flash, IOT_FLASH_SIZE);
                    memcpy(flash, start, IOT_FLASH_SIZE);
                    if (power_on(k, torn, 0) != ST_CUT || memcmp(flash, replayed, IOT_FLASH_SIZE) != 0) {
                        FAIL("k=%u torn=%d: a real cut differs from the replayed one", k, torn);
                    }
                    replay_checks++;
                }
                points++;
                torn_points += torn;
                // Power on again until it boots; every double_every-th point cut again during
                // its resumed copy, after a deterministic number of operations.
                uint32_t second = 0;
                if (double_every && index % double_every == 0) {
                    uint32_t left = nops > k ? nops - k : 1;
                    second = 1 + (uint32_t)((k * 2654435761u) % left);
                }
                int tries = 0, st;
                do {
                    st = power_on(second, (k / double_every) & 1, 1);
                    power_ons++;
                    if (tries == 0 && st == ST_JUMPED) {
                        // It resumed the copy the journal describes: no more sectors than were
                        // left, and (once the copy's record is in) no new journal sector, which
                        // only a copy started over would write.
                        uint32_t erases = 0, journal_erases = 0;
                        for (uint32_t i = 0; i < sh->nops; i++) {
                            erases += sh->ops[i].op == OP_ERASE && sh->ops[i].addr >= IOT_APP_OFFSET;
                            journal_erases += sh->ops[i].op == OP_ERASE && sh->ops[i].addr < IOT_APP_OFFSET;
                        }
                        if (erases > later_erases[k - 1] + 1 || (k >= commit && journal_erases)) {
                            FAIL("k=%u torn=%d: the copy started over: %u sectors erased (%u were left), "
                                 "%u journal sectors", k, torn, erases, later_erases[k - 1] + 1, journal_erases);
                        }
                    }
                    if (st == ST_CUT) {
                        doubles++;
                        second_boot_ops += second;
                        second = 0;
                    }
                } while (st == ST_CUT && ++tries < 3);
                if (st != ST_JUMPED) {
                    FAIL("k=%u torn=%d: %s (halt 0x%08x)", k, torn, status_name[st], sh->halt_code);
                    continue;
                }
                bool is_new = region_is(new_img, new_len), is_old = !is_new && region_is(old_img, old_len);
                boots_new += is_new;
                boots_old += is_old;
                if (!is_new && !is_old) {
                    FAIL("k=%u torn=%d: booted a region that is neither image", k, torn);
                } else if (!is_new && k >= commit) {
                    FAIL("k=%u torn=%d: the old image after the commit point", k, torn);
                }
                if (sh->mode != IOT_BOOT_TRIAL || (sh->info >> 8) != IOT_VERDICT_INSTALLED
                    || (sh->info & 0xff) < 1 || (sh->info & 0xff) > 2 || sh->vtor != XIP_BASE + IOT_APP_OFFSET) {
                    FAIL("k=%u torn=%d: mode 0x%08x info 0x%08x vtor 0x%08x", k, torn, sh->mode, sh->info, sh->vtor);
                }
                if (memcmp(flash, start, IOT_JOURNAL_OFFSET) != 0
                    || memcmp(flash + IOT_FS_OFFSET, start + IOT_FS_OFFSET, IOT_FS_SIZE) != 0) {
                    FAIL("k=%u torn=%d: the loader region or the filesystem was written", k, torn);
                }
                // The journal holds what happened: one power-on more boots the same image as
                // the next trial boot (its count one higher) and writes nothing but the journal.
                uint32_t boots = sh->info & 0xff;
                st = power_on(0, 0, 1);
                power_ons++;
                bool journal_only = true;
                for (uint32_t i = 0; i < sh->nops; i++) {
                    journal_only &= sh->ops[i].addr >= IOT_JOURNAL_OFFSET && sh->ops[i].addr < IOT_APP_OFFSET;
                }
                if (st != ST_JUMPED || sh->mode != IOT_BOOT_TRIAL || (sh->info & 0xff) != boots + 1
                    || !journal_only || !region_is(new_img, new_len)) {
                    FAIL("k=%u torn=%d: the next power-on: %s mode 0x%08x info 0x%08x (trial boot %u before), "
                         "%u flash operations%s", k, torn, status_name[st], sh->mode, sh->info, boots, sh->nops,
                         journal_only ? "" : " outside the journal");
                }
            }
        }
        apply(before, &ops[k - 1], false);
    }
    printf("ops %u commit %u points %u torn %u power_ons %u boots_new %u boots_old %u doubles %u "
           "second_cut_ops %u replay_checks %u uncut_mode 0x%08x uncut_info 0x%08x failures %u wall %.2f\n",
           nops, commit, points, torn_points, power_ons, boots_new, boots_old, doubles, second_boot_ops,
           replay_checks, base_mode, base_info, fails, now() - t0);
    return fails ? 1 : 0;
}

int main(int argc, char **argv) {
    setup();
    if (argc >= 4 && !strcmp(argv[1], "boot")) {
        return cmd_boot(argc, argv);
    }
    if (argc >= 5 && !strcmp(argv[1], "sweep")) {
        return cmd_sweep(argc, argv);
    }
    die("usage: loader_host boot IN OUT [--cut N] [--torn] [--ops FILE] | sweep START OLD NEW [...]");
    return 2;
}
