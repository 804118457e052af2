"""The OTA public key this image trusts (P-256, raw uncompressed point).

DEVELOPMENT KEY ONLY: its private half is in the repository
(tools/iot-sign/dev-key/private.pem), so anyone can sign for images built with it.
Production images replace this file at build time; see docs/ota.md.
"""
from binascii import unhexlify

PUBLIC_KEY = unhexlify(
    '040f4f9ef9ff1683d443027ed3cb1ad2ef4d4895c5bf0704dbc40816521ed7331a664ce4cfc0f5a8e871072a47bfa3d7fcd189282e22525f7e3696c05013fa2cf7'
)
