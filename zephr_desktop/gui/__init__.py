"""The desktop app: pywebview windows and the ``Api`` bridge for the page.

Importing this package is cheap; Qt and pywebview load only when ``run()`` is called.
"""

from __future__ import annotations


def run(profile_name: str | None = None, *, demo: bool = False) -> int:
    """Open the main window (on ``profile_name``, or against the local sandbox with ``demo``)."""
    from .app import run as _run

    return _run(profile_name, demo=demo)


__all__ = ["run"]
