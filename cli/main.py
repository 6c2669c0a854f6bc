"""The `wavenet` command group. Each subcommand lives in its own module (cli/NAME.py;
`eval` in evaluate.py); cli/common.py holds what they share, and cli/vocode.py is
`generate --mel-dir`'s half."""

from __future__ import annotations

import click

import wavenet

from .common import WavenetGroup
from .demo import demo_command
from .evaluate import eval_command
from .export import export_command
from .generate import generate_command
from .info import info_command
from .mel import mel_command
from .plot import plot_command
from .presets import presets_command
from .train import train_command


@click.group(cls=WavenetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(wavenet.__version__, prog_name="wavenet")
def main() -> None:
    """WaveNet audio models: train on a folder of audio, generate, inspect."""
    # Training's per-step tensors reuse memory instead of faulting in fresh pages.
    from wavenet.util.hardware import keep_freed_memory

    keep_freed_memory()


main.add_command(demo_command)
main.add_command(train_command)
main.add_command(eval_command)
main.add_command(info_command)
main.add_command(generate_command)
main.add_command(plot_command)
main.add_command(mel_command)
main.add_command(export_command)
main.add_command(presets_command)
