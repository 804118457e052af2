// A tiny application linked after the loader, standing in for the MicroPython image in the
// power-cut tests. It reads the boot mode the loader left in scratch register 1 and
//   * on a trial boot: confirms itself (scratch 0 = CONF, watchdog reboot) when APP_CONFIRMS,
//     or "crashes" (watchdog reboot without confirming) when not;
//   * otherwise settles: scratch 3 = 0xA9900000 | (mode letter << 8) | APP_VERSION, then sleeps.
#include "hardware/structs/watchdog.h"
#include "hardware/watchdog.h"
#include "layout.h"

extern const unsigned char iot_filler[];

int main(void) {
    uint32_t mode = watchdog_hw->scratch[IOT_SCRATCH_BOOTMODE];
    watchdog_hw->scratch[3] = 0;
    if (mode == IOT_BOOT_TRIAL) {
        if (APP_CONFIRMS) {
            watchdog_hw->scratch[IOT_SCRATCH_REQUEST] = IOT_REQ_CONFIRM;
        }
        watchdog_reboot(0, 0, 0);
        for (;;) {
        }
    }
    uint32_t letter = mode == IOT_BOOT_SAFE ? 'S' : (mode == IOT_BOOT_NORMAL ? 'N' : '?');
    watchdog_hw->scratch[3] = 0xA9900000u | (letter << 8) | APP_VERSION | (iot_filler[1000] == FILL_BYTE ? 0 : 0x80);
    for (;;) {
        __asm volatile ("wfi");
    }
}
