# Run by tests/roles/test_relays.py.
class State:
    def __init__(self): self.reported, self.handlers = {}, []
    def report(self, values=None, **kw): self.reported.update(values or {})
    def on_desired(self, handler): self.handlers.append(handler)

print("veto", ctl.veto_config({"relays"}, {"relays": {"x": {"pin": 24}}, "interlocks": []}))
print("veto_ok", ctl.veto_config({"relays"}, {"relays": {"x": {"pin": 12}}, "interlocks": []}))
print("untouched", sorted(ctl.read()))
state = State()
ctl.state, ctl.restore_desired = state, True
asyncio.run(ctl.start())
ctl.stop_guard()
state.handlers[0]({"relays": {"a": "HIGH", "c": "LOW"}})
print("restored", sorted(ctl.read().items()), state.reported)
try:
    state.handlers[0]({"relays": {"a": "HIGH", "b": "HIGH"}})
except ValueError as e:
    print("refused", e)
