"""CLI writers that must not overwrite a user's file unasked: `wavenet plot --out`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wavenet_cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"step": s, "train_bits": 8 - s / 10} for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run


@pytest.mark.parametrize("name", ["mine.png", "mine"])  # "mine" is written as mine.png
def test_plot_out_refuses_an_existing_file_without_force(
    run: Path, tmp_path: Path, name: str
) -> None:
    """`plot --out FILE` wrote over an existing FILE without asking."""
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my own picture")
    out = tmp_path / name
    result = CliRunner().invoke(main, ["plot", str(run), "--out", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {mine} exists; pass --force to overwrite"
    ]
    assert mine.read_bytes() == b"my own picture"
    forced = CliRunner().invoke(main, ["plot", str(run), "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert mine.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png", "run"]  # no temporary


def test_plot_refreshes_the_runs_own_curves(run: Path) -> None:
    """The default output, RUN/curves.png, is the run's own picture: plotting a run again
    while it trains replaces it without --force."""
    for _ in range(2):
        result = CliRunner().invoke(main, ["plot", str(run)])
        assert result.exit_code == 0, result.output
    assert (run / "curves.png").read_bytes()[:8] == PNG_MAGIC
