"""Fine-tuning: which configs may start from a source's weights, and that a new speaker or
a new mel input leaves step 0 exactly the source model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import wavenet
from wavenet.errors import TrainError
from wavenet.train.finetune import incompatible_parameters, load_source_weights

MEL = [
    "mel.n_mels=8",
    "mel.n_fft=64",
    "mel.hop_length=16",
    "mel.win_length=64",
    "model.local_channels=8",
    "model.upsample_scales=4,4",
]


def model_of(*overrides: str, seed: int = 0) -> wavenet.WaveNet:
    torch.manual_seed(seed)
    return wavenet.WaveNet(wavenet.load_config("tiny", list(overrides)).model).eval()


def test_shape_changes_are_listed() -> None:
    tiny = wavenet.load_config("tiny").model
    wider = dataclasses.replace(tiny, residual_channels=24)
    problems = incompatible_parameters(tiny, wider)
    assert "embedding.weight (256x16 -> 256x24)" in problems
    assert incompatible_parameters(tiny, tiny) == []
    deeper = dataclasses.replace(tiny, stacks=tiny.stacks + 1)
    assert any("(not in the source)" in p for p in incompatible_parameters(tiny, deeper))
    vocoder = wavenet.load_config("tiny", MEL).model
    assert incompatible_parameters(tiny, vocoder) == []  # becoming a vocoder is allowed
    assert any("only in the source" in p for p in incompatible_parameters(vocoder, tiny))


def test_refused_in_one_line() -> None:
    source = model_of()
    target = model_of("model.residual_channels=24")
    with pytest.raises(TrainError, match=r"does not fit the source's weights: embedding\.weight"):
        load_source_weights(
            target,
            source.state_dict(),
            source_config=source.config,
            source_speakers=None,
            speakers=None,
        )


def test_new_speakers_keep_known_rows_and_step_zero_is_the_source() -> None:
    source = model_of("model.global_classes=2")
    target = model_of("model.global_classes=3", seed=1)
    notes = load_source_weights(
        target,
        source.state_dict(),
        source_config=source.config,
        source_speakers=["ann", "bob"],
        speakers=["bob", "cy", "ann"],
    )
    table = source.global_embedding.weight
    assert torch.equal(target.global_embedding.weight[0], table[1])
    assert torch.equal(target.global_embedding.weight[2], table[0])
    assert torch.equal(target.global_embedding.weight[1], table.mean(dim=0))
    assert notes and "1 new (cy)" in notes[0]
    codes = torch.randint(0, 256, (1, 80), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for old_id, new_id in ((0, 2), (1, 0)):
            assert torch.equal(
                source(codes, global_cond=torch.tensor([old_id])),
                target(codes, global_cond=torch.tensor([new_id])),
            )


def test_speaker_names_match_in_either_unicode_form() -> None:
    source = model_of("model.global_classes=1")
    target = model_of("model.global_classes=1", seed=1)
    load_source_weights(
        target,
        source.state_dict(),
        source_config=source.config,
        source_speakers=["Ren\u00e9e"],
        speakers=["Rene\u0301e"],
    )
    assert torch.equal(target.global_embedding.weight, source.global_embedding.weight)


def test_becoming_a_vocoder_starts_at_the_source_model() -> None:
    source = model_of()
    target = model_of(*MEL, seed=1)
    notes = load_source_weights(
        target,
        source.state_dict(),
        source_config=source.config,
        source_speakers=None,
        speakers=None,
    )
    assert "becomes a vocoder" in notes[0]
    codes = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(0))
    mel = torch.randn(2, 8, 4)
    with torch.no_grad():
        assert torch.equal(source(codes), target(codes, mel=mel))
