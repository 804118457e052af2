"""Build the loader for the host (gcc, no pico-sdk): firmware/loader/host/loader_host.c.

loader.c, stage_file.c and sha256.c are compiled unchanged, with MicroPython's lib/littlefs
and lib/uzlib from the same tree the target loader is built from, against the shim headers in
include/ (pico_host.h). loader.c has two inline assembly statements written for the Cortex-M0+
(halt()'s `wfi`, start_app()'s `msr msp; bx`): loader.c is compiled to assembly and exactly
those two statements (the only `#APP` blocks) are replaced by calls to host_wfi() and
host_jump() (loader_host.c) before it is assembled, so not one line of loader.c changes.

    python3 firmware/loader/host/host_build.py OUT_DIR     # -> OUT_DIR/loader_host
"""
import os
import pathlib
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
LOADER = HERE.parent
ROOT = LOADER.parent.parent

FLAGS = ["-O2", "-std=gnu11", "-g", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Wno-unused-parameter",
         "-I", str(HERE / "include"), "-I", str(LOADER),
         # as firmware/loader/CMakeLists.txt compiles littlefs for the loader
         "-DLFS2_READONLY", "-DLFS2_NO_MALLOC", "-DLFS2_NO_DEBUG", "-DLFS2_NO_WARN", "-DLFS2_NO_ERROR",
         "-DLFS2_NO_ASSERT"]


def micropy_dir() -> pathlib.Path:
    """The MicroPython tree the target loader was configured with (its lib/littlefs and
    lib/uzlib): $MICROPY_DIR, else the loader build's CMake cache, else fetch_deps.sh."""
    if os.environ.get("MICROPY_DIR"):
        return pathlib.Path(os.environ["MICROPY_DIR"])
    build = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
    for cache in (build / "rp2" / "loader" / "CMakeCache.txt", build / "loader-tests" / "CMakeCache.txt"):
        if cache.exists():
            m = re.search(r"^MICROPY_DIR:PATH=(.*)$", cache.read_text(), re.M)
            if m and pathlib.Path(m.group(1), "lib", "littlefs", "lfs2.c").exists():
                return pathlib.Path(m.group(1))
    out = subprocess.run([str(ROOT / "firmware" / "fetch_deps.sh")], capture_output=True, text=True,
                         check=True).stdout
    deps = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return pathlib.Path(deps["MICROPY_DIR"].strip("'\""))


def patch_asm(text: str) -> str:
    """Replace loader.c's two Cortex-M0+ asm statements (gcc's #APP ... #NO_APP blocks) by calls
    into the harness; anything else in an asm block is an error."""
    counts = {"wfi": 0, "jump": 0}

    def repl(m):
        lines = []
        for line in m.group(1).splitlines():
            insn = line.strip()
            if not insn or insn.startswith("#") or insn.startswith(".loc") or re.fullmatch(r"\.L\w+:", insn):
                lines.append(line)  # gcc's line markers and debug labels stay as they are
            elif insn == "wfi":
                counts["wfi"] += 1
                lines.append("\tcall\thost_wfi")
            elif re.fullmatch(r"msr msp, %\w+", insn):
                counts["jump"] += 1
                lines.append("\tcall\thost_jump")
            elif re.fullmatch(r"bx %\w+", insn) and counts["jump"]:
                pass  # the branch of the jump: host_jump() does not return
            else:
                raise SystemExit("host_build: unexpected inline assembly in loader.c: %r" % line)
        return "".join(l + "\n" for l in lines)

    out = re.sub(r"^#APP\n(.*?)^#NO_APP$", repl, text, flags=re.M | re.S)
    if not counts["wfi"] or not counts["jump"]:
        raise SystemExit("host_build: loader.c's wfi / msr msp statements not found: %r" % counts)
    return out


def build(out_dir, cc: str = "gcc", extra_flags=()) -> pathlib.Path:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mp = micropy_dir()
    flags = FLAGS + ["-I", str(mp / "lib" / "littlefs"), "-I", str(mp / "lib" / "uzlib")] + list(extra_flags)

    def run(args):
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("%s\n%s%s" % (" ".join(args), proc.stdout, proc.stderr))
        return proc

    asm = out / "loader.s"
    run([cc] + flags + ["-Werror", "-Dmain=iot_loader_main", "-S", str(LOADER / "loader.c"), "-o", str(asm)])
    asm.write_text(patch_asm(asm.read_text()))
    objs = [out / "loader.o"]
    run([cc, "-c", str(asm), "-o", str(objs[0])])
    quiet = ["-Wno-unused-function", "-Wno-sign-compare", "-Wno-implicit-fallthrough"]
    own = ["-Werror"]  # as the target build: the loader's own sources compile without a warning
    for src, more in ((LOADER / "stage_file.c", own), (LOADER / "sha256.c", own), (HERE / "loader_host.c", own),
                      (mp / "lib" / "littlefs" / "lfs2.c", quiet), (mp / "lib" / "littlefs" / "lfs2_util.c", quiet),
                      (mp / "lib" / "uzlib" / "tinflate.c", quiet)):
        obj = out / (src.stem + ".o")
        run([cc] + flags + more + ["-c", str(src), "-o", str(obj)])
        objs.append(obj)
    exe = out / "loader_host"
    # --gc-sections, as the target link: uzlib's checksum variant (unused) needs no crc32/adler32
    run([cc, "-Wl,--gc-sections", "-o", str(exe)] + [str(o) for o in objs])
    return exe


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "build/loader-host"))
