# What every rp2 image of this board freezes: the shared content plus the port's own boot
# modules (_boot.py mounts the littlefs filesystem; rp2.py is the rp2 module's Python half).
# The variant manifests add their role.
freeze("$(PORT_DIR)/modules")
include("../../manifest.py")
