#!/usr/bin/env python3
"""Print an image's size against its flash budget; exit 1 when it is over.

The budget is the loader's application region (firmware/loader/layout.h IOT_APP_SIZE,
passed by the superbuild), or 900 KB for a plain image without the loader. The gate also
reports the headroom left, which the project keeps at 64 KB or more.
"""
import argparse
import os
import sys

def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image", help="firmware .bin (what is written to flash)")
    parser.add_argument("--name", default="firmware")
    parser.add_argument("--budget-kb", type=int, default=900)
    args = parser.parse_args()
    try:
        size = os.path.getsize(args.image)
    except OSError as err:
        sys.exit("size: error: cannot read %s: %s" % (args.image, err.strerror))
    kb = size / 1024
    print("size: %s: %.1f KB of %d KB budget (%.0f%%), %.1f KB headroom"
          % (args.name, kb, args.budget_kb, 100 * kb / args.budget_kb, args.budget_kb - kb))
    if kb > args.budget_kb:
        sys.exit("size: error: %s is %.1f KB over its %d KB budget"
                 % (args.name, kb - args.budget_kb, args.budget_kb))


if __name__ == "__main__":
    main()
