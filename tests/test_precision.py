"""bf16 autocast trains to the same held-out bits as float32 (slow: real training runs).

Both precisions train the same preset on the same plucked-string melodies (the demo's
data) for the same steps from the same seed, and `wavenet eval` scores files that were
not trained on. bf16 keeps about three significant digits in the products, so the two
runs drift apart step by step; what must agree is what they learned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wavenet.data.demo import write_demo_dataset
from wavenet_cli.main import main


def _held_out_bits(
    preset: str,
    data: Path,
    held_out: Path,
    out: Path,
    bf16: bool,
    steps: int,
    overrides: tuple[str, ...] = (),
) -> float:
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        preset,
        "--steps",
        str(steps),
        "--cache-dir",
        str(out.parent / "cache"),
        "--set",
        f"train.bf16={'true' if bf16 else 'false'}",
        "--set",
        f"train.val_every={steps}",
        "--set",
        f"train.checkpoint_every={steps}",
    ]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(out),
            "--data",
            str(held_out),
            "--json",
            "--cache-dir",
            str(out.parent / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["bits_per_sample"]


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "steps"), [("tiny", 300), ("demo", 200)])
def test_bf16_reaches_the_held_out_bits_of_float32(preset: str, steps: int, tmp_path: Path) -> None:
    write_demo_dataset(tmp_path / "train", files=8, seconds=4.0, seed=0)
    write_demo_dataset(tmp_path / "held-out", files=3, seconds=4.0, seed=1)
    fp32 = _held_out_bits(
        preset,
        tmp_path / "train",
        tmp_path / "held-out",
        tmp_path / "fp32",
        bf16=False,
        steps=steps,
    )
    bf16 = _held_out_bits(
        preset, tmp_path / "train", tmp_path / "held-out", tmp_path / "bf16", bf16=True, steps=steps
    )
    assert fp32 < 7.0  # both learned something (8 bits is a uniform guess)
    assert abs(bf16 - fp32) <= 0.05, (fp32, bf16)


@pytest.mark.slow
def test_a_mol_model_with_a_bf16_body_reaches_the_held_out_bits_of_float32(tmp_path: Path) -> None:
    """The same for 16-bit output, where only the body runs in bf16 (WaveNet.output_layer).

    A 300-step mol run's held-out bits move by 0.2-0.35 from seed to seed in either
    precision (measured: float32 10.669 / 10.856 / 10.661, bf16 10.423 / 10.767 / 10.672
    for seeds 0-2), so one pair cannot show agreement within 0.1: the means over three
    seeds are compared, and bf16 must not be worse by more than 0.1 (measured 0.108 better)."""
    write_demo_dataset(tmp_path / "train", files=8, seconds=4.0, seed=0)
    write_demo_dataset(tmp_path / "held-out", files=3, seconds=4.0, seed=1)
    means = {}
    for precision in ("fp32", "bf16"):
        bits = [
            _held_out_bits(
                "tiny",
                tmp_path / "train",
                tmp_path / "held-out",
                tmp_path / f"{precision}-{seed}",
                bf16=precision == "bf16",
                steps=300,
                overrides=("model.output=mol", "train.sample_every=0", f"train.seed={seed}"),
            )
            for seed in range(3)
        ]
        means[precision] = sum(bits) / len(bits)
    assert means["fp32"] < 12.0  # learned something (16 bits is a uniform guess)
    assert means["bf16"] - means["fp32"] <= 0.1, means
