# What a manager built the seed's way (no collaborator passed) falls back on, built here and
# nowhere else. The Device passes every collaborator itself, so the boot path never imports
# this module; a manager imports it inside the branch that needs it.


def http_client(auth):
    """One HttpClient of its own (the Device shares one between all managers)."""
    from iotlib.http_client import HttpClient
    return HttpClient(auth=auth)


def hal():
    """The hardware this image runs on (iot_boot chooses it once and hands it over)."""
    from iotlib.hal import load
    return load()


def storage():
    from iotlib.storage import Storage
    return Storage()


def core_validator():
    """The configuration's core sections only (the Device adds its role's)."""
    from iotlib.config_schema import validator
    return validator()


def bundle_store():
    """The OTA bundles in "ota" (the boot path opens the same store and calls its boot())."""
    from iotlib.ota.bundle import BundleStore
    return BundleStore("ota")


def firmware_version():
    """This image's own version, as the build recorded it."""
    from iotlib.buildinfo import build_info
    return build_info()["version"]
