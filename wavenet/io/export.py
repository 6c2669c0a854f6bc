"""The shareable model format: a folder with `config.json` + `model.safetensors` + `README.md`.

The layout of a Hugging Face Hub model repository, so the folder can be uploaded as it is
(this package needs no network and does not depend on huggingface_hub):

    DIR/config.json        format name and version, package version, the full resolved
                           config (model, data, mel, train), the weights' dtype and sha256,
                           step, held-out bits, speakers, the training data summary and
                           the source checkpoint (path and sha256)
    DIR/model.safetensors  the weights (the EMA average where the run kept one), float32
                           or bf16; safetensors holds only tensors, so loading runs no code
    DIR/README.md          a model card for people: what the model is and how it was made

`write_export` writes one from a checkpoint payload; `read_export` reads one back as a
payload of the checkpoint layout (wavenet.io.checkpoint), so `load_model`, `generate`, `eval`,
`info` and `train --init-from` take either. Every way a folder can be broken (a missing or
malformed config.json, weights that are cut short, tampered with or of the wrong shapes) is
one line: an ExportError for what is the export's own, a CheckpointError for what is
checked as in any checkpoint (its config, the weights' shapes).
"""

from __future__ import annotations

import hashlib
import json
from operator import methodcaller
from pathlib import Path
from typing import Any

import torch

from ..config import Config, config_from_dict
from ..errors import ExportError
from ..util.files import atomic_write_bytes, file_sha256

EXPORT_FORMAT = "wavenet-export"
EXPORT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}


