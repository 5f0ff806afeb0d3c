"""Drawing a figure: matplotlib loaded on first use (a second to import), written whole or not at all."""
from __future__ import annotations

from .io import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported when a figure is drawn, not by the modules importing this."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path) -> None:
    """``fig`` as a PNG at ``path`` (atomically)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
