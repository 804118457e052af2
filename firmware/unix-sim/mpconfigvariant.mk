# Unix simulation variant: same frozen manifest and C module as the device images.
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
MICROPY_PY_BTREE = 0
MICROPY_SSL_MBEDTLS = 1
