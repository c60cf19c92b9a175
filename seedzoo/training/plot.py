"""`seedzoo plot RUN_DIR`: loss, learning rate and kNN curves of each student of a run, from its metrics.jsonl."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..files import write_atomic
from . import metrics
from .metrics import METRICS_FILE


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a `seedzoo train` run folder?")
    return metrics.read_metrics(run_dir)  # a line a kill cut short is skipped


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the run's curves into a PNG (default RUN_DIR/metrics.png); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    names = list(dict.fromkeys(name for r in records for name in r.get("students") or {}))
    series = {name: metrics.student_records(records, name) for name in names}
    has_knn = any(k.startswith("knn") for rows in series.values() for r in rows for k in r)
    panels = 3 if has_knn else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.5), constrained_layout=True)
    for name, rows in series.items():  # one curve per student
        steps = [r for r in rows if "loss" in r]
        axes[0].plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=1, label=name)
        axes[1].plot([r["step"] for r in steps], [r["lr"] for r in steps], lw=1, label=name)
        knn = [(r["epoch"], v) for r in rows for k, v in r.items() if k.startswith("knn")]
        if knn:
            axes[2].plot(*zip(*knn), marker="o", label=name)
    axes[0].set(xlabel="step", ylabel="loss", title="training loss")
    axes[1].set(xlabel="step", ylabel="learning rate", title="learning rate")
    if has_knn:
        axes[2].set(xlabel="epoch", ylabel="top-1 (%)", title="kNN monitor")
    axes[0].legend(fontsize=7)
    return write_png(fig, Path(out) if out else Path(run_dir) / "metrics.png")


def write_png(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure to `path` as a PNG (through `files.write_atomic`) and close it."""
    import matplotlib.pyplot as plt

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    return write_atomic(path, png.getbuffer())
