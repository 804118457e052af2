# A role controller built from settings alone (the seed's way) becomes a whole device: the
# same wiring iot_boot gives a device.json, so there is one wiring, not two.
#
#   controller = RelaysController(wifi_ssid=..., wifi_password=..., device_id=...,
#                                 device_key=..., service_discovery_url=..., relay_pins={...})
#   await controller.main()      # -> as_device(controller).main()
#
# The settings are checked as device.json is (iotlib.device_settings), except that api_key
# may be left out (registration then fetches it from the fleet) and tenant/namespace default
# to AuthManager's ("default"). boot_early() runs here, after the role's module was imported,
# so an installed OTA bundle does not replace the controller's own code on this path.
# Imported only by such a controller: the boot path never loads it.
from iotlib.buildinfo import build_info
from iotlib.device import Device, boot_early


def as_device(controller):
    """The Device around `controller`, built from controller.settings; ValueError names each
    bad setting ("RelaysController: field: what; ...")."""
    from iotlib.device_settings import problems_once
    settings = controller.settings
    role = controller.describe()["role"]
    settings["role"] = role
    wrong = problems_once(settings, role, None, ("api_key",))
    if wrong:
        raise ValueError("%s: %s" % (type(controller).__name__, "; ".join(wrong)))
    controller.settings = None  # from here on the Device wires it

    def rebuild(**kwargs):  # the Device's controller: this one, given its managers
        controller.__init__(**kwargs)
        return controller

    from iotlib import hal
    early = boot_early(settings, hal.load())  # the hardware, chosen once as iot_boot does
    controller_class = rebuild
    if early[3].boot_mode() == "safe":  # the image never confirmed: no role code at all
        from iotlib.safe_mode import SafeModeController
        controller_class = SafeModeController
    controller.device = Device(settings, controller_class, early, build_info()["version"])
    return controller.device
