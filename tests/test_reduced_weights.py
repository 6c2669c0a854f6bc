"""Reduced-precision weights (wavenet/generation/reduced.py): the numba kernel with bfloat16
or int8 weights computes what PyTorch computes on `reduced_model`, the float32 copy whose
weights hold the reduced values; the reduction itself is what its docstring says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KERNEL3

import wavenet
from wavenet import ModelConfig, WaveNet
from wavenet.errors import InvalidArgumentError
from wavenet.generation import kernel
from wavenet.generation.fastpath import NumbaGenerator
from wavenet.generation.incremental import FastGenerator
from wavenet.generation.reduced import (
    WEIGHT_FORMATS,
    bf16_bits,
    int8_columns,
    reduce_matrix,
    reduced_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIGS = {
    "tiny": wavenet.load_config("tiny").model,
    # Kernel 3 and odd widths: the kernel's scalar remainders read reduced weights too.
    "kernel3": KERNEL3,
    # A mixture head (padded outputs) and dilations past the time blocks.
    "mol": ModelConfig(
        residual_channels=8,
        gate_channels=16,
        skip_channels=16,
        layers_per_stack=6,
        stacks=1,
        output="mol",
        mixtures=3,
    ),
}


def make_model(name: str, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(CONFIGS[name]).eval()


@pytest.mark.parametrize("weights", ["bf16", "int8"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernel_equals_the_reduced_model(name: str, weights: str) -> None:
    model = make_model(name)
    reference = reduced_model(model, weights)
    classes, rf = model.config.classes, model.receptive_field
    # Batch 1, 3 and 16 take every path of the kernel (time blocks 16, 4 and 1).
    for batch in (1, 3, 16):
        codes = torch.randint(
            0, classes, (batch, 2 * rf + 9), generator=torch.Generator().manual_seed(batch)
        )
        with torch.no_grad():
            full = reference(codes)
            plain = model(codes)
        gen = NumbaGenerator(model, batch, weights=weights)
        steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
        torch.testing.assert_close(steps, full, rtol=1e-5, atol=2e-5)
        # ... and the reduction is seen: the float32 model's logits differ by far more.
        assert (steps - plain).abs().max() > 20 * (steps - full).abs().max()


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_kernel_and_torch_sample_the_same_codes(weights: str) -> None:
    """The kernel with reduced weights and the PyTorch loop on the reduced model draw the
    same 2 x 300 codes from the same uniforms (as float32 kernel and loop do)."""
    model = make_model("tiny")
    reference = reduced_model(model, weights)
    codes = {}
    for name, gen in (
        ("numba", NumbaGenerator(model, 2, weights=weights)),
        ("torch", FastGenerator(reference, 2)),
    ):
        # One chunk of uniform numbers for all 300 steps, (steps, B) float64.
        uniforms = torch.rand(
            (300, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64
        )
        codes[name] = gen.sample(torch.full((2, 1), 128), 300, 1.0, [(0, 300, uniforms)])
    assert codes["numba"].shape == (2, 300)
    assert torch.equal(codes["numba"], codes["torch"])


def test_int8_columns_round_each_column_to_its_own_scale() -> None:
    matrix = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    matrix[:, 2] *= 100.0  # a loud column must not coarsen the others
    matrix[:, 5] = 0.0
    q, scale = int8_columns(matrix)
    assert q.dtype == torch.int8 and scale.shape == (6,)
    assert int(q.abs().max()) == 127
    assert torch.equal(scale[5], torch.tensor(1.0)) and not q[:, 5].any()
    error = (q.float() * scale - matrix).abs()
    assert bool((error <= scale / 2 + 1e-6).all())
    assert torch.allclose(scale[:2], matrix[:, :2].abs().amax(0) / 127)


def test_bf16_keeps_the_high_half_rounded_to_nearest() -> None:
    values = torch.tensor([1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-9, -2.5, 3e-30])
    bits = bf16_bits(values).numpy().view(np.uint16).astype(np.uint32) << 16
    widened = torch.from_numpy(bits.view(np.float32))
    assert torch.equal(widened, reduce_matrix(values[:, None], "bf16")[:, 0])
    assert widened[0] == 1.0 and widened[1] in (1.0, 1.0 + 2.0**-7)
    assert widened[2] == 1.0 + 2.0**-7 and widened[3] == -2.5


def test_reduced_model_changes_only_the_products() -> None:
    model = make_model("mol")
    reduced = reduced_model(model, "int8")
    before, after = model.state_dict(), reduced.state_dict()
    for name, value in before.items():
        is_product = name.endswith("weight") and any(
            part in name for part in ("dilated", "skip", "residual", "head_")
        )
        assert torch.equal(value, after[name]) != is_product, name
    assert reduced_model(model, "float32").state_dict().keys() == before.keys()


def test_bad_formats_are_refused() -> None:
    model = make_model("tiny")
    assert WEIGHT_FORMATS == ("float32", "bf16", "int8")
    with pytest.raises(InvalidArgumentError, match="weights must be one of"):
        NumbaGenerator(model, 1, weights="fp8")
    with pytest.raises(InvalidArgumentError, match="needs a float32 model"):
        NumbaGenerator(model.double(), 1, weights="int8")
    with pytest.raises(InvalidArgumentError, match="weights must be one of"):
        reduced_model(model, "int4")


def test_the_kernel_checks_the_scales_shapes() -> None:
    gen = NumbaGenerator(make_model("tiny"), 1, weights="int8")
    weights = list(gen._weights)
    weights[13] = np.ascontiguousarray(weights[13][:, :-1])  # one column scale short
    gen._weights = tuple(weights)
    with pytest.raises(InvalidArgumentError, match="column scales"):
        gen.step(torch.tensor([3]))
    assert kernel.run is not None


@pytest.mark.parametrize("method", ["fast-numba", "fast-torch", "naive"])
def test_generate_with_reduced_weights_gives_the_same_codes_by_every_method(method: str) -> None:
    model = make_model("tiny")
    seeded = torch.Generator().manual_seed(5)
    codes = wavenet.generate(
        model, 60, batch_size=2, generator=seeded, method=method, weights="int8"
    )
    seeded.manual_seed(5)
    reference = wavenet.generate(
        reduced_model(model, "int8"), 60, batch_size=2, generator=seeded, method="fast-torch"
    )
    assert torch.equal(codes, reference)


def test_on_codes_streams_every_chunk_in_order() -> None:
    """Each chunk of codes reaches on_codes as it is drawn; together they are the result."""
    model = make_model("tiny")
    for method in ("fast-numba", "fast-torch"):
        chunks: list[torch.Tensor] = []

        def keep(codes: torch.Tensor, chunks: list[torch.Tensor] = chunks) -> None:
            chunks.append(codes.clone())

        codes = wavenet.generate(
            model,
            2500,
            batch_size=2,
            generator=torch.Generator().manual_seed(1),
            method=method,
            on_codes=keep,
        )
        assert [c.shape[1] for c in chunks] == [1024, 1024, 452]
        assert torch.equal(torch.cat(chunks, dim=1), codes)
    with pytest.raises(TypeError, match="on_codes must be callable"):
        wavenet.generate(model, 5, on_codes="stdout")  # type: ignore[arg-type]
