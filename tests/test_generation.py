"""Generation invariants: incremental logits equal the full forward, every method samples
the same codes for the same seed, priming is feeding, and bad arguments are refused."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import KERNEL3

import wavenet
from wavenet import ModelConfig, WaveNet, generate
from wavenet.errors import InvalidArgumentError, InvalidTypeError, WavenetError
from wavenet.generation import driver as generation
from wavenet.generation import sampling
from wavenet.generation.fastpath import NumbaGenerator, time_block
from wavenet.generation.incremental import (
    CodeGenerator,
    FastGenerator,
    IncrementalState,
    StepConditioning,
)
from wavenet.generation.naive import NaiveGenerator
from wavenet.generation.sampling import sample_codes, uniform_chunks
from wavenet.nn.layers import bias_of

CONFIGS = {
    "tiny": wavenet.load_config("tiny").model,
    "kernel3": KERNEL3,
    # Dilations up to 32, so that past taps are gathered over fewer steps than the dilation.
    "deep": ModelConfig(
        residual_channels=8, gate_channels=8, skip_channels=8, layers_per_stack=6, stacks=1
    ),
}
GENERATORS = {"torch": FastGenerator, "numba": NumbaGenerator}
FAST_METHODS = ("fast-torch", "fast-numba")


# Tiny models on one thread (conftest.py: one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(name: str, dtype: torch.dtype = torch.float64, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(CONFIGS[name]).to(dtype).eval()


def seeded(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("kind", list(GENERATORS))
def test_teacher_forced_logits_equal_full_forward(kind: str, name: str, dtype: torch.dtype) -> None:
    model = make_model(name, dtype)
    q, rf = model.config.quantization_channels, model.receptive_field
    # Batch 1, 3 and 16 take every path of the numba kernel (time blocks 16, 4 and 1).
    for batch in (1, 3, 16) if kind == "numba" else (2,):
        codes = torch.randint(0, q, (batch, 2 * rf + 9), generator=seeded(batch))
        with torch.no_grad():
            full = model(codes)
        gen = GENERATORS[kind](model, batch)
        steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
        assert gen.position == codes.shape[1]
        if dtype == torch.float64:
            torch.testing.assert_close(steps, full, rtol=1e-11, atol=1e-11)
        else:
            torch.testing.assert_close(steps, full)


def test_time_blocks_cover_the_kernel_paths() -> None:
    assert [time_block(d, 1) for d in (1, 2, 8, 32, 512)] == [1, 2, 8, 16, 16]
    assert [time_block(d, 3) for d in (1, 2, 8)] == [1, 2, 4]
    assert time_block(512, 16) == 1


@pytest.mark.parametrize("method", FAST_METHODS)
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_fast_and_naive_sample_identical_codes(
    method: str, temperature: float, batch_size: int
) -> None:
    model = make_model("tiny")
    n = 2 * model.receptive_field + 10
    naive = generate(
        model, n, batch_size=batch_size, temperature=temperature, generator=seeded(), method="naive"
    )
    fast = generate(
        model, n, batch_size=batch_size, temperature=temperature, generator=seeded(), method=method
    )
    assert naive.shape == (batch_size, n) and naive.dtype == torch.long
    assert torch.equal(fast, naive)
    if temperature > 0 and batch_size > 1:
        assert not torch.equal(fast[0], fast[1])  # the streams are independent


@pytest.mark.parametrize("method", FAST_METHODS)
def test_fast_and_naive_agree_with_kernel_3_and_a_prime(method: str) -> None:
    model = make_model("kernel3")
    prime = torch.randint(0, 11, (2, 40), generator=seeded(5))
    kwargs: dict[str, Any] = dict(batch_size=2, temperature=0.8, prime=prime)
    naive = generate(model, 50, generator=seeded(), method="naive", **kwargs)
    assert torch.equal(generate(model, 50, generator=seeded(), method=method, **kwargs), naive)


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_priming_equals_feeding_the_prime_one_code_at_a_time(kind: str) -> None:
    model = make_model("tiny")
    prime = torch.randint(0, 256, (2, 45), generator=seeded(3))
    n = 30
    method = {"torch": "fast-torch", "numba": "fast-numba"}[kind]
    primed = generate(model, n, batch_size=2, prime=prime, generator=seeded(), method=method)

    gen = GENERATORS[kind](model, 2)
    for t in range(prime.shape[1]):
        logits = gen.step(prime[:, t])
    codes = []
    for start, stop, uniforms in uniform_chunks(n, 2, 1.0, seeded()):
        assert uniforms is not None
        for i in range(start, stop):
            codes.append(sample_codes(logits, 1.0, uniforms[i - start]))
            logits = gen.step(codes[-1])
    assert torch.equal(primed, torch.stack(codes, dim=1))


@pytest.mark.parametrize("method", generation.METHODS)
def test_a_long_prime_feeds_only_its_last_receptive_field(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prime longer than the receptive field was fed whole, one step per code: a minute
    of --prime cost a minute of generation steps before the first sample. Only its last
    receptive_field codes can reach a generated code, so only those are fed, and the
    codes are those of the whole prime (the full forward's prediction included)."""
    model = make_model("tiny")
    rf = model.receptive_field
    prime = torch.randint(0, 256, (2, 40 * rf), generator=seeded(6))
    fed: list[int] = []
    real_feed = CodeGenerator.feed

    def counting_feed(self: CodeGenerator, codes: torch.Tensor) -> torch.Tensor:
        fed.append(codes.shape[1])
        return real_feed(self, codes)

    monkeypatch.setattr(CodeGenerator, "feed", counting_feed)
    kwargs: dict[str, Any] = dict(batch_size=2, temperature=0.9, method=method)
    long = generate(model, 30, prime=prime, generator=seeded(), **kwargs)
    assert fed == [rf]
    assert torch.equal(
        long, generate(model, 30, prime=prime[:, -rf:], generator=seeded(), **kwargs)
    )
    first = generate(model, 1, batch_size=2, temperature=0.0, prime=prime, method=method)
    assert torch.equal(first[:, 0], model(prime)[:, :, -1].argmax(dim=1))


