# Run by tests/roles/test_relays_rp2.py (after its setup piece).
ctl.setup_relays()
print("boot", pins(), "oe", (machine.mem32[SIO_GPIO_OE] >> 2) & 3)
ctl.switch({"relay1": True}, "emu")
print("relay1", pins(), ctl.read())
try:
    ctl.switch({"relay2": True}, "emu")
except ValueError as e:
    print("refused", e)
print("after", pins())
ctl.switch({"relay1": False, "relay2": True}, "emu")
print("swapped", pins())
try:
    ctl.on_config({"relays"}, {"relays": {"x": {"pin": 24}}, "interlocks": []})
except ValueError as e:
    print("vetoed", e)
print("kept", sorted(ctl.read()))
