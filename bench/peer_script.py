"""What the peer scripts (``bench/<name>_peer.py``) share: their command line and their OUT.json.

Standard library only, and nothing from the project: a peer runs as a script in its own venv,
with only its library installed (``bench/.venv-<name>/bin/python bench/<name>_peer.py ARGS… OUT``,
see ``common.measure_peer``). Python puts the script's folder, bench/, first on ``sys.path``, so
the peer imports this file as the top-level module ``peer_script``.
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable


def write_result(out_path: str, result: dict) -> None:
    """``result`` and this process's peak RSS so far, as JSON in ``out_path``."""
    result = {**result, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    with open(out_path, "w") as fh:
        json.dump(result, fh)


def run(main: Callable[[str, str, str], None], usage: str) -> None:
    """``main(REFERENCE, DATA, OUT)`` from the command line; exit with ``usage`` otherwise."""
    if len(sys.argv) != 4:
        sys.exit(usage)
    main(*sys.argv[1:])
