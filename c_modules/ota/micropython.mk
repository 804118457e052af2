# Make-based ports (unix simulation, qemu): _iotota, OTA signature verification.
# Mbed TLS include paths and MBEDTLS_CONFIG_FILE come from extmod.mk when the port
# builds with MICROPY_SSL_MBEDTLS=1; without it (qemu) the module is a stub.
OTA_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(OTA_MOD_DIR)/mod_ota_verify.c
