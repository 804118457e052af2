"""Waiting for a device or a server to get somewhere, with what it last said on failure."""
import time

import httpx


def wait_for(what, fn, timeout=10, every=0.2):
    """fn() until it returns something truthy; its value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except (httpx.HTTPError, AssertionError, KeyError, TypeError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


def wait_until(what, fn, timeout=20):
    """fn() until it returns something truthy; its value. Unlike wait_for, an exception from
    fn fails at once (for checks whose every step must succeed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("%s: not within %ss" % (what, timeout))
