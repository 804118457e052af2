// Pico W IoT board. The variant (RELAYS or SENSORS) names the board, see mpconfigvariant_*.cmake.
#ifndef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico W IoT"
#endif

// Flash layout (2 MB): firmware up to 1200 KB at the start, then the filesystem.
// The size gate in firmware/check_size.py enforces the firmware's share.
#define MICROPY_HW_FLASH_STORAGE_BYTES          (848 * 1024)

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