def test_a_one_dimensional_prime_is_shared_by_every_stream() -> None:
    model = make_model("tiny")
    prime = torch.randint(0, 256, (20,), generator=seeded(4))
    shared = generate(model, 25, batch_size=3, prime=prime, generator=seeded())
    repeated = generate(model, 25, batch_size=3, prime=prime.expand(3, -1), generator=seeded())
    assert torch.equal(shared, repeated)


def test_no_prime_starts_from_one_silent_code() -> None:
    model = make_model("tiny")
    silent = torch.tensor([128])
    assert torch.equal(
        generate(model, 20, generator=seeded()),
        generate(model, 20, prime=silent, generator=seeded()),
    )


@pytest.mark.parametrize("method", generation.METHODS)
def test_a_vanishing_temperature_draws_the_most_likely_code(method: str) -> None:
    """Logits divided by a temperature of 1e-310 (accepted: finite and > 0) overflowed to
    inf, their differences were NaN, and every draw came out as the last code (255)."""
    model = make_model("tiny")
    kwargs: dict[str, Any] = dict(
        batch_size=2, prime=torch.randint(0, 256, (2, 10), generator=seeded(7)), method=method
    )
    most_likely = generate(model, 40, temperature=0.0, **kwargs)
    for temperature in (1e-310, 5e-324):
        assert torch.equal(
            generate(model, 40, temperature=temperature, generator=seeded(), **kwargs), most_likely
        )


@pytest.mark.parametrize("method", ["fast", "naive"])
def test_seeded_runs_are_reproducible(method: str) -> None:
    model = make_model("tiny", torch.float32)
    first = generate(model, 40, batch_size=2, generator=seeded(7), method=method)
    again = generate(model, 40, batch_size=2, generator=seeded(7), method=method)
    other = generate(model, 40, batch_size=2, generator=seeded(8), method=method)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    torch.manual_seed(3)
    global_first = generate(model, 40, method=method)
    torch.manual_seed(3)
    assert torch.equal(global_first, generate(model, 40, method=method))


