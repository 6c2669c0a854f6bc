"""Pictures of a run: training curves and spectrograms (matplotlib, headless).

matplotlib is an optional dependency (the `plot` extra); without it these functions raise
PlotError with one line that says how to install it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import WavenetError


class PlotError(WavenetError, RuntimeError):
    """A plot cannot be made (matplotlib missing, no metrics yet)."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plots need matplotlib: pip install 'wavenet[plot]' "
                        "(or pip install matplotlib)") from None
    matplotlib.use("Agg")  # headless: files only, no window
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (a run folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise PlotError(f"no metrics log at {path}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(metrics: Sequence[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """Training and validation bits/sample against step, written to a PNG."""
    if not metrics:
        raise PlotError("the metrics log is empty: train for a few steps first")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [r["step"] for r in metrics]
    ax.plot(steps, [r["train_bits"] for r in metrics], label="train", color="tab:blue", lw=1)
    val = [(r["step"], r["val_bits"]) for r in metrics if "val_bits" in r]
    if val:
        ax.plot(*zip(*val), label="validation", color="tab:orange", marker="o", ms=3, lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("bits per sample")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, plt, out)


def plot_spectrograms(clips: Sequence[tuple[str, np.ndarray]], sample_rate: int,
                      out: str | Path) -> Path:
    """Log-magnitude spectrograms of (title, waveform) clips side by side, to a PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(clips), figsize=(5 * len(clips), 3.6), dpi=110,
                             squeeze=False)
    for ax, (title, audio) in zip(axes[0], clips):
        n_fft = 512 if sample_rate >= 16000 else 256
        ax.specgram(np.asarray(audio, dtype=np.float64) + 1e-9, NFFT=n_fft, Fs=sample_rate,
                    noverlap=n_fft * 3 // 4, cmap="magma", vmin=-120)
        ax.set_title(title)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
    fig.tight_layout()
    return _save(fig, plt, out)


def _save(fig: Any, plt: Any, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
