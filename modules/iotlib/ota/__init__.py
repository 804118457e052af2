# The OTA wing (docs/ota.md): policy (what to install, when), fetch (the one resumable
# download), bundle (BundleStore: application bundles in two slots), image (the staged full
# image and the loader's boot state), manager (OTAUpdateManager, composing them), routes (the
# device API's /ota/*); layout is generated from firmware/loader/layout.h at build time.
# Nothing is imported here: each user imports the module it needs.
