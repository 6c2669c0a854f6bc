"""`wavenet presets`: the shipped config presets and their receptive fields."""

from __future__ import annotations

import json

import click

from .common import json_option


@click.command("presets")
@json_option
def presets_command(as_json: bool) -> None:
    """List the shipped config presets with their receptive fields."""
    from wavenet.config import load_config, preset_names

    rows = []
    for name in preset_names():
        config = load_config(name)
        m = config.model
        rows.append(
            {
                "name": name,
                "output": m.output,
                "classes": m.classes,
                "mixtures": m.mixtures if m.output == "mol" else None,
                "stacks": m.stacks,
                "layers_per_stack": m.layers_per_stack,
                "residual_channels": m.residual_channels,
                "receptive_field": m.receptive_field,
                "receptive_field_ms": 1000 * m.receptive_field / config.data.sample_rate,
                "sample_rate": config.data.sample_rate,
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        output = (
            f"mol x {row['mixtures']}"
            if row["output"] == "mol"
            else f"categorical {row['classes']}"
        )
        click.echo(
            f"{row['name']:10s} {output}, {row['stacks']} x {row['layers_per_stack']} layers, "
            f"residual {row['residual_channels']}, receptive field {row['receptive_field']} "
            f"samples ({row['receptive_field_ms']:.1f} ms at {row['sample_rate']} Hz)"
        )
