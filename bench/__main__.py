"""``python -m bench``: see bench/run.py.

The benchmark uses the test suite's helpers (the package ``support`` and the GUI harness,
``gui.harness``), which import with ``tests`` on the path, as pytest's ``pythonpath`` setting
puts it there for the tests. Started without it, this puts ``tests`` on PYTHONPATH and starts
again, so the benchmark and every child it spawns find them the same way.
"""

import os
import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1] / "tests")
_path = os.environ.get("PYTHONPATH", "")
if TESTS not in _path.split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, _path]))
    os.execv(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]])  # noqa: S606 (this interpreter, again)

from bench.run import main  # noqa: E402

sys.exit(main())
