# iotlib: the managers every device role is built from. Importing the package has no
# side effects (no Wi-Fi, flash or network); each manager is imported from its own module.
__version__ = "0.1.0"
