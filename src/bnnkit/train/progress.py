"""Progress display and metric files (rank 0 only).

* :class:`Progress`: a ``tqdm`` bar on a terminal (when tqdm is installed), else — piped
  to a file, or without tqdm — one plain line every ``log_every`` steps and at the end of
  the epoch, with live loss / accuracy / flip ratio.
* :class:`MetricsWriter`: ``metrics.csv`` and ``metrics.json`` (one row per epoch, rewritten
  whole each epoch so they always match the run, resumed or not), ``curves.png`` when
  matplotlib is installed, and TensorBoard scalars when asked for and installed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def format_stats(stats: dict[str, float]) -> str:
    """``loss=0.412 acc=85.10% flips=1.2e-03`` (accuracy as a percentage)."""
    parts = []
    for key, value in stats.items():
        if key.endswith("acc"):
            parts.append(f"{key}={100 * value:.2f}%")
        elif key == "flips":
            parts.append(f"{key}={value:.1e}")
        else:
            parts.append(f"{key}={value:.4g}")
    return " ".join(parts)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Per-epoch progress; ``enabled=False`` makes every method a no-op."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, log_every: int = 50,
                 initial: int = 0, stream=None):
        self.total, self.desc, self.enabled, self.log_every = total, desc, enabled, log_every
        self.stream = stream or sys.stderr
        self.count, self.start, self.bar = initial, time.perf_counter(), None
        if enabled and _have("tqdm") and _is_terminal(self.stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream,
                            dynamic_ncols=True, leave=True)

    def update(self, stats: dict[str, float]) -> None:
        self.count += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(format_stats(stats), refresh=False)
        elif self.count % self.log_every == 0:
            self._line(stats)

    def close(self, stats: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(format_stats(stats))
            self.bar.close()
        elif self.count % self.log_every:
            self._line(stats)

    def _line(self, stats: dict[str, float]) -> None:
        rate = self.count / max(1e-9, time.perf_counter() - self.start)
        print(f"{self.desc} {self.count}/{self.total} {format_stats(stats)} "
              f"({rate:.1f} it/s)", file=self.stream, flush=True)


class MetricsWriter:
    """Writes the per-epoch history to ``out_dir``; ``out_dir=None`` writes nothing."""

    def __init__(self, out_dir: str | Path | None, *, plots: bool = True,
                 tensorboard: bool = False, log=print):
        self.out_dir = Path(out_dir) if out_dir else None
        self.plots, self.log, self.tb = plots, log, None
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if plots and not _have("matplotlib"):
            log("note: matplotlib is not installed; skipping curves.png (pip install matplotlib)")
            self.plots = False
        if tensorboard:
            self.tb = self._open_tensorboard()

    def _open_tensorboard(self):
        if not _have("tensorboard"):
            self.log("note: tensorboard is not installed; skipping it (pip install tensorboard)")
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def write(self, history: list[dict[str, Any]]) -> None:
        """Rewrite metrics.csv / metrics.json / curves.png from the whole history."""
        if self.out_dir is None or not history:
            return
        keys = list(dict.fromkeys(k for row in history for k in row))
        with open(self.out_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)
        (self.out_dir / "metrics.json").write_text(json.dumps(history, indent=1) + "\n")
        if self.tb is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, row["epoch"])
        if self.plots:
            plot_curves(history, self.out_dir / "curves.png")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_curves(history: list[dict[str, Any]], path: Path) -> Path:
    """Loss and accuracy per epoch (train and test) as one PNG with two panels."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "test"):
        if f"{split}_loss" in history[0]:
            ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], marker="o", label=split)
            ax_acc.plot(epochs, [100 * r[f"{split}_acc"] for r in history], marker="o", label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
