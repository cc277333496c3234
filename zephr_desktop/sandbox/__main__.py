"""``python -m zephr_desktop.sandbox``: run the sandbox in the foreground."""

from .cli import main

raise SystemExit(main())
