# How the device checks the fleet server's certificate, from device.json:
#   fleet_ca_file                   CA (PEM or DER) the server's certificate must chain to
#   fleet_client_cert_file/_key_file the device's own certificate and key, for mTLS
#   fleet_tls_insecure_skip_verify  true: https without checking who answers (test benches only)
# An https discovery URL with neither a CA nor the insecure option is refused: the fleet link
# does not start (the reason shows in /health and the log) rather than trust any server.
import binascii

KEYS = ("fleet_ca_file", "fleet_client_cert_file", "fleet_client_key_file",
        "fleet_tls_insecure_skip_verify")


def read_der(path):
    """A PEM or DER file's first object as DER: mbedtls takes DER on every build."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"-----BEGIN"):
        return data
    body = []
    for line in data.split(b"\n"):
        line = line.strip()
        if line.startswith(b"-----END"):
            break
        if line and not line.startswith(b"-----"):
            body.append(line)
    return binascii.a2b_base64(b"".join(body))


def fleet_tls_options(settings):
    """(HttpClient keyword arguments, None), or (arguments, why the fleet link must not start)."""
    insecure = bool(settings.get("fleet_tls_insecure_skip_verify"))
    opts = {"tls_insecure": insecure}
    try:
        if settings.get("fleet_ca_file"):
            opts["cadata"] = read_der(settings["fleet_ca_file"])
        if settings.get("fleet_client_cert_file"):
            opts["client_cert"] = read_der(settings["fleet_client_cert_file"])
            opts["client_key"] = read_der(settings.get("fleet_client_key_file")
                                          or settings["fleet_client_cert_file"])
    except (OSError, ValueError) as e:
        return opts, "cannot read a fleet TLS file: %s" % e
    url = settings.get("service_discovery_url") or ""
    if url.startswith("https://") and "cadata" not in opts and not insecure:
        return opts, ("https fleet server but no fleet_ca_file to verify it "
                      "(fleet_tls_insecure_skip_verify would skip the check)")
    return opts, None


def fleet_tls_mode(settings, refused):
    """One line on how the fleet server is authenticated (the `fleet_tls` health detail)."""
    if refused:
        return "refused: " + refused
    if not (settings.get("service_discovery_url") or "").startswith("https://"):
        return "plain http: server not authenticated"
    verified = "server verified" if settings.get("fleet_ca_file") else \
        "server certificate NOT verified (fleet_tls_insecure_skip_verify)"
    return verified + (", client certificate" if settings.get("fleet_client_cert_file") else "")
