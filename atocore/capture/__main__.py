"""``python -m atocore.capture hook SOURCE``: the hook without the click CLI in front of it.

Same behaviour as ``atocore hook SOURCE`` (which stays the documented, binding form), minus
~15 ms of CPU for importing and running click. ``atocore install claude-code`` writes this form
into settings files, because the hook runs before every prompt.
"""

import sys

from .hook import run


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "hook":
        sys.stderr.write("usage: python -m atocore.capture hook SOURCE  (event JSON on stdin)\n")
        return 2
    return run(argv[1])


sys.exit(main(sys.argv[1:]))
