# Liveness and readiness from checks that managers register. A check is a function
# returning True/False or (ok, detail); an exception counts as a failure with its message.


class Health:
    def __init__(self):
        self._checks = {}  # name -> (fn, required, live)

    def add_check(self, name, fn, required=True, live=False):
        """required: readiness fails while it fails; live: also part of liveness."""
        self._checks[name] = (fn, required, live)

    def remove_check(self, name):
        self._checks.pop(name, None)

    def _run(self, fn):
        try:
            result = fn()
        except Exception as e:  # a broken check must not break the health endpoint
            return False, "error: %s" % e
        if isinstance(result, tuple):
            return bool(result[0]), str(result[1])
        return bool(result), "ok" if result else "failing"

    def _report(self, include):
        ok = True
        checks = {}
        for name, (fn, required, live) in self._checks.items():
            if not include(required, live):
                continue
            passed, detail = self._run(fn)
            checks[name] = {"ok": passed, "required": required, "detail": detail}
            if required and not passed:
                ok = False
        return ok, checks

    def livez(self):
        """(ok, checks): the process is worth keeping alive (watchdog-level checks only)."""
        return self._report(lambda required, live: live)

    def readyz(self):
        """(ok, checks): every required check passes; optional ones are reported only."""
        return self._report(lambda required, live: True)
