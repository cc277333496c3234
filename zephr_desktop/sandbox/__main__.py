"""``python -m zephr_desktop.sandbox``: run the sandbox in the foreground."""

from .server import main

raise SystemExit(main())
