"""Pictures of a run: training curves and spectrograms (matplotlib, headless).

matplotlib is an optional dependency (the `plot` extra); without it these functions raise
PlotError with one line that says how to install it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PlotError
from ..util.files import atomic_write_bytes

logger = logging.getLogger(__name__)

# The bottom of the spectrograms' colour scale (power in dB).
SPECTROGRAM_FLOOR_DB = -120.0


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotError(
            "plots need matplotlib: pip install 'wavenet[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")  # headless: files only, no window
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (a run folder or the file itself).

    Lines that are not a JSON object with a numeric "step" (a line torn by a crash while
    it was written, or one being written right now) are left out with a warning.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise PlotError(f"no metrics log at {path}")
    records, unreadable = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and _is_number(record.get("step")):
            records.append(record)
        else:
            unreadable += 1
    if unreadable:
        logger.warning("left out %d unreadable line(s) of %s", unreadable, path)
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_curves(metrics: Sequence[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """Training and validation bits/sample against step, written to a PNG (or the format
    `out`'s extension names)."""
    train, val = (
        [(r["step"], r[key]) for r in metrics if _is_number(r.get(key))]
        for key in ("train_bits", "val_bits")
    )
    if not train and not val:
        raise PlotError("the metrics log is empty: train for a few steps first")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train), label="train", color="tab:blue", lw=1)
    if val:
        ax.plot(*zip(*val), label="validation", color="tab:orange", marker="o", ms=3, lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("bits per sample")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, plt, out)


def plot_spectrograms(
    clips: Sequence[tuple[str, np.ndarray]], sample_rate: int, out: str | Path
) -> Path:
    """Log-magnitude spectrograms of (title, waveform) clips side by side, to a PNG.

    A clip of at most one FFT window (256 samples, 512 from 16 kHz) has no spectrogram
    (matplotlib would pad it to one frame, with a warning): its panel says so, and so
    does one logged warning."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(clips), figsize=(5 * len(clips), 3.6), dpi=110, squeeze=False)
    n_fft = 512 if sample_rate >= 16000 else 256
    for ax, (title, audio) in zip(axes[0], clips):
        ax.set_title(title)
        if len(audio) <= n_fft:
            logger.warning(
                "%s: %s has %d samples, too few for a spectrogram (more than %d "
                "needed); its panel says so",
                out,
                title,
                len(audio),
                n_fft,
            )
            ax.text(
                0.5,
                0.5,
                f"{len(audio)} samples:\ntoo few for a spectrogram\n(more than {n_fft} needed)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        # A dither far below the colour scale's floor, so that no bin is exactly zero (a
        # constant offset left a silent clip's bins at 0, and log10 warned); the scale set
        # after drawing, its top at least 1 dB over the floor (matplotlib refuses a top
        # below the floor, as silence's is).
        waveform = np.asarray(audio, dtype=np.float64)
        waveform = waveform + 1e-9 * np.random.default_rng(0).standard_normal(len(waveform))
        spectrum, _, _, image = ax.specgram(
            waveform, NFFT=n_fft, Fs=sample_rate, noverlap=n_fft * 3 // 4, cmap="magma"
        )
        top = 10 * np.log10(spectrum.max())
        image.set_clim(SPECTROGRAM_FLOOR_DB, max(top, SPECTROGRAM_FLOOR_DB + 1))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
    fig.tight_layout()
    return _save(fig, plt, out)


def picture_path(out: str | Path) -> Path:
    """The file a picture asked for as `out` is written to: `out`, or `out`.png when it
    has no extension (what savefig does with such a name)."""
    out = Path(out)
    return out if out.suffix else out.with_name(out.name + ".png")


def _save(fig: Any, plt: Any, out: str | Path) -> Path:
    out = Path(out)
    kinds = fig.canvas.get_supported_filetypes()
    if out.suffix and out.suffix[1:].lower() not in kinds:
        plt.close(fig)
        raise PlotError(
            f"cannot draw a picture as {out.suffix} ({out}); name it .png (or .pdf, .svg)"
        )
    out = picture_path(out)
    try:
        atomic_write_bytes(out, lambda handle: fig.savefig(handle, format=out.suffix[1:].lower()))
    finally:
        plt.close(fig)
    return out
