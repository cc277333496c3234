"""Where the shipped assets (pages, icons) live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path


def assets_dir() -> Path:
    """The assets folder: ``zephr_desktop/assets`` in a wheel, else the repository's top-level ``assets/``."""
    # The wheel ships the top-level assets/ inside the package; a checkout keeps it beside the package.
    packaged = Path(__file__).resolve().parent / "assets"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "assets"


def asset_text(name: str) -> str:
    """The UTF-8 text of one asset, by its file name inside the assets folder."""
    # Names are our own constants; refusing separators keeps a slip from reading outside the folder.
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"not an asset file name: {name!r}")
    return (assets_dir() / name).read_text(encoding="utf-8")
