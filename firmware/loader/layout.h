// Flash layout shared by the loader, the applications linked after it, and (as numbers)
// firmware/pack_image.py and docs/ota.md. Offsets are from the start of flash (XIP 0x10000000).
#pragma once

#define IOT_FLASH_SECTOR        4096u
#define IOT_LOADER_OFFSET       0x000000u   // boot2 (256 B) + loader, at most 16 KB
#define IOT_LOADER_SIZE         0x004000u
#define IOT_JOURNAL_OFFSET      0x004000u   // two alternating journal sectors
#define IOT_JOURNAL_SECTORS     2u
#define IOT_APP_OFFSET          0x006000u   // application vector table (VTOR)
#define IOT_APP_SIZE            0x092000u   // 584 KB
#define IOT_STAGE_HDR_OFFSET    0x098000u   // staged image header sector
#define IOT_STAGE_OFFSET        0x099000u   // staged image bytes, IOT_APP_SIZE long
#define IOT_FS_OFFSET           0x12C000u   // littlefs, 848 KB to the end of the 2 MB flash

// Watchdog scratch registers 0..3 (the SDK and bootrom own 4..7).
#define IOT_SCRATCH_REQUEST     0           // app -> loader, survives a watchdog reboot
#define IOT_SCRATCH_BOOTMODE    1           // loader -> app
#define IOT_SCRATCH_INFO        2           // loader -> app: boots of the trial image
#define IOT_REQ_CONFIRM         0x434f4e46u // "CONF": the running trial image confirms itself
#define IOT_BOOT_NORMAL         0x4e4f524du // "NORM"
#define IOT_BOOT_TRIAL          0x5452494cu // "TRIL": a new image, not yet confirmed
#define IOT_BOOT_SAFE           0x53414645u // "SAFE": the image never confirmed: network, health, OTA only
#define IOT_MAX_TRIAL_BOOTS     3u

// Staged image header (first bytes of the header sector).
#define IOT_STAGE_MAGIC         "IOTIMG1"   // 8 bytes with the NUL
#define IOT_STAGE_CONSUMED_AT   (IOT_FLASH_SECTOR - 4u) // 0xFFFFFFFF: waiting; 0: installed
