# Run by tests/roles/test_relays.py (after its setup piece).
ctl.switch({"a": True}, "op")
for pin in (23, 29, 25):
    try:
        ctl.on_config({"relays"}, {"relays": {"x": {"pin": pin}}, "interlocks": []})
        print("accepted", pin)
    except ValueError as e:
        print("vetoed", e)
print("kept", sorted(ctl.read().items()), hex(_iotlib.sim_gpio() & 0x1c0))
ctl.on_config({"relays", "interlocks"}, {"relays": {"fan": {"pin": 10, "safe_state": "HIGH"},
              "lamp": {"pin": 11}}, "interlocks": [["fan", "lamp"]]})
print("new", sorted(ctl.read().items()), hex(_iotlib.sim_gpio() & 0xfc0))
try:
    ctl.on_config({"interlocks"}, {"relays": {}, "interlocks": [["fan", "ghost"]]})
except ValueError as e:
    print("vetoed", e)
ctl.on_config({"rate_limit"}, {"rate_limit": {"per_token_rps": 2, "per_address_rps": 3, "burst": 4}})
print("limits", ctl.limits.by_token.rate, ctl.limits.by_address.rate, ctl.limits.by_token.burst)
