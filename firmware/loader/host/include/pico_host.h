// The host build of the loader (firmware/loader/host/, docs/ota.md "Tests and measurements"):
// what loader.c and stage_file.c take from the pico-sdk, for gcc on the build machine.
// The 2 MB flash is a shared mapping at the RP2040's own XIP address 0x10000000, so the
// loader's XIP() pointers, the littlefs reads and start_app()'s vector table check run
// unchanged; flash_range_erase/program are modelled on rp2040py's QSPI flash (emu.py).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XIP_BASE   0x10000000ul
#define SRAM_BASE  0x20000000u
#define SRAM_END   0x20042000u

#define FLASH_PAGE_SIZE   256u
#define FLASH_SECTOR_SIZE 4096u

void flash_range_erase(uint32_t flash_offs, size_t count);
void flash_range_program(uint32_t flash_offs, const uint8_t *data, size_t count);

typedef struct { uint32_t ctrl, load, reason, scratch[8], tick; } host_watchdog_hw_t;
typedef struct { uint32_t iser, icer, ispr, icpr; } host_nvic_hw_t;
typedef struct { uint32_t cpuid, icsr, vtor, aircr; } host_scb_hw_t;
extern host_watchdog_hw_t host_watchdog;
extern host_nvic_hw_t host_nvic;
extern host_scb_hw_t host_scb;
#define watchdog_hw (&host_watchdog)
#define nvic_hw (&host_nvic)
#define scb_hw (&host_scb)
#define WATCHDOG_CTRL_ENABLE_BITS 0x40000000u

static inline void hw_clear_bits(uint32_t *addr, uint32_t mask) { *addr &= ~mask; }

// pico/binary_info.h: nothing to record on the host.
#define bi_decl(x) extern int host_bi_decl_unused
#define bi_program_name(x) 0
#define bi_program_description(x) 0
