"""The MicroPython the tests run on a device, as files: device_scripts/ beside each test module,
tests/harness/device_scripts/ for pieces several share; and how a script gets its arguments."""
import json
import os
import pathlib

from harness.run import ROOT


def device_script(test_file, name):
    """The MicroPython source device_scripts/<name> beside the test module `test_file`."""
    return (pathlib.Path(test_file).parent / "device_scripts" / name).read_text()


def script_env(env=None, **args):
    """The environment (os.environ or `env`, plus DEVICE_SCRIPT_ARGS) a device script reads its
    arguments from: `ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))`, never %-formatting."""
    return dict(os.environ if env is None else env, DEVICE_SCRIPT_ARGS=json.dumps(args))


def shared_script(name):
    """A MicroPython piece several tests' device scripts start with (tests/harness/device_scripts)."""
    return (ROOT / "tests" / "harness" / "device_scripts" / name).read_text()


def with_args(code, **args):
    """A device script run over a REPL (rp2040py, the Pico W, QEMU: no environment to carry
    DEVICE_SCRIPT_ARGS) gets its arguments as one ARGS line in front (str, int, bool, lists)."""
    return "ARGS = %r\n" % (args,) + code
