"""`wavenet export`: the shareable folder round-trips, and every broken one is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import wavenet
from wavenet.errors import WavenetError
from wavenet.io.checkpoint import CheckpointError, load_model, save_checkpoint
from wavenet.io.export import CONFIG_FILE, WEIGHTS_FILE, ExportError, read_export
from wavenet_cli.main import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model's checkpoint with optimizer state and an EMA different from its weights."""
    torch.manual_seed(0)
    config = wavenet.load_config("tiny", ["model.global_classes=2"])
    model = wavenet.WaveNet(config.model)
    ema = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randint(0, 256, (1, 40)), global_cond=torch.tensor([1])).sum().backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("run") / "model.pt"
    save_checkpoint(
        path,
        config=config,
        model=model.state_dict(),
        ema=ema,
        step=123,
        optimizer=optimizer.state_dict(),
        best_val_bits=4.5,
        extra={"speakers": ["alice", "bob"], "data": {"train_files": 7, "train_seconds": 1800.0}},
    )
    return path


def export(source: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["export", str(source), "--out", str(out), *extra])


def test_export_round_trips_logits_and_codes(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    result = export(checkpoint, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", CONFIG_FILE, WEIGHTS_FILE]
    # Weights alone, float32: smaller than the checkpoint with its optimizer and EMA.
    assert (out / WEIGHTS_FILE).stat().st_size < checkpoint.stat().st_size / 2
    original, config, _ = load_model(checkpoint)  # EMA weights, as the export holds
    loaded, config2, payload = load_model(out)
    assert config2 == config and payload["step"] == 123 and payload["best_val_bits"] == 4.5
    assert payload["extra"]["speakers"] == ["alice", "bob"]
    codes = torch.randint(0, 256, (2, 100), generator=torch.Generator().manual_seed(1))
    speakers = torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.equal(
            original(codes, global_cond=speakers), loaded(codes, global_cond=speakers)
        )
    runs = [
        wavenet.generate(
            m, 200, global_cond=torch.tensor([1]), generator=torch.Generator().manual_seed(5)
        )
        for m in (original, loaded)
    ]
    assert torch.equal(runs[0], runs[1])
    card = (out / "README.md").read_text()
    assert "receptive field | 31 samples" in card and "7 file(s), 0.50 hours" in card
    assert "2 speakers (alice, bob)" in card and "| steps | 123 |" in card
    description = json.loads((out / CONFIG_FILE).read_text())
    assert description["weights"]["ema"] is True and description["source"]["sha256"]


def test_cli_reads_an_export(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    assert export(checkpoint, out).exit_code == 0
    info = CliRunner().invoke(main, ["info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["step"] == 123
    clip = tmp_path / "clip.wav"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            str(out),
            "--out",
            str(clip),
            "--samples",
            "100",
            "--seed",
            "1",
            "--speaker",
            "bob",
        ],
    )
    assert result.exit_code == 0, result.output
    assert clip.stat().st_size > 44


def test_bf16_export_holds_rounded_weights(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "half"
    assert export(checkpoint, out, "--dtype", "bf16").exit_code == 0
    assert (out / WEIGHTS_FILE).stat().st_size < 0.6 * (
        export(checkpoint, tmp_path / "full").exit_code == 0
        and (tmp_path / "full" / WEIGHTS_FILE).stat().st_size
    )
    original, _, _ = load_model(checkpoint)
    loaded, _, _ = load_model(out)
    for (name, a), b in zip(original.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == torch.float32
        assert torch.equal(a.to(torch.bfloat16).float(), b), name


def test_refuses_to_replace_without_force(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    assert export(checkpoint, out).exit_code == 0
    again = export(checkpoint, out)
    assert again.exit_code == 1 and "pass --force" in again.output
    assert export(checkpoint, out, "--force").exit_code == 0


def _broken(tmp_path: Path, checkpoint: Path, how: str) -> Path:
    out = tmp_path / how
    assert export(checkpoint, out).exit_code == 0
    weights, config = out / WEIGHTS_FILE, out / CONFIG_FILE
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif how == "tampered":
        blob = bytearray(weights.read_bytes())
        blob[-5] ^= 0xFF
        weights.write_bytes(bytes(blob))
    elif how == "bad-json":
        config.write_text("{ not json")
    elif how == "newer":
        data = json.loads(config.read_text())
        data["format_version"] = 99
        config.write_text(json.dumps(data))
    elif how == "bad-config":
        data = json.loads(config.read_text())
        data["config"]["model"]["residual_channels"] = -3
        config.write_text(json.dumps(data))
    elif how == "wrong-shapes":  # a consistent file whose weights are of another model
        import hashlib

        import safetensors.torch as st

        other = wavenet.WaveNet(wavenet.load_config("tiny", ["model.residual_channels=8"]).model)
        other_blob = st.save({k: v.contiguous() for k, v in other.state_dict().items()})
        weights.write_bytes(other_blob)
        data = json.loads(config.read_text())
        data["weights"]["sha256"] = hashlib.sha256(other_blob).hexdigest()
        config.write_text(json.dumps(data))
    return out


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated", "does not match the checksum"),
        ("tampered", "does not match the checksum"),
        ("bad-json", "is not valid JSON"),
        ("newer", "export format 99"),
        ("bad-config", "invalid config"),
        ("wrong-shapes", "do not fit the config"),
    ],
)
def test_every_broken_export_is_one_line(
    checkpoint: Path, tmp_path: Path, how: str, message: str
) -> None:
    out = _broken(tmp_path, checkpoint, how)
    with pytest.raises((ExportError, CheckpointError), match=message) as caught:
        load_model(out)
    assert isinstance(caught.value, WavenetError)
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and result.exception is not None
    assert not isinstance(result.exception, (ExportError, CheckpointError))  # handled by click


def test_read_export_of_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        read_export(tmp_path)
