# Run by tests/roles/test_relays.py (after its setup piece).
def at(hms, label):
    h, m, s = hms
    print(label, ctl.check_schedules(DAY + h * 3600 + m * 60 + s), sorted(ctl.read().items()))
at((5, 0, 0), "first")                  # outside every window: nothing to do
at((6, 0, 0), "on")
at((6, 10, 0), "steady")
ctl.switch({"a": False}, "op")          # an operator overrides between two edges
at((6, 20, 0), "override")
at((6, 30, 15), "swap")                 # a's off and b's on at the same second: one write
at((7, 0, 0), "off")
at((23, 0, 0), "night")
at((0, 59, 59), "past_midnight")
at((1, 0, 0), "morning")
print("audit", [(e, f.get("source")) for e, f in trail.events if f.get("source") == "schedule"])