def test_temperature_zero_draws_no_random_numbers() -> None:
    model = make_model("tiny")
    gen = seeded(9)
    generate(model, 10, temperature=0.0, generator=gen)
    assert torch.equal(gen.get_state(), seeded(9).get_state())


def test_float32_numba_and_torch_paths_agree() -> None:
    """In float32 the logits differ in the last bits, which flips a code only when a uniform
    lands within ~1e-6 of a boundary: over 2 x 300 samples that does not happen here."""
    model = make_model("tiny", torch.float32)
    kwargs: dict[str, Any] = dict(batch_size=2, generator=None, temperature=1.0)
    codes = {}
    for method in FAST_METHODS:
        kwargs["generator"] = seeded()
        codes[method] = generate(model, 300, **kwargs, method=method)
    assert torch.equal(codes["fast-torch"], codes["fast-numba"])


def test_fast_picks_the_numba_kernel_on_the_cpu() -> None:
    assert generation._pick_fast_method(make_model("tiny", torch.float32)) == "fast-numba"
    assert generation._pick_fast_method(make_model("tiny", torch.float64)) == "fast-numba"
    assert generation._pick_fast_method(make_model("tiny", torch.bfloat16)) == "fast-torch"


def test_bfloat16_falls_back_to_the_torch_loop() -> None:
    model = make_model("tiny", torch.bfloat16)
    fast = generate(model, 12, batch_size=2, generator=seeded())
    assert torch.equal(
        fast, generate(model, 12, batch_size=2, generator=seeded(), method="fast-torch")
    )
    with pytest.raises(ValueError, match="float32 or float64"):
        NumbaGenerator(model)


