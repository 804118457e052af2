# The rp2 images: everything every image freezes, plus the port's own boot modules
# (_boot.py mounts the littlefs filesystem; rp2.py is the rp2 module's Python half).
freeze("$(PORT_DIR)/modules")
include("../../manifest.py")
