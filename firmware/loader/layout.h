// Flash layout shared by the loader, the applications linked after it, the board (filesystem
// size, boards/PICO_W_IOT/mpconfigboard.cmake) and _iotimage (c_modules/ota/mod_iotimage.c).
// The one place it is written: layout.cmake reads it for CMake, layout.py for Python
// (firmware/pack_image.py at run time; the device's frozen iotlib/ota/layout.py is generated
// from it by firmware/build.sh).
// Offsets are from the start of flash (XIP 0x10000000). docs/ota.md, "Flash layout".
#pragma once

#define IOT_FLASH_SIZE          0x200000u   // 2 MB (Pico W)
#define IOT_FLASH_SECTOR        4096u
#define IOT_LOADER_OFFSET       0x000000u   // boot2 (256 B) + loader (littlefs reader, inflate), at most 32 KB
#define IOT_LOADER_SIZE         0x008000u
#define IOT_JOURNAL_OFFSET      0x008000u   // two alternating journal sectors
#define IOT_JOURNAL_SECTORS     2u
#define IOT_APP_OFFSET          0x00A000u   // application vector table (VTOR)
#define IOT_APP_SIZE            0x0F0000u   // 960 KB: the image budget
#define IOT_FS_OFFSET           0x0FA000u   // littlefs, 1048 KB to the end of flash
#define IOT_FS_SIZE             0x106000u

// The staged image is a file in littlefs (written by the application, read by the loader):
// a header (iot_stage_hdr_t in loader.c, pack_image.py stage_header) and a raw deflate stream.
#define IOT_STAGE_PATH          "ota/image.z"
#define IOT_STAGE_MAGIC         "IOTIMG2"   // 8 bytes with the NUL
#define IOT_STAGE_FORMAT        2u          // 1 was the raw staging area of the first layout
#define IOT_STAGE_HDR_SIZE      128u
#define IOT_STAGE_WINDOW        32768u      // deflate window (wbits 15)

// Watchdog scratch registers 0..3 (the SDK and bootrom own 4..7).
#define IOT_SCRATCH_REQUEST     0           // app -> loader, survives a watchdog reboot
#define IOT_SCRATCH_BOOTMODE    1           // loader -> app
#define IOT_SCRATCH_INFO        2           // loader -> app: trial boots (bits 0-7), stage verdict (bits 8-15)
#define IOT_REQ_CONFIRM         0x434f4e46u // "CONF": the running trial image confirms itself
#define IOT_BOOT_NORMAL         0x4e4f524du // "NORM"
#define IOT_BOOT_TRIAL          0x5452494cu // "TRIL": a new image, not yet confirmed
#define IOT_BOOT_SAFE           0x53414645u // "SAFE": the image never confirmed: network, health, OTA only
#define IOT_MAX_TRIAL_BOOTS     3u

// What the loader did with the staged file at this boot (IOT_SCRATCH_INFO bits 8-15). Every
// verdict but NONE means: the application deletes the file (the loader never writes littlefs).
#define IOT_VERDICT_NONE        0u  // no staged file
#define IOT_VERDICT_INSTALLED   1u  // installed now, or earlier (the running image is the staged one)
#define IOT_VERDICT_BAD_HEADER  2u  // not a format-2 header, header hash wrong, or too large
#define IOT_VERDICT_TRUNCATED   3u  // the file is shorter or longer than its header says
#define IOT_VERDICT_BAD_STREAM  4u  // the deflate stream does not inflate to the image size
#define IOT_VERDICT_BAD_HASH    5u  // inflated, but not to the header's SHA-256
