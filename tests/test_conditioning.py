"""Conditioning: model inputs, causality with conditioning on, mel alignment, crops."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import torch
from torch import nn

import wavenet
from wavenet import ConfigError, WaveNet
from wavenet.config import MelConfig
from wavenet.data.crops import CropSampler
from wavenet.data.features import log_mel, log_mel_of_codes
from wavenet.data.prepare import EncodedFile, encode_waveform, mel_statistics
from wavenet.nn.layers import bias_of

MEL = [
    "mel.n_mels=8",
    "mel.n_fft=64",
    "mel.hop_length=16",
    "mel.win_length=64",
    "model.local_channels=8",
    "model.upsample_scales=4,4",
]


def conditioned_config(*extra: str) -> wavenet.Config:
    return wavenet.load_config("tiny", ["model.global_classes=3", *MEL, *extra])


def test_scales_must_multiply_to_hop() -> None:
    with pytest.raises(ConfigError, match="must equal mel.hop_length"):
        wavenet.load_config("tiny", MEL[:-1] + ["model.upsample_scales=4,2"])
    with pytest.raises(ConfigError, match="must equal mel.n_mels"):
        wavenet.load_config(
            "tiny", MEL[:4] + ["model.local_channels=9", "model.upsample_scales=16"]
        )


def layers_of(modules: nn.ModuleList) -> list[nn.Conv1d | nn.Linear]:
    """The projections of a ModuleList, typed as what they are (it yields Modules)."""
    return [cast("nn.Conv1d | nn.Linear", module) for module in modules]


def randomize_local_projections(model: WaveNet) -> WaveNet:
    """Local projections start at zero (no effect); give them weights to test their path."""
    with torch.no_grad():
        for projection in layers_of(model.local_projections):
            projection.weight.normal_(0, 0.3)
    return model


def test_local_projections_start_at_zero() -> None:
    model = WaveNet(conditioned_config().model)
    assert all(
        not p.weight.any() and not bias_of(p).any() for p in layers_of(model.local_projections)
    )


def test_conditioned_model_shapes_and_causality() -> None:
    torch.manual_seed(0)
    model = randomize_local_projections(WaveNet(conditioned_config().model)).double().eval()
    codes = torch.randint(0, 256, (2, 100))
    ids = torch.tensor([0, 2])
    mel = torch.randn(2, 8, 7, dtype=torch.float64)  # 7 * 16 = 112 >= 100
    logits = model(codes, global_cond=ids, mel=mel)
    assert logits.shape == (2, 256, 100)
    t0 = 60
    changed = codes.clone()
    changed[:, t0:] = (changed[:, t0:] + 1) % 256
    after = model(changed, global_cond=ids, mel=mel)
    assert torch.equal(logits[:, :, :t0], after[:, :, :t0])
    # Each conditioning input changes the output.
    assert not torch.allclose(model(codes, global_cond=torch.tensor([1, 1]), mel=mel), logits)
    assert not torch.allclose(model(codes, global_cond=ids, mel=mel + 1), logits)


def test_missing_or_unexpected_conditioning_is_refused() -> None:
    model = WaveNet(conditioned_config().model)
    codes = torch.randint(0, 256, (1, 20))
    mel = torch.randn(1, 8, 2)
    with pytest.raises(ValueError, match="global_cond"):
        model(codes, mel=mel)
    with pytest.raises(ValueError, match="vocoder"):
        model(codes, global_cond=torch.tensor([0]))
    with pytest.raises(ValueError, match="frames"):
        model(codes, global_cond=torch.tensor([0]), mel=torch.randn(1, 8, 1))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model(codes, global_cond=torch.tensor([3]), mel=mel)
    with pytest.raises(ValueError, match="no global conditioning"):
        WaveNet(wavenet.load_config("tiny").model)(codes, global_cond=torch.tensor([0]))


def test_log_mel_frames_cover_their_hop_block() -> None:
    mel = MelConfig(n_mels=16, n_fft=64, hop_length=16, win_length=64)
    waveform = torch.zeros(16 * 20)
    waveform[16 * 10 : 16 * 11] = torch.randn(16)  # a burst inside frame 10's block
    features = log_mel(waveform, 8000, mel)
    assert features.shape == (16, 20)
    assert features.min() >= 0.0  # the floor maps to 0
    energy = features.sum(0)
    assert int(energy.argmax()) == 10
    # The window (64 samples centred on the block) reaches one block and a half each side.
    assert torch.all(energy[:8] == 0) and torch.all(energy[13:] == 0)


def test_conditioned_crops_align_codes_and_mel() -> None:
    rng = np.random.default_rng(0)
    mel_config = MelConfig(n_mels=8, n_fft=64, hop_length=16, win_length=64)
    files, mels = [], []
    for i in range(2):
        codes = encode_waveform(rng.uniform(-0.5, 0.5, 1000 + 77 * i).astype(np.float32), 256)
        files.append(EncodedFile(path=__import__("pathlib").Path(f"f{i}.wav"), codes=codes))
        mels.append(log_mel_of_codes(codes, 8000, mel_config, 256).numpy())
    sampler = CropSampler(
        files, 100, torch.Generator().manual_seed(0), global_ids=[5, 7], mels=mels, hop_length=16
    )
    batch = sampler.batch(16)
    frames = -(-99 // 16)
    assert batch.mel is not None and batch.global_ids is not None
    assert batch.codes.shape == (16, 100) and batch.mel.shape == (16, 8, frames)
    for row in range(16):
        index = [5, 7].index(int(batch.global_ids[row]))
        source = torch.as_tensor(files[index].codes.astype(np.int64))
        # Find the crop: it starts one sample before a hop boundary.
        starts = [
            s
            for s in range(15, len(source) - 99, 16)
            if torch.equal(source[s : s + 100], batch.codes[row])
        ]
        assert starts, "crop not found at a hop-aligned start"
        k = (starts[0] + 1) // 16
        assert torch.equal(batch.mel[row], torch.as_tensor(mels[index][:, k : k + frames]))


def test_mel_statistics_per_band_mean_and_pooled_std() -> None:
    a = np.array([[1.0, 3.0], [10.0, 10.0]])  # band variances 1 and 0
    b = np.array([[2.0], [10.0]])
    mean, std = mel_statistics([a, b])
    torch.testing.assert_close(mean, torch.tensor([2.0, 10.0]))
    # Pooled: sqrt of the mean band variance, (2/3 + 0) / 2; the still band is not 0.
    torch.testing.assert_close(std, torch.full((2,), (1 / 3) ** 0.5))


def test_model_standardizes_the_mel_with_its_statistics() -> None:
    torch.manual_seed(0)
    model = randomize_local_projections(WaveNet(conditioned_config().model)).double().eval()
    codes = torch.randint(0, 256, (2, 50))
    ids = torch.tensor([0, 1])
    mel = torch.randn(2, 8, 4, dtype=torch.float64)
    mean = torch.linspace(0, 1, 8, dtype=torch.float64)
    std = torch.full((8,), 0.25, dtype=torch.float64)
    identity = model(codes, global_cond=ids, mel=(mel - mean[:, None]) / std[:, None])
    model.set_mel_statistics(mean, std)
    torch.testing.assert_close(model(codes, global_cond=ids, mel=mel), identity)
    # The statistics travel with the state dict; one saved before they existed loads
    # with the identity.
    copy = WaveNet(conditioned_config().model).double()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy.mel_std, std)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("mel_")}
    copy.load_state_dict(old)
    assert not copy.mel_mean.any() and bool((copy.mel_std == 1).all())
    with pytest.raises(ValueError, match="positive"):
        model.set_mel_statistics(mean, torch.zeros(8, dtype=torch.float64))


# ------------------------------------------------------------------ generation

from wavenet.generation.driver import FastGenerator, StepConditioning, generate  # noqa: E402
from wavenet.generation.fastpath import NumbaGenerator  # noqa: E402


@pytest.fixture(scope="module")
def conditioned_model() -> WaveNet:
    torch.manual_seed(1)
    model = randomize_local_projections(WaveNet(conditioned_config().model)).double().eval()
    with torch.no_grad():  # make the conditioning matter: larger projections
        for projection in layers_of(model.global_projections) + layers_of(model.local_projections):
            projection.weight.mul_(5)
    # Statistics other than the identity, so that the incremental paths must standardize.
    model.set_mel_statistics(
        torch.linspace(-0.5, 0.5, 8, dtype=torch.float64),
        torch.full((8,), 0.7, dtype=torch.float64),
    )
    return model


@pytest.mark.parametrize("generator_class", [FastGenerator, NumbaGenerator])
def test_incremental_logits_equal_forward_with_conditioning(
    conditioned_model: WaveNet, generator_class: type
) -> None:
    model = conditioned_model
    length = 2 * model.receptive_field + 17
    codes = torch.randint(0, 256, (3, length))
    ids = torch.tensor([0, 1, 2])
    mel = torch.randn(3, 8, -(-length // 16), dtype=torch.float64)
    with torch.no_grad():
        expected = model(codes, global_cond=ids, mel=mel)
    gen = generator_class(model, 3, StepConditioning(model, 3, length, ids, mel))
    got = torch.stack([gen.step(codes[:, t]) for t in range(length)], dim=2)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_fast_and_naive_agree_with_conditioning(
    conditioned_model: WaveNet, temperature: float, batch: int
) -> None:
    model = conditioned_model
    n = 150
    ids = torch.arange(batch) % 3
    mel = torch.randn(batch, 8, -(-n // 16), dtype=torch.float64)
    results = {}
    for method in ("fast-numba", "fast-torch", "naive"):
        results[method] = generate(
            model,
            n,
            batch_size=batch,
            temperature=temperature,
            generator=torch.Generator().manual_seed(5),
            method=method,
            global_cond=ids,
            mel=mel,
        )
    assert torch.equal(results["fast-numba"], results["naive"])
    assert torch.equal(results["fast-torch"], results["naive"])


def test_conditioning_changes_what_is_generated(conditioned_model: WaveNet) -> None:
    mel = torch.randn(1, 8, 10, dtype=torch.float64)
    a = generate(conditioned_model, 150, temperature=0, global_cond=torch.tensor([0]), mel=mel)
    b = generate(conditioned_model, 150, temperature=0, global_cond=torch.tensor([2]), mel=mel)
    c = generate(conditioned_model, 150, temperature=0, global_cond=torch.tensor([0]), mel=mel + 2)
    assert not torch.equal(a, b) and not torch.equal(a, c)


def test_generation_refuses_missing_or_misplaced_conditioning(conditioned_model: WaveNet) -> None:
    mel = torch.randn(1, 8, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="global_cond"):
        generate(conditioned_model, 10, mel=mel)
    with pytest.raises(ValueError, match="frames"):
        generate(conditioned_model, 100, global_cond=torch.tensor([0]), mel=mel)
    with pytest.raises(ValueError, match="prime"):
        generate(
            conditioned_model,
            10,
            global_cond=torch.tensor([0]),
            mel=mel,
            prime=torch.tensor([1, 2]),
        )
    plain = WaveNet(wavenet.load_config("tiny").model)
    with pytest.raises(ValueError, match="no conditioning"):
        generate(plain, 10, global_cond=torch.tensor([0]))


def test_global_only_fast_equals_naive() -> None:
    torch.manual_seed(2)
    model = WaveNet(wavenet.load_config("tiny", ["model.global_classes=2"]).model).double().eval()
    ids = torch.tensor([0, 1])
    prime = torch.randint(0, 256, (2, 40))
    codes = {
        method: generate(
            model,
            120,
            batch_size=2,
            prime=prime,
            global_cond=ids,
            generator=torch.Generator().manual_seed(3),
            method=method,
        )
        for method in ("fast-numba", "fast-torch", "naive")
    }
    assert torch.equal(codes["fast-numba"], codes["naive"])
    assert torch.equal(codes["fast-torch"], codes["naive"])


def test_conditioning_terms_are_every_layers_term() -> None:
    """The generators' all-layers product equals layer_conditioning layer by layer."""
    torch.manual_seed(0)
    model = randomize_local_projections(WaveNet(conditioned_config().model)).double().eval()
    global_features = model.global_embedding(torch.tensor([0, 2]))
    local = torch.randn(2, 8, 7, dtype=torch.float64)
    terms = model.conditioning_terms(global_features, local)
    assert terms.shape == (7, len(model.blocks), 2, model.config.gate_channels)
    for layer in range(len(model.blocks)):
        expected = model.layer_conditioning(layer, global_features, local)  # (B, G, T)
        assert expected is not None
        torch.testing.assert_close(
            terms[:, layer], expected.permute(2, 0, 1), rtol=1e-12, atol=1e-12
        )
    only_global = model.conditioning_terms(global_features, None)
    assert only_global.shape == (1, len(model.blocks), 2, model.config.gate_channels)
    only_global_layer = model.layer_conditioning(1, global_features, None)
    assert only_global_layer is not None
    torch.testing.assert_close(only_global[0, 1], only_global_layer[:, :, 0])


def test_speaker_names_match_in_either_unicode_form() -> None:
    """A name saved from a macOS folder (NFD) and the same name typed (NFC) are one
    speaker; before, --speaker said 'unknown speaker'."""
    from wavenet.data.conditioning import speaker_ids

    config = wavenet.load_config("tiny", ["model.global_classes=2"])
    nfd, nfc = "Rene\u0301e", "Ren\u00e9e"
    from_nfd = speaker_ids(config, ["zoe", nfd], nfc, 2)
    assert from_nfd is not None and from_nfd.tolist() == [1, 1]
    from_nfc = speaker_ids(config, ["zoe", nfc], nfd, 1)
    assert from_nfc is not None and from_nfc.tolist() == [1]