def test_progress_reports_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "UNIFORM_CHUNK", 8)
    model = make_model("tiny")
    for method in ("fast-torch", "fast-numba", "naive"):
        calls: list[tuple[int, int]] = []

        def progress(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
            calls.append((done, total))

        generate(model, 20, method=method, progress=progress)
        assert calls == [(8, 20), (16, 20), (20, 20)]


def test_chunked_uniforms_give_the_same_codes_across_methods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sampling, "UNIFORM_CHUNK", 7)
    model = make_model("tiny")
    codes = [
        generate(model, 30, batch_size=2, generator=seeded(), method=m)
        for m in ("naive", "fast-torch", "fast-numba")
    ]
    assert torch.equal(codes[0], codes[1]) and torch.equal(codes[0], codes[2])


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_state_is_explicit_and_resettable(kind: str) -> None:
    model = make_model("tiny")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    attributes = set(vars(model))
    codes = torch.randint(0, 256, (2, 40), generator=seeded(2))
    gen = GENERATORS[kind](model, 2)
    first = gen.feed(codes)
    assert isinstance(gen.state, IncrementalState)
    assert any(ring.abs().sum() > 0 for ring in gen.state.rings)
    gen.reset()
    assert gen.position == 0 and all(ring.abs().sum() == 0 for ring in gen.state.rings)
    assert torch.equal(gen.feed(codes), first)
    # Nothing was stored on the module, and its weights are untouched.
    assert set(vars(model)) == attributes
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert list(model.buffers()) == []


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_step_rejects_bad_codes(kind: str) -> None:
    gen = GENERATORS[kind](make_model("tiny"), 2)
    with pytest.raises(ValueError, match="shape"):
        gen.step(torch.zeros(3, dtype=torch.long))
    with pytest.raises(InvalidTypeError, match="integer"):
        gen.step(torch.zeros(2))
    with pytest.raises(
        InvalidArgumentError, match=r"codes must be in \[0, 255\], found values in \[0, 256\]"
    ):
        gen.step(torch.tensor([0, 256]))  # an IndexError in the embedding before
    with pytest.raises(ValueError, match=r"batch_size=2"):
        gen.feed(torch.zeros(2, 0, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(batch_size=0), "batch_size"),
        (dict(temperature=-0.1), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(temperature=float("inf")), "temperature"),
        (dict(method="slow"), "unknown method 'slow'"),
        (dict(generator=0), "generator"),
        (dict(progress="yes"), "progress"),
        (dict(prime=torch.tensor([1, 256])), r"prime codes must be in \[0, 255\]"),
        (dict(prime=torch.tensor([-1, 3])), r"prime codes must be in \[0, 255\]"),
        (dict(prime=torch.tensor([0.5, 1.0])), "integer codes"),
        (
            dict(prime=torch.zeros(2, 5, dtype=torch.long), batch_size=3),
            r"\(T,\) or \(batch_size=3",
        ),
        (dict(prime=torch.zeros(0, dtype=torch.long)), "at least one code"),
        (dict(prime=[1, 2, 3]), "LongTensor"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    model = make_model("tiny")
    arguments: dict[str, Any] = dict(n_samples=5)
    arguments.update(kwargs)
    n_samples = arguments.pop("n_samples")
    with pytest.raises(WavenetError, match=match):
        generate(model, n_samples, **arguments)


def test_naive_steps_equal_full_forward_and_reset() -> None:
    model = make_model("tiny")
    rf = model.receptive_field
    codes = torch.randint(0, 256, (2, rf + 20), generator=seeded(6))
    with torch.no_grad():
        full = model(codes)
    gen = NaiveGenerator(model, 2)
    steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
    torch.testing.assert_close(steps, full, rtol=1e-11, atol=1e-11)
    # Only the receptive field is kept: older codes cannot change the logits.
    assert gen.position == codes.shape[1] and gen.state.window.shape == (2, rf)
    gen.reset()
    assert gen.position == 0 and gen.state.window.shape == (2, 0)
    assert torch.equal(gen.feed(codes), steps[:, :, -1])


@pytest.mark.parametrize("generator_class", [FastGenerator, NaiveGenerator, NumbaGenerator])
def test_every_generator_checks_its_conditioning(
    generator_class: type[FastGenerator | NaiveGenerator | NumbaGenerator],
) -> None:
    assert issubclass(generator_class, CodeGenerator)
    torch.manual_seed(0)
    speakers = WaveNet(wavenet.load_config("tiny", ["model.global_classes=2"]).model).double()
    with pytest.raises(ValueError, match="StepConditioning"):
        generator_class(speakers, 1)
    with pytest.raises(ValueError, match="no conditioning"):
        StepConditioning(make_model("tiny"), 1, 10, global_cond=torch.tensor([0]))


def test_generate_needs_a_wavenet() -> None:
    with pytest.raises(TypeError, match="wavenet.WaveNet"):
        generate(torch.nn.Linear(2, 2), 5)  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_path_matches_naive() -> None:
    model = make_model("tiny").cuda()
    gen = torch.Generator(device="cuda").manual_seed(1)
    fast = generate(model, 80, batch_size=2, generator=gen)
    gen.manual_seed(1)
    naive = generate(model, 80, batch_size=2, generator=gen, method="naive")
    assert fast.device.type == "cuda"
    assert torch.equal(fast, naive)


def test_generators_still_read_nan_outputs_as_silence_under_generate_s_check() -> None:
    """`generate` refuses NaN weights (issue 27, item 8: they gave all-255 codes without
    a word); the generators below it keep reading a NaN mixture value as 0.0 (code 32768),
    so that no method indexes memory with it."""
    torch.manual_seed(0)
    model = (
        WaveNet(
            ModelConfig(
                quantization_channels=16,
                residual_channels=4,
                gate_channels=4,
                skip_channels=4,
                layers_per_stack=2,
                stacks=1,
                output="mol",
                mixtures=2,
            )
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        bias_of(model.head_out).fill_(float("nan"))
    with pytest.raises(InvalidArgumentError, match="NaN or infinite weights"):
        generate(model, 5, generator=seeded())
    prime = torch.full((2, 1), 32768)
    for kind in (FastGenerator, NumbaGenerator, NaiveGenerator):
        codes = kind(model, 2).sample(prime, 5, 1.0, uniform_chunks(5, 2, 1.0, seeded()))
        assert (codes == 32768).all(), kind
