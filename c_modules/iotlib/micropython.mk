# Make-based ports (unix simulation, qemu): the C module over the simulated hardware backend.
IOTLIB_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += \
	$(IOTLIB_MOD_DIR)/mod_iotlib.c \
	$(IOTLIB_MOD_DIR)/relay.c \
	$(IOTLIB_MOD_DIR)/adc.c \
	$(IOTLIB_MOD_DIR)/jsonlog.c \
	$(IOTLIB_MOD_DIR)/logring.c \
	$(IOTLIB_MOD_DIR)/sim.c \
	$(IOTLIB_MOD_DIR)/backend_sim.c

# IOTLIB_BACKEND_SIM tells the shared sources they run over the simulated HAL.
CFLAGS_USERMOD += -I$(IOTLIB_MOD_DIR) -DIOTLIB_BACKEND_SIM=1 \
	-DIOTLIB_VERSION='"$(shell cat $(IOTLIB_MOD_DIR)/../../firmware/VERSION)"'
