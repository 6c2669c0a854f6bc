"""The library API refuses misuse in its own words (issue 27, items 8 and 14): a wrong
type is an InvalidTypeError, a wrong value an InvalidArgumentError or ConfigError, each
naming what was expected and what was found; never an IndexError or AttributeError from
deep inside torch, and never NaN weights or a NaN mel turned silently into codes.

The fuzz tests feed random dtypes, shapes and values to the public functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wavenet
from wavenet import CausalConv1d, ModelConfig, WaveNet, generate, mu_law_decode, mu_law_encode
from wavenet.config import ConfigError
from wavenet.errors import InvalidArgumentError, InvalidTypeError, WavenetError
from wavenet.io.checkpoint import load_model, save_checkpoint

SMALL = ModelConfig(
    quantization_channels=16,
    residual_channels=4,
    gate_channels=4,
    skip_channels=4,
    layers_per_stack=2,
    stacks=1,
)
SPEAKERS = ModelConfig(
    quantization_channels=16,
    residual_channels=4,
    gate_channels=4,
    skip_channels=4,
    layers_per_stack=2,
    stacks=1,
    global_classes=3,
)
VOCODER = ModelConfig(
    quantization_channels=16,
    residual_channels=4,
    gate_channels=4,
    skip_channels=4,
    layers_per_stack=2,
    stacks=1,
    local_channels=3,
    upsample_scales=(2,),
)


@pytest.fixture(scope="module")
def small() -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(SMALL).eval()


# -- item 14: each misuse is one clear error of the package's family ------------------


def test_a_whole_config_is_refused_naming_config_model() -> None:
    config = wavenet.load_config("tiny")
    with pytest.raises(
        InvalidTypeError,
        match=r"WaveNet expects a ModelConfig \(pass "
        r"config.model\), got Config",
    ):
        WaveNet(config)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="got dict"):
        WaveNet({"residual_channels": 4})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "codes,error,match",
    [
        (
            torch.tensor([[0, 16]]),
            InvalidArgumentError,
            r"codes must lie in \[0, 15\], found \[0, 16\]",
        ),
        (
            torch.tensor([[-1, 3]]),
            InvalidArgumentError,
            r"codes must lie in \[0, 15\], found \[-1, 3\]",
        ),
        (
            torch.tensor([[0.0, 1.0]]),
            InvalidTypeError,
            "codes must be an integer tensor, got torch.float32",
        ),
        (
            torch.tensor([[True]]),
            InvalidTypeError,
            "codes must be an integer tensor, got torch.bool",
        ),
        (np.zeros((1, 3), np.int64), InvalidTypeError, "codes must be a torch.Tensor, got ndarray"),
        (torch.zeros(3, dtype=torch.long), InvalidArgumentError, r"codes must be \(batch, time\)"),
    ],
)
def test_bad_codes_are_refused(small: WaveNet, codes: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        small(codes)


def test_codes_of_another_integer_dtype_are_read_as_codes(small: WaveNet) -> None:
    codes = torch.tensor([[1, 5, 15, 0]])
    with torch.no_grad():
        torch.testing.assert_close(small(codes.to(torch.int32)), small(codes))
        torch.testing.assert_close(small(codes.to(torch.uint8)), small(codes))


def test_bad_global_conditioning_is_refused() -> None:
    model = WaveNet(SPEAKERS)
    codes = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(
        InvalidTypeError, match="global_cond must hold integer ids, got torch.float32"
    ):
        model(codes, global_cond=torch.tensor([0.0, 1.0]))
    with pytest.raises(
        InvalidArgumentError, match=r"global ids must be in \[0, 3\), found \[0, 3\]"
    ):
        model(codes, global_cond=torch.tensor([0, 3]))
    with pytest.raises(InvalidTypeError, match="mel must be a float tensor"):
        WaveNet(VOCODER)(codes, mel=torch.zeros(2, 3, 5, dtype=torch.long))


def test_load_model_refuses_an_unknown_device(tmp_path: Path) -> None:
    config = wavenet.Config(model=SMALL)
    path = tmp_path / "m.pt"
    save_checkpoint(path, config=config, model=WaveNet(SMALL).state_dict(), step=0)
    with pytest.raises(InvalidArgumentError, match=r"device bogus: give cpu or cuda"):
        load_model(path, device="bogus")
    with pytest.raises(InvalidTypeError, match="device must be a str or a torch.device, got int"):
        load_model(path, device=3)  # type: ignore[arg-type]
    assert load_model(path, device="cpu")[0].embedding.weight.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (
            {"residual_channels": 16.5},
            ConfigError,
            "model.residual_channels: expected int, got 16.5",
        ),
        ({"kernel_size": "2"}, ConfigError, "model.kernel_size: expected int, got '2'"),
        ({"stacks": True}, ConfigError, "model.stacks: expected int, got True"),
        ({"upsample_scales": (2, 0.5)}, ConfigError, r"model.upsample_scales\[1\]: expected int"),
        ({"output": None}, ConfigError, "model.output: expected str, got None"),
    ],
)
def test_model_config_checks_the_types_of_its_fields(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"dilation": 0}, InvalidArgumentError, "CausalConv1d dilation must be >= 1, got 0"),
        ({"kernel_size": 0}, InvalidArgumentError, "CausalConv1d kernel_size must be >= 1, got 0"),
        ({"dilation": 1.5}, InvalidTypeError, "CausalConv1d dilation must be an int, got float"),
        (
            {"in_channels": -2},
            InvalidArgumentError,
            "CausalConv1d in_channels must be >= 1, got -2",
        ),
    ],
)
def test_causal_conv_checks_its_sizes(kwargs: dict, error: type, match: str) -> None:
    arguments = {"in_channels": 2, "out_channels": 3, "kernel_size": 2, "dilation": 1} | kwargs
    with pytest.raises(error, match=match):
        CausalConv1d(**arguments)


def test_causal_conv_checks_its_input() -> None:
    conv = CausalConv1d(2, 3, 2, dilation=2)
    with pytest.raises(
        InvalidArgumentError, match=r"x must be \(batch, 2, time >= 1\), got \(1, 3, 4\)"
    ):
        conv(torch.zeros(1, 3, 4))
    with pytest.raises(InvalidTypeError, match="x must be a torch.float32 tensor, got torch.int64"):
        conv(torch.zeros(1, 2, 4, dtype=torch.long))
    assert conv(torch.zeros(1, 2, 4)).shape == (1, 3, 4)


# -- item 8: NaN weights or a NaN mel are refused, not turned into codes ---------------


def test_generate_refuses_nan_weights(small: WaveNet) -> None:
    broken = WaveNet(SMALL)
    broken.load_state_dict(small.state_dict())
    with torch.no_grad():
        broken.residual_blocks()[1].skip.weight[0, 0, 0] = float("nan")
    for method in ("fast", "fast-torch", "naive"):
        with pytest.raises(
            InvalidArgumentError,
            match=r"NaN or infinite weights \(1 tensor\(s\), "
            r"the first blocks.1.skip.weight\)",
        ):
            generate(broken, 10, method=method)


def test_generate_refuses_a_nan_mel() -> None:
    torch.manual_seed(0)
    model = WaveNet(VOCODER).eval()
    mel = torch.zeros(1, 3, 4)
    assert generate(model, 8, mel=mel).shape == (1, 8)
    mel[0, 1, 2] = float("nan")
    with pytest.raises(InvalidArgumentError, match=r"the mel holds 1 NaN or infinite value\(s\)"):
        generate(model, 8, mel=mel)


# -- fuzz: random dtypes, shapes and values into the public functions -----------------

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = (WavenetError, ValueError, TypeError)
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
    torch.complex64,
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(),
    st.text(max_size=6),
    st.just(()),
    st.just([1, 2]),
)


@st.composite
def tensors(draw: st.DrawFn, max_dims: int = 3) -> object:
    """A tensor of a random dtype, shape and values (ints, floats, NaN, inf), or now and
    then something that is not a tensor at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(SCALARS, st.just(np.zeros((1, 3)))))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=max_dims)))
    dtype = draw(st.sampled_from(DTYPES))
    count = int(np.prod(shape)) if shape else 1
    values = draw(
        st.lists(
            st.one_of(st.integers(-300, 300), st.floats(allow_nan=True)),
            min_size=count,
            max_size=count,
        )
    )
    array = np.array(values, dtype=np.float64).reshape(shape)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.from_numpy(array).to(dtype)
    return torch.from_numpy(np.asarray(np.nan_to_num(array, posinf=1, neginf=-1).round())).to(dtype)