def is_export_dir(path: str | Path) -> bool:
    """True when `path` is a folder holding an export's config.json and weights."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def _safetensors() -> Any:
    try:
        import safetensors.torch as st
    except ImportError as error:
        raise ExportError(
            f"exported models need the safetensors package ({error}): pip install safetensors"
        ) from None
    return st


def write_export(
    out: str | Path,
    payload: dict[str, Any],
    *,
    source: Path,
    dtype: str = "float32",
    force: bool = False,
) -> dict[str, int]:
    """Write the model of a checkpoint payload as an export folder -> bytes per file.

    The EMA weights are exported where the payload has them. Refuses a non-empty `out`
    without `force`, an unknown dtype and NaN or infinite weights.
    """
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty: pass --force to replace the export in it")
    config = config_from_dict(payload["config"])
    use_ema = payload.get("ema") is not None
    state = payload["ema"] if use_ema else payload["model"]
    bad = [
        name
        for name, value in state.items()
        if value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if bad:
        raise ExportError(
            f"{source} holds NaN or infinite weights (the first {bad[0]}): nothing to export"
        )
    tensors = {
        name: value.detach()
        .to("cpu", DTYPES[dtype] if value.is_floating_point() else value.dtype)
        .contiguous()
        .clone()
        for name, value in state.items()
    }
    weights = _safetensors().save(
        tensors, metadata={"format": EXPORT_FORMAT, "format_version": str(EXPORT_VERSION)}
    )
    from ..version import __version__

    extra = payload.get("extra", {})
    description = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "package_version": __version__,
        "model_type": "wavenet",
        "config": config.to_dict(),
        "weights": {
            "file": WEIGHTS_FILE,
            "dtype": dtype,
            "ema": use_ema,
            "sha256": hashlib.sha256(weights).hexdigest(),
        },
        "step": int(payload["step"]),
        "best_val_bits": payload.get("best_val_bits"),
        "speakers": extra.get("speakers"),
        "training_data": extra.get("data"),
        "init_from": extra.get("init_from"),
        "source": {
            "path": str(source),
            "sha256": file_sha256(source) if source.is_file() else None,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    config_bytes = (json.dumps(description, indent=2) + "\n").encode()
    card = model_card(description, config).encode()
    for name, blob in (
        (WEIGHTS_FILE, weights),
        (CARD_FILE, card),
        (CONFIG_FILE, config_bytes),
    ):  # config.json last: then it is complete
        atomic_write_bytes(out / name, methodcaller("write", blob))  # handle.write(blob)
    return {CONFIG_FILE: len(config_bytes), WEIGHTS_FILE: len(weights), CARD_FILE: len(card)}


def model_card(description: dict[str, Any], config: Config) -> str:
    """The README.md of an export: what the model is, from its description."""
    m, data = config.model, config.data
    rate = data.sample_rate
    output = (
        "16-bit audio, a mixture of logistics"
        if m.output == "mol"
        else f"{m.quantization_channels}-level mu-law codes"
    )
    if m.local_channels is not None:
        conditioning = (
            f"a {m.local_channels}-band log-mel spectrogram ({config.mel.format} format; a vocoder)"
        )
    elif m.global_classes is not None:
        names = description.get("speakers") or []
        conditioning = f"{m.global_classes} speakers" + (f" ({', '.join(names)})" if names else "")
    else:
        conditioning = "none (unconditional)"
    bits = description.get("best_val_bits")
    trained = description.get("training_data") or {}
    if trained:
        data_line = (
            f"{trained.get('train_files', '?')} file(s), "
            f"{trained.get('train_seconds', 0) / 3600:.2f} hours"
        )
    else:
        data_line = "not recorded by the run"
    return "\n".join(
        [
            "---",
            "library_name: wavenet",
            "tags: [audio, wavenet]",
            "---",
            "",
            "# WaveNet model",
            "",
            "Exported by the `wavenet` package "
            f"(package {description['package_version']}, export format {EXPORT_VERSION}).",
            "",
            "| | |",
            "|---|---|",
            f"| receptive field | {m.receptive_field} samples "
            f"({1000 * m.receptive_field / rate:.1f} ms) |",
            f"| sample rate | {rate} Hz |",
            f"| output | {output} |",
            f"| conditioning | {conditioning} |",
            f"| layers | {m.layers_per_stack} x {m.stacks}, kernel {m.kernel_size}, "
            f"residual {m.residual_channels}, skip {m.skip_channels} |",
            f"| training data | {data_line} |",
            f"| steps | {description['step']} |",
            f"| held-out bits/sample | {'not measured' if bits is None else f'{bits:.4f}'} |",
            f"| weights | {description['weights']['dtype']}"
            f"{', EMA average' if description['weights']['ema'] else ''} |",
            "",
            "```bash",
            "wavenet generate THIS_FOLDER --out clip.wav --seconds 4",
            "wavenet train --init-from THIS_FOLDER --data MY_AUDIO --out runs/tuned",
            "```",
            "",
        ]
    )


def read_export(path: str | Path) -> dict[str, Any]:
    """An export folder -> a payload of the checkpoint layout (float32 weights, no EMA,
    no optimizer). What is the export's own is checked here (ExportError: the format and
    its version, the weights' checksum and file); the payload's layout, config and that
    the weights fit it are checked as a checkpoint's are, by `checkpoint.load_checkpoint`,
    which is how the package reads an export."""
    path = Path(path)
    where = path / CONFIG_FILE
    try:
        description = json.loads(where.read_text(encoding="utf-8"))
    except OSError as error:
        raise ExportError(f"cannot read {where}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"{where} is not valid JSON ({error}); export the model again") from None
    if not isinstance(description, dict) or description.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{where} does not describe a wavenet export")
    version = description.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ExportError(f"{where} has no valid format_version")
    if version > EXPORT_VERSION:
        raise ExportError(
            f"{path} is export format {version}; this wavenet reads up to "
            f"{EXPORT_VERSION} (upgrade the package)"
        )
    weights_info = description.get("weights")
    if (
        not isinstance(weights_info, dict)
        or not isinstance(weights_info.get("sha256"), str)
        or weights_info.get("file") != WEIGHTS_FILE
    ):
        raise ExportError(f"{where} lacks the weights' file name or checksum")
    blob = (path / WEIGHTS_FILE).read_bytes()
    if hashlib.sha256(blob).hexdigest() != weights_info["sha256"]:
        raise ExportError(
            f"{path / WEIGHTS_FILE} does not match the checksum in {CONFIG_FILE}: "
            f"it is cut short or was changed; export the model again"
        )
    try:
        tensors = _safetensors().load(blob)
    except ExportError:
        raise
    except Exception as error:  # safetensors' own error types vary by version
        raise ExportError(
            f"cannot read {path / WEIGHTS_FILE}: {str(error).strip()[:200]}"
        ) from None
    state = {
        name: value.float() if value.is_floating_point() else value
        for name, value in tensors.items()
    }
    speakers = description.get("speakers")
    return {
        "format": EXPORT_FORMAT,
        "format_version": version,
        "package_version": description.get("package_version"),
        "config": description.get("config"),
        "model": state,
        "ema": None,
        "optimizer": None,
        "step": description.get("step"),
        "rng": {},
        "best_val_bits": description.get("best_val_bits"),
        "extra": {
            "speakers": speakers if isinstance(speakers, list) else None,
            "data": description.get("training_data"),
            "init_from": description.get("init_from"),
            "export": {
                "path": str(path),
                "sha256": weights_info["sha256"],
                "dtype": weights_info.get("dtype"),
            },
        },
    }
