#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Write the oldest supported dependency versions (every ``>=`` in setup.cfg's
install_requires and the test extra turned into ``==``) for tox's oldestdeps env.

Works offline against the package index pip already uses (no PyPI JSON API).
"""

import configparser
import re
import sys
from pathlib import Path


def main(out, extras=("test",)):
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].strip().splitlines()
    pins = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        pins.append(re.sub(r">=", "==", line, count=1))
    Path(out).write_text("\n".join(pins) + "\n")
    print("\n".join(pins))


if __name__ == "__main__":
    main(sys.argv[1])