T = TypeVar("T")


def call(function: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """The function's result, or None when it raised one of the allowed errors."""
    try:
        with torch.no_grad():
            return function(*args, **kwargs)
    except ALLOWED:
        return None


@FUZZ
@given(x=tensors(), q=st.one_of(st.integers(-3, 300), SCALARS))
def test_fuzz_mu_law(x: object, q: object) -> None:
    call(mu_law_encode, x, q)
    call(mu_law_decode, x, q)  # complex codes too: torch's NotImplementedError before


@FUZZ
@given(codes=tensors(), global_cond=tensors(1), mel=tensors(), which=st.integers(0, 2))
def test_fuzz_forward(codes: object, global_cond: object, mel: object, which: int) -> None:
    model = WaveNet([SMALL, SPEAKERS, VOCODER][which])
    call(model, codes)
    call(model, codes, global_cond=global_cond)
    call(model, codes, mel=mel)


@FUZZ
@given(x=tensors(), sizes=st.lists(st.one_of(st.integers(-2, 4), SCALARS), min_size=4, max_size=4))
def test_fuzz_causal_conv(x: object, sizes: list) -> None:
    conv = call(CausalConv1d, *sizes)
    if conv is not None:
        call(conv, x)
    call(CausalConv1d(2, 3, 2, dilation=2), x)


@FUZZ
@given(
    n=st.one_of(st.integers(-2, 5), SCALARS),
    batch=st.one_of(st.integers(-2, 3), SCALARS),
    temperature=st.one_of(st.floats(), SCALARS),
    prime=st.one_of(st.none(), tensors(2)),
    method=st.sampled_from(["fast", "fast-numba", "fast-torch", "naive", "x", None]),
    mel=st.one_of(st.none(), tensors()),
    global_cond=st.one_of(st.none(), tensors(1)),
)
def test_fuzz_generate(
    small: WaveNet,
    n: object,
    batch: object,
    temperature: object,
    prime: object,
    method: object,
    mel: object,
    global_cond: object,
) -> None:
    codes = call(
        generate,
        small,
        n,
        batch_size=batch,
        temperature=temperature,
        prime=prime,
        method=method,
        mel=mel,
        global_cond=global_cond,
    )
    if codes is not None:
        assert isinstance(codes, torch.Tensor) and codes.shape == (batch, n)
        assert int(codes.min()) >= 0 and int(codes.max()) < 16


@FUZZ
@given(
    device=st.one_of(
        st.text(max_size=8),
        st.sampled_from(["cpu", "cuda", "cuda:7", "meta", "mps", "cpu:0"]),
        SCALARS,
    ),
    name=st.text(max_size=8),
)
def test_fuzz_load_model(
    tmp_path_factory: pytest.TempPathFactory, device: object, name: str
) -> None:
    folder = tmp_path_factory.mktemp("models")
    path = folder / "m.pt"
    save_checkpoint(
        path, config=wavenet.Config(model=SMALL), model=WaveNet(SMALL).state_dict(), step=0
    )
    call(load_model, path, device=device)
    call(load_model, folder / name, device="cpu")


FIELDS = [
    "quantization_channels",
    "residual_channels",
    "gate_channels",
    "skip_channels",
    "kernel_size",
    "layers_per_stack",
    "stacks",
    "global_classes",
    "global_channels",
    "local_channels",
    "upsample_scales",
    "output",
    "mixtures",
]


@FUZZ
@given(
    values=st.dictionaries(
        st.sampled_from(FIELDS),
        st.one_of(st.integers(-3, 2**40), SCALARS, st.lists(st.integers(-2, 5), max_size=3)),
        max_size=4,
    )
)
def test_fuzz_model_config(values: dict) -> None:
    config = call(ModelConfig, **values)
    # Whatever the validator accepts builds; small enough ones run.
    if (
        config is not None
        and config.receptive_field < 5000
        and wavenet.config.model_parameters(config) < 200_000
    ):
        model = WaveNet(config)
        speaker = None if config.global_classes is None else torch.zeros(1, dtype=torch.long)
        mel = None if config.local_channels is None else torch.zeros(1, config.local_channels, 3)
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, dtype=torch.long), global_cond=speaker, mel=mel)
        assert logits.shape == (1, config.output_channels, 3)
