// The RP2040 backend's output register accesses, inline (backend.h includes this on the
// chip): the relay batch write is two of them and little else.
#ifndef IOTLIB_BACKEND_RP2040_GPIO_H
#define IOTLIB_BACKEND_RP2040_GPIO_H

#include <stdint.h>
#include "hardware/structs/sio.h"
#include "hardware/sync.h"

// Current output register (every pin, one read).
static inline uint32_t iotlib_gpio_out_get(void) {
    return sio_hw->gpio_out;
}

// Drive the pins in `mask` to `level` with one register write: they change together.
static inline void iotlib_gpio_out_put_masked(uint32_t mask, uint32_t level) {
    // Read-xor-write of the toggle register: one store changes every pin on the same
    // cycle. Interrupts off so an IRQ handler's own write cannot slip in between.
    uint32_t irq = save_and_disable_interrupts();
    sio_hw->gpio_togl = (sio_hw->gpio_out ^ level) & mask;
    restore_interrupts(irq);
}

#endif
