"""The learning curve of a warm generator or translator: training and tune loss per check."""
from __future__ import annotations

from .figure import pyplot, save


def plot_learning_curve(curve: list[dict], path, title: str) -> None:
    """Training loss (mean since the previous check) and tune loss per check; the kept check marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if curve:
        steps = [c["step"] for c in curve]
        ax.plot(steps, [c["train_loss"] for c in curve], "-o", ms=3, color="C0", label="training loss (label-smoothed)")
        ax.plot(steps, [c["tune_loss"] for c in curve], "-s", ms=3, color="C1", label="tune loss (per piece)")
        best = min(curve, key=lambda c: c["tune_loss"])
        ax.axvline(best["step"], color="grey", lw=1, ls=":", label=f"kept: step {best['step']}")
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no tune checks (check_every: 0, no tune split, or not a warm model)", ha="center",
                va="center", transform=ax.transAxes, fontsize=9)
        ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
