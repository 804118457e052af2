#!/usr/bin/env python3
"""Print an image's size against its flash budget; exit 1 when it is over.

The Pico W gives the firmware about 1200 KB of its 2 MB (the filesystem has 848 KB).
Our own budget is smaller (900 KB by default) to leave room for OTA staging.
"""
import argparse
import os
import sys

FLASH_REGION_KB = 1200


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
    print("size: %s: %.1f KB of %d KB budget (%.0f%%), flash region %d KB"
          % (args.name, kb, args.budget_kb, 100 * kb / args.budget_kb, FLASH_REGION_KB))
    if kb > args.budget_kb:
        sys.exit("size: error: %s is %.1f KB over its %d KB budget"
                 % (args.name, kb - args.budget_kb, args.budget_kb))


if __name__ == "__main__":
    main()
