"""The mixture-of-logistics output ("mol"): its likelihood equals a direct computation,
sums to one over the 65,536 values, every generator draws the same 16-bit samples, the
data stay at 16 bits, and a tiny model trained on sines writes 16-bit audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import mpmath as mp
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import FAST, SAMPLE_RATE
from torch import nn

import wavenet
from wavenet import ConfigError, ModelConfig, WaveNet, generate
from wavenet.coding.logistic import (
    INITIAL_LOG_SCALE,
    LOG_SCALE_MIN,
    mixture_log_prob,
    sample_mixture,
)
from wavenet.coding.pcm import code_values, pcm16_decode, pcm16_encode, pcm16_samples
from wavenet.config import model_parameters
from wavenet.data.cache import CACHE_VERSIONS
from wavenet.data.prepare import load_encoded
from wavenet.errors import InvalidArgumentError
from wavenet.generation.fastpath import NumbaGenerator
from wavenet.generation.incremental import FastGenerator
from wavenet.nn.layers import bias_of
from wavenet_cli.main import main

# The cache folders of the two codings, as the current cache versions name them.
CODES_CACHE = f"codes-v{CACHE_VERSIONS['codes']}"
PCM16_CACHE = f"pcm16-v{CACHE_VERSIONS['pcm16']}"

MOL = ModelConfig(
    residual_channels=8,
    gate_channels=12,
    skip_channels=16,
    layers_per_stack=4,
    stacks=2,
    output="mol",
    mixtures=3,
)
METHODS = ("fast-torch", "fast-numba")


# Tiny models on one thread (conftest.py: one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mol_model(config: ModelConfig = MOL, dtype: torch.dtype = torch.float64) -> WaveNet:
    """A random mol model whose scales start near 0.02 (not ~1, which would put most
    draws on the edge codes and test little)."""
    torch.manual_seed(0)
    model = WaveNet(config).to(dtype).eval()
    with torch.no_grad():
        bias_of(model.head_out)[2 * config.mixtures :].fill_(-4.0)
    return model


# ----------------------------------------------------------------------- likelihood


def direct_log_prob(
    weights: np.ndarray, means: np.ndarray, log_scales: np.ndarray, code: int
) -> float:
    """log P(code) of a discretized logistic mixture from CDF differences, in 50-digit
    arithmetic (mpmath), so that no cancellation can hide an error."""
    mp.mp.dps = 50

    def cdf(x: mp.mpf, mu: float, s: mp.mpf) -> mp.mpf:
        return 1 / (1 + mp.exp(-(x - mp.mpf(mu)) / s))

    v, h = mp.mpf(-1) + mp.mpf(2 * code) / 65535, mp.mpf(1) / 65535
    exps = [mp.exp(mp.mpf(w)) for w in weights]
    total = mp.mpf(0)
    for e, mu, log_s in zip(exps, means, log_scales):
        s = mp.exp(mp.mpf(max(log_s, LOG_SCALE_MIN)))
        upper = mp.mpf(1) if code == 65535 else cdf(v + h, mu, s)
        lower = mp.mpf(0) if code == 0 else cdf(v - h, mu, s)
        total += e / sum(exps) * (upper - lower)
    return float(mp.log(total))


def test_known_mixture_log_prob_equals_a_direct_computation() -> None:
    weights = np.array([0.3, -1.2, 2.0])
    means = np.array([-0.5, 0.01, 0.9995])
    log_scales = np.array([-3.0, -7.5, -9.0])
    codes = [0, 1, 16384, 32768, 32769, 33096, 65500, 65534, 65535]
    params = torch.tensor(np.concatenate([weights, means, log_scales]))
    got = mixture_log_prob(params.expand(len(codes), -1), torch.tensor(codes))
    expected = [direct_log_prob(weights, means, log_scales, c) for c in codes]
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_probabilities_of_all_16_bit_values_sum_to_one() -> None:
    params = torch.tensor(
        [
            [0.5, -0.5, 0.2, -0.98, -3.0, -6.0],  # one mean near the bottom edge
            [0.0, 1.0, 1.2, 0.4, 2.0, -16.0],
        ],  # a huge scale; one below the clamp
        dtype=torch.float64,
    )
    codes = torch.arange(65536)
    for row in params:
        log_p = mixture_log_prob(row.expand(65536, -1), codes)
        assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-9)


def test_float32_log_prob_is_finite_for_tiny_and_huge_scales() -> None:
    params = torch.tensor([[0.0, 0.0, 0.0, 0.0, -20.0, 30.0]])
    for code in (0, 32768, 65535):
        value = mixture_log_prob(params, torch.tensor([code]))
        assert torch.isfinite(value).all()


def test_the_loss_falls_with_its_gradient() -> None:
    targets = torch.randint(30000, 36000, (64,), generator=seeded(2))
    params = torch.zeros(64, 6, requires_grad=True)
    optimizer = torch.optim.Adam([params], lr=0.1)
    losses = []
    for _ in range(60):
        loss = -mixture_log_prob(params, targets).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 3.0  # nats


# ------------------------------------------------------------------------- sampling


def test_sampled_codes_follow_the_likelihood() -> None:
    """Inverse-CDF draws from a known mixture land in code ranges as often as the
    likelihood says (20,000 draws: three standard errors < 0.011)."""
    row = torch.tensor([0.0, 0.7, 0.001, 0.004, -8.0, -7.0], dtype=torch.float64)
    n = 20000
    uniforms = torch.rand(n, generator=seeded(3), dtype=torch.float64)
    drawn = sample_mixture(row.expand(n, -1), 1.0, uniforms)
    log_p = mixture_log_prob(row.expand(65536, -1), torch.arange(65536))
    cdf = torch.cumsum(log_p.exp(), 0)
    for edge in (32780, 32790, 32800, 32830, 32860, 32900):
        assert (drawn <= edge).double().mean().item() == pytest.approx(cdf[edge].item(), abs=0.011)


def test_temperature_zero_takes_the_heaviest_components_mean() -> None:
    params = torch.tensor([[0.1, 2.0, -1.0, 0.3, -0.25, 0.9, -5.0, -5.0, -5.0]])
    code = sample_mixture(params, 0.0, None)
    assert code.item() == round((-0.25 + 1) * 65535 / 2)
    assert code_values(code, torch.float64).item() == pytest.approx(-0.25, abs=1 / 65535)


def test_lower_temperature_draws_closer_to_the_means() -> None:
    row = torch.tensor([0.0, 0.0, -0.3, 0.3, -4.0, -4.0], dtype=torch.float64).expand(4000, -1)
    uniforms = torch.rand(4000, generator=seeded(4), dtype=torch.float64)
    spread = []
    for temperature in (1.0, 0.25):
        values = code_values(sample_mixture(row, temperature, uniforms), torch.float64)
        spread.append(torch.minimum((values + 0.3).abs(), (values - 0.3).abs()).mean().item())
    assert spread[1] < 0.4 * spread[0]


# ----------------------------------------------------------------------- the model


def test_head_emits_three_numbers_per_component_and_parameters_are_counted() -> None:
    model = mol_model()
    codes = torch.randint(0, 65536, (2, 40), generator=seeded())
    out = model(codes)
    assert out.shape == (2, 3 * MOL.mixtures, 40)
    torch.testing.assert_close(out, model.forward_blocks(codes), rtol=1e-12, atol=1e-12)
    assert wavenet.parameter_count(model) == model_parameters(MOL)
    # The mu-law code of each 16-bit sample is derived, not saved.
    assert "input_codes" not in model.state_dict()
    assert model.input_codes[[0, 32768, 65535]].tolist() == [0, 128, 255]


def test_config_checks_output_and_mixtures() -> None:
    with pytest.raises(ConfigError, match="model.output"):
        ModelConfig(output="gaussian")
    with pytest.raises(ConfigError, match="model.mixtures"):
        ModelConfig(output="mol", mixtures=0)
    config = wavenet.load_config("mol")
    assert (config.model.classes, config.model.output_channels, config.model.coding) == (
        65536,
        30,
        "pcm16",
    )
    assert ModelConfig().output_channels == 256 and ModelConfig().coding == "mu-law"


# ---------------------------------------------------------------- initialization


def test_a_new_mol_model_starts_its_logistics_at_the_spread_of_audio() -> None:
    from wavenet.data.crops import Batch
    from wavenet.train.loss import LN2, next_sample_loss

    torch.manual_seed(0)
    config = wavenet.load_config("mol").model  # the tiny MOL's random means lie further off
    model = WaveNet(config)
    k = config.mixtures
    assert torch.equal(
        bias_of(model.head_out)[2 * k :].detach(), torch.full((k,), INITIAL_LOG_SCALE)
    )
    # A 440 Hz tone at 0.09 of full scale, a usual level for audio.
    t = torch.arange(4000, dtype=torch.float64)
    samples = (3000 * torch.sin(2 * torch.pi * 440 * t / SAMPLE_RATE)).round().long()
    batch = Batch((samples + 32768).unsqueeze(0))
    with torch.no_grad():
        bits = next_sample_loss(model, batch, 0).item() / LN2
        model.head_out.reset_parameters()  # nn.Conv1d's own init: scales ~1, means random
        usual = next_sample_loss(model, batch, 0).item() / LN2
    assert bits < 15.0 and usual > 16.5, (bits, usual)


# ------------------------------------------------------------------- bf16 body


def bf16_autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_under_bf16_autocast_the_mol_output_projection_stays_float32() -> None:
    model = mol_model(dtype=torch.float32)
    hidden = torch.rand(50, MOL.skip_channels).to(torch.bfloat16)  # as a bf16 body gives them
    weight = model.head_out.weight[:, :, 0].t()
    with bf16_autocast():
        params = model.output_layer(hidden)
    assert params.dtype == torch.float32
    # Exactly the float32 product of the (bf16) features: no bf16 rounding after them.
    assert torch.equal(params, torch.addmm(bias_of(model.head_out), hidden.float(), weight))
    with bf16_autocast():
        assert model.head(hidden.t().unsqueeze(0).float()).dtype == torch.float32
    # A categorical head keeps autocast's bf16 products, as before.
    categorical = WaveNet(ModelConfig(**{**MOL.__dict__, "output": "categorical"}))
    with bf16_autocast():
        assert categorical.output_layer(hidden.float()).dtype == torch.bfloat16
    with bf16_autocast():
        assert categorical.head(hidden.t().unsqueeze(0).float()).dtype == torch.bfloat16


@pytest.mark.parametrize("path", ["fused", "blocks"])
def test_a_bf16_body_gives_float32_mixture_parameters_near_float32_ones(path: str) -> None:
    model = mol_model(dtype=torch.float32)
    codes = torch.randint(0, 65536, (2, 300), generator=seeded())
    forward = model.forward_features if path == "fused" else model.forward_blocks
    full = forward(codes)
    with bf16_autocast():
        body_bf16 = forward(codes)
    assert body_bf16.dtype == torch.float32
    difference = (body_bf16 - full).abs().max().item()
    # The body did run in bf16 (about 3 significant digits), yet stays close.
    assert 0 < difference < 0.05, difference


def test_the_bf16_body_loss_and_gradients_are_float32_and_near_the_float32_ones() -> None:
    from wavenet.data.crops import Batch
    from wavenet.train.loss import next_sample_loss

    model = mol_model(dtype=torch.float32).train()
    batch = Batch(torch.randint(20000, 45000, (3, 400), generator=seeded(2)))
    losses, grads = [], []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = next_sample_loss(model, batch, 100)
        loss.backward()
        assert loss.dtype == torch.float32
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
        losses.append(loss.item())
        grad = model.head_out.weight.grad
        assert grad is not None
        grads.append(grad.clone())
    assert losses[0] != losses[1]
    assert abs(losses[0] - losses[1]) < 0.01 * abs(losses[0]), losses
    torch.testing.assert_close(
        grads[1], grads[0], rtol=0.05, atol=0.05 * grads[0].abs().max().item()
    )


# ---------------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", [FastGenerator, NumbaGenerator])
def test_teacher_forced_outputs_equal_full_forward(kind: type) -> None:
    model = mol_model()
    rf = model.receptive_field
    for batch in (1, 3, 16) if kind is NumbaGenerator else (2,):
        codes = torch.randint(0, 65536, (batch, 2 * rf + 5), generator=seeded(batch))
        with torch.no_grad():
            full = model(codes)
        gen = kind(model, batch)
        steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
        torch.testing.assert_close(steps, full, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_fast_and_naive_draw_the_same_samples(
    method: str, temperature: float, batch_size: int
) -> None:
    model = mol_model()
    n = 2 * model.receptive_field + 10
    naive = generate(
        model, n, batch_size=batch_size, temperature=temperature, generator=seeded(), method="naive"
    )
    fast = generate(
        model, n, batch_size=batch_size, temperature=temperature, generator=seeded(), method=method
    )
    assert torch.equal(fast, naive)
    assert naive.min() >= 0 and naive.max() < 65536
    if temperature > 0:
        assert len(torch.unique(naive)) > 0.9 * naive.numel()  # 16-bit values, few repeats


@pytest.mark.parametrize("method", METHODS)
def test_a_prime_and_speaker_conditioning_agree_across_methods(method: str) -> None:
    model = mol_model(ModelConfig(**{**MOL.__dict__, "global_classes": 3}))
    prime = torch.randint(20000, 45000, (2, 30), generator=seeded(5))
    kwargs: dict[str, Any] = dict(
        batch_size=2, temperature=0.9, prime=prime, global_cond=torch.tensor([0, 2])
    )
    naive = generate(model, 40, generator=seeded(), method="naive", **kwargs)
    assert torch.equal(generate(model, 40, generator=seeded(), method=method, **kwargs), naive)


@pytest.mark.parametrize("method", METHODS)
def test_a_mel_conditioned_mol_model_agrees_across_methods(method: str) -> None:
    config = ModelConfig(**{**MOL.__dict__, "local_channels": 4, "upsample_scales": (2, 4)})
    model = mol_model(config)
    with torch.no_grad():
        for projection in model.local_projections:
            cast(nn.Conv1d, projection).weight.normal_(0, 0.3)
    mel = torch.rand(1, 4, 12, generator=seeded(6), dtype=torch.float64)
    naive = generate(model, 96, mel=mel, generator=seeded(), method="naive")
    assert torch.equal(generate(model, 96, mel=mel, generator=seeded(), method=method), naive)


@pytest.mark.parametrize("method", (*METHODS, "naive"))
def test_a_vanishing_temperature_or_nan_outputs_give_codes_not_a_crash(method: str) -> None:
    """At temperature 1e-310 the mixture logits overflowed to inf and the drawn value was
    NaN: the compiled kernel turned it into an index anywhere in memory (the process died
    of a segmentation fault, `wavenet generate --temperature 1e-310` too) and the torch
    loop into an IndexError; so did NaN outputs of a diverged model. Now the vanishing
    temperature takes the heaviest component's mean, as temperature 0 does; a model with
    NaN weights is refused by `generate` (issue 27 item 8), and below it every generator
    still reads a NaN value as 0.0 (code 32768:
    test_generation.py::test_generators_still_read_nan_outputs_as_silence_under_generate_s_check)."""
    model = mol_model()
    heaviest_mean = generate(model, 30, batch_size=2, temperature=0.0, method=method)
    assert torch.equal(
        generate(model, 30, batch_size=2, temperature=1e-310, generator=seeded(), method=method),
        heaviest_mean,
    )
    with torch.no_grad():
        bias_of(model.head_out).fill_(float("nan"))
    with pytest.raises(InvalidArgumentError, match="NaN or infinite weights"):
        generate(model, 5, batch_size=2, generator=seeded(), method=method)


def test_the_mol_kernel_is_close_to_torch_in_float32() -> None:
    model = mol_model(dtype=torch.float32)
    codes = torch.randint(0, 65536, (2, 50), generator=seeded(7))
    torch_gen, numba_gen = FastGenerator(model, 2), NumbaGenerator(model, 2)
    torch.testing.assert_close(numba_gen.feed(codes), torch_gen.feed(codes), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- data


def test_pcm16_codes_round_trip_16_bit_files_exactly(tmp_path: Path) -> None:
    samples = np.array([-32768, -32767, -1, 0, 1, 12345, 32767] * 200, dtype=np.int16)
    sf.write(tmp_path / "a.wav", samples, SAMPLE_RATE, subtype="PCM_16")
    encoded = load_encoded(
        tmp_path, sample_rate=SAMPLE_RATE, coding="pcm16", cache_dir=tmp_path / "cache"
    )
    codes = np.asarray(encoded.files[0].codes)
    assert codes.dtype == np.uint16 and encoded.quantization_channels == 65536
    assert np.array_equal(codes.astype(np.int64), samples.astype(np.int64) + 32768)
    assert np.array_equal(pcm16_samples(torch.from_numpy(codes.astype(np.int64))), samples)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [PCM16_CACHE]
    again = load_encoded(
        tmp_path, sample_rate=SAMPLE_RATE, coding="pcm16", cache_dir=tmp_path / "cache"
    )
    assert np.array_equal(np.asarray(again.files[0].codes), codes)
    mu_law = load_encoded(tmp_path, sample_rate=SAMPLE_RATE, cache_dir=tmp_path / "cache")
    assert np.asarray(mu_law.files[0].codes).dtype == np.uint8
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [CODES_CACHE, PCM16_CACHE]


def test_pcm16_encode_rounds_and_clips() -> None:
    waveform = torch.tensor([-2.0, -1.0, -0.5, 0.0, 1.4e-5, 0.5, 0.99999, 1.5])
    codes = pcm16_encode(waveform)
    assert codes.tolist() == [0, 0, 16384, 32768, 32768, 49152, 65535, 65535]
    assert pcm16_decode(torch.tensor([0, 32768, 65535])).tolist() == [-1.0, 0.0, 32767 / 32768]


# -------------------------------------------------------------------- end to end


def write_sines(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    for i, f in enumerate((220.0, 330.0, 440.0)):
        audio = 0.4 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 2.5 * f * t + i)
        sf.write(folder / f"sine {i}.wav", audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return folder


def test_tiny_mol_model_trained_on_sines_writes_16_bit_audio(tmp_path: Path) -> None:
    data, run = write_sines(tmp_path / "data"), tmp_path / "run"
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--config",
        "tiny",
        "--steps",
        "40",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--set",
        "model.output=mol",
        "--set",
        "model.mixtures=4",
    ]
    for item in FAST:
        args += ["--set", item]
    runner = CliRunner()
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_bits = [r["train_bits"] for r in records if "train_bits" in r]
    assert train_bits[-1] < train_bits[0] - 2.0  # from ~17 bits at the start
    assert (tmp_path / "cache" / PCM16_CACHE).is_dir()
    assert not (tmp_path / "cache" / CODES_CACHE).exists()

    result = runner.invoke(
        main,
        ["eval", str(run), "--data", str(data), "--json", "--cache-dir", str(tmp_path / "cache")],
    )
    assert result.exit_code == 0, result.output
    bits = json.loads(result.output.strip().splitlines()[-1])["bits_per_sample"]
    assert 0 < bits < 16

    out = tmp_path / "out.wav"
    result = runner.invoke(
        main,
        [
            "generate",
            str(run),
            "--out",
            str(out),
            "--samples",
            "4000",
            "--seed",
            "1",
            "--prime",
            str(data / "sine 0.wav"),
        ],
    )
    assert result.exit_code == 0, result.output
    info = sf.info(out)
    assert info.subtype == "PCM_16" and info.frames == 4000
    written, _ = sf.read(out, dtype="int16")
    assert len(np.unique(written)) > 256
