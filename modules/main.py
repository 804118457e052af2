# Frozen boot entry (rp2 runs it after boot.py). A user's own /main.py on the filesystem wins;
# otherwise the variant's role starts once the device is provisioned.
import iot_boot

iot_boot.run()
