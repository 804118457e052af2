// Pico W IoT board. The variant (RELAYS or SENSORS) names the board, see mpconfigvariant_*.cmake.
#ifndef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico W IoT"
#endif

// Flash layout (2 MB): MICROPY_HW_FLASH_STORAGE_BYTES (the littlefs at the end of flash) comes
// from firmware/loader/layout.h through mpconfigboard.cmake, so the filesystem starts exactly
// where the loader's application region ends (docs/ota.md, "Flash layout").
#ifndef MICROPY_HW_FLASH_STORAGE_BYTES
#error "MICROPY_HW_FLASH_STORAGE_BYTES comes from firmware/loader/layout.h (mpconfigboard.cmake)"
#endif

#if IOTLIB_WIRELESS
#define MICROPY_PY_NETWORK 1
#define MICROPY_PY_NETWORK_HOSTNAME_DEFAULT     "PicoW-IoT"

// CYW43 driver configuration, as on the stock Pico W.
#define CYW43_USE_SPI (1)
#define CYW43_LWIP (1)
#define CYW43_GPIO (1)
#define CYW43_SPI_PIO (1)

#define MICROPY_HW_PIN_EXT_COUNT    CYW43_WL_GPIO_COUNT

// If this returns true for a pin then its irq will not be disabled on a soft reboot
int mp_hal_is_pin_reserved(int n);
#define MICROPY_HW_PIN_RESERVED(i) mp_hal_is_pin_reserved(i)
#endif
