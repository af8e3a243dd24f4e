"""Writing charts: PNG or SVG bytes for the API, files for the CLI."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from kizuna.errors import InvalidInput, Problem

__all__ = ["figure_bytes", "save_figure"]

_FORMATS = ("png", "svg")


def _format(name: str) -> str:
    fmt = name.lower().lstrip(".")
    if fmt not in _FORMATS:
        message = f"charts are written as PNG or SVG, not {name!r}"
        raise InvalidInput(Problem("unsupported_format", message, "format"))
    return fmt


def figure_bytes(figure: Figure, fmt: str = "png", *, dpi: int = 144) -> bytes:
    """The figure encoded as PNG or SVG; raises ``InvalidInput`` for other formats."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=_format(fmt), dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Figure, path: Path | str, *, dpi: int = 144) -> Path:
    """Write the figure to ``path`` as PNG or SVG, chosen by its suffix; returns the path."""
    target = Path(path)
    target.write_bytes(figure_bytes(figure, target.suffix or "png", dpi=dpi))
    return target
