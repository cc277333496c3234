"""The desktop app: pywebview windows and the ``Api`` bridge for the page.

Importing this package is cheap; Qt and pywebview load only when ``run()`` is called.
"""

from __future__ import annotations


def run(profile_name: str | None = None, *, demo: bool = False, client_secret: str | None = None) -> int:
    """Open the main window (on ``profile_name``, or against the local sandbox with ``demo``).

    ``client_secret`` is ``ZEPHR_CLIENT_SECRET`` as the CLI took it out of the environment.
    """
    from .app import run as _run

    return _run(profile_name, demo=demo, client_secret=client_secret)


__all__ = ["run"]
