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
from wavenet.generation import fastpath, kernel
from wavenet.generation.fastpath import NumbaGenerator, dot_pack, int8_dot_pack
from wavenet.generation.incremental import FastGenerator
from wavenet.generation.reduced import (
    WEIGHT_FORMATS,
    bf16_bits,
    dot_logits,
    int8_columns,
    int8_rows,
    reduce_matrix,
    reduced_model,
)
from wavenet.generation.sampling import sample_codes

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
    assert WEIGHT_FORMATS == ("float32", "bf16", "int8", "bf16-dot", "int8-dot")
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


# ------------------------------------------------------------------ bf16-dot

DOT_FORMATS = [
    pytest.param(
        weights,
        marks=pytest.mark.skipif(
            not fastpath.dot_supported(weights), reason=f"this CPU cannot run {weights}"
        ),
    )
    for weights in ("bf16-dot", "int8-dot")
]


def test_dot_pack_puts_each_row_pair_beside_its_column() -> None:
    """packed[c, p, 2j + e] holds W[2p + e, 16c + j] in bfloat16; odd K and a last block
    short of 16 columns are padded with zeros."""
    matrix = torch.randn(2, 7, 21, generator=torch.Generator().manual_seed(0))
    packed = dot_pack(matrix.numpy())
    assert packed.shape == (2, 2, 4, 32) and packed.dtype == np.uint16
    bits = bf16_bits(matrix).numpy().view(np.uint16)
    for lead in range(2):
        for c in range(2):
            for p in range(4):
                for j in range(16):
                    for e in range(2):
                        k, n = 2 * p + e, 16 * c + j
                        expected = bits[lead, k, n] if k < 7 and n < 21 else 0
                        assert packed[lead, c, p, 2 * j + e] == expected, (lead, c, p, j, e)


def test_round_pairs_rounds_as_torch_does() -> None:
    """The kernel's bfloat16 rounding of a product's inputs is torch's (nearest, ties to
    even), with NaN kept a NaN and an odd K's last pair padded with 0."""
    values = torch.tensor(
        [1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -2.5, 3e-30, 1e-40, -0.0, 3.4e38, float("inf"), 0.1]
        + torch.randn(40, generator=torch.Generator().manual_seed(0)).tolist()
        + [float("nan")],
        dtype=torch.float32,
    )
    rows = values.reshape(1, -1).numpy()
    pairs = np.zeros((1, (rows.shape[1] + 1) // 2), np.uint32)
    kernel._round_pairs(rows, pairs)
    halves = np.stack([pairs & 0xFFFF, pairs >> 16], axis=-1).reshape(-1)[: rows.shape[1]]
    expected = bf16_bits(values[:-1]).numpy().view(np.uint16)
    assert np.array_equal(halves[:-1], expected)
    nan = (np.array([halves[-1]], np.uint32) << 16).view(np.float32)
    assert np.isnan(nan).all()
    assert pairs[0, -1] >> 16 == 0  # 51 values: the last pair's high half is padding


def test_int8_dot_pack_puts_four_rows_beside_their_column_then_the_scales() -> None:
    matrix = torch.randn(9, 21, generator=torch.Generator().manual_seed(0))
    packed = int8_dot_pack(matrix.numpy())
    assert packed.shape == (2, 4, 64) and packed.dtype == np.uint8
    q, scale = int8_columns(matrix)
    for c in range(2):
        for g in range(3):
            for j in range(16):
                for i in range(4):
                    k, n = 4 * g + i, 16 * c + j
                    expected = int(q[k, n]) + 128 if k < 9 and n < 21 else 128
                    assert packed[c, g, 4 * j + i] == expected, (c, g, j, i)
        scales = packed[c, 3].view(np.float32)
        width = min(16, 21 - 16 * c)
        assert np.array_equal(scales[:width], scale[16 * c : 16 * c + width].numpy())
        assert np.all(scales[width:] == 1.0)


def test_quantize_quads_is_int8_rows() -> None:
    """The kernel's int8 inputs, scale and offset are `int8_rows`' values."""
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(1)) * 3
    x[1] = 0.0  # a row of zeros: scale 1, all q 0
    quads = np.zeros((3, 3 + 2), np.uint32)
    kernel._quantize_quads(x.numpy(), quads)
    values = quads[:, :3].view(np.int8).reshape(3, 12)[:, :10].astype(np.float32)
    scales = quads[:, 3].view(np.float32)
    expected = int8_rows(x.T.unsqueeze(0))[0].T  # (3 rows, 10 values)
    assert np.array_equal(values * scales[:, None], expected.numpy())
    assert np.array_equal(quads[:, 4].view(np.int32), 128 * values.sum(1).astype(np.int32))
    assert scales[1] == 1.0 and not values[1].any()
    assert np.abs(values).max() == 127


@pytest.mark.parametrize("weights", DOT_FORMATS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_dot_kernel_computes_its_definition(name: str, weights: str) -> None:
    """The kernel with a "-dot" format gives the logits of `dot_logits` on the reduced
    model: exactly, but for inputs whose float32 sums, taken in another order, round to
    the other side of a bfloat16 or int8 step (a few, and far smaller than reducing the
    inputs or not)."""
    model = make_model(name)
    reduced = reduced_model(model, weights)
    classes, rf = model.config.classes, model.receptive_field
    for batch in (1, 3, 16):
        codes = torch.randint(
            0, classes, (batch, 2 * rf + 9), generator=torch.Generator().manual_seed(batch)
        )
        expected = dot_logits(reduced, weights, codes)
        with torch.no_grad():
            weights_only = reduced(codes)
        gen = NumbaGenerator(model, batch, weights=weights)
        steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
        error = (steps - expected).abs()
        reduction = (weights_only - expected).abs()
        # A flip lasts as long as the input is in the receptive field: one early in a
        # short run (tiny, batch 3, int8-dot: step 9 of 71) touches 7.5 % of the logits.
        assert float((error > 1e-5).float().mean()) < 0.15, batch
        assert float(error.mean()) < 0.1 * float(reduction.mean()), batch


@pytest.mark.parametrize("weights", DOT_FORMATS)
def test_dot_kernel_samples_the_codes_of_its_definition(weights: str) -> None:
    """Codes the kernel samples with a "-dot" format are those that the sampling rule
    picks from `dot_logits`' logits with the same uniforms, fed the same codes."""
    model = make_model("tiny")
    reduced = reduced_model(model, weights)
    uniforms = torch.rand((300, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    gen = NumbaGenerator(model, 2, weights=weights)
    prime = torch.full((2, 1), 128)
    codes = gen.sample(prime, 300, 1.0, [(0, 300, uniforms)])
    logits = dot_logits(reduced, weights, torch.cat([prime, codes], dim=1))
    picked = torch.stack(
        [sample_codes(logits[:, :, t], 1.0, uniforms[t]) for t in range(300)], dim=1
    )
    assert float((picked == codes).float().mean()) >= 0.99
    assert len(set(codes.flatten().tolist())) > 20  # sampled, not stuck on one code


@pytest.mark.parametrize("weights", ["bf16-dot", "int8-dot"])
def test_dot_formats_are_refused_where_they_cannot_run(
    monkeypatch: pytest.MonkeyPatch, weights: str
) -> None:
    model = make_model("tiny")
    with pytest.raises(InvalidArgumentError, match="method 'naive' cannot run it"):
        wavenet.generate(model, 10, method="naive", weights=weights)
    from llvmlite import binding

    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: {})
    with pytest.raises(InvalidArgumentError, match=r"needs a CPU with avx512_(bf16|vnni)"):
        NumbaGenerator(model, 1, weights=weights)
    assert not fastpath.dot_supported(weights)
    monkeypatch.setattr(
        binding, "get_host_cpu_features", lambda: {"avx512bf16": True, "avx512vnni": True}
    )
    monkeypatch.setattr(binding, "llvm_version_info", (14, 0, 6))
    with pytest.raises(InvalidArgumentError, match="LLVM 22 or newer.*not 14.0.6"):
        NumbaGenerator(model, 1, weights=weights)


def test_auto_resolves_to_int8_dot_only_where_it_was_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wavenet.generation.driver import resolve_weights

    model = make_model("tiny")
    monkeypatch.setattr(fastpath, "dot_supported", lambda weights: True)
    assert resolve_weights(model, "auto") == "int8-dot"
    assert resolve_weights(model, "auto", "fast-torch") == "float32"
    assert resolve_weights(model.double(), "auto") == "float32"
    assert resolve_weights(make_model("mol"), "auto") == "float32"  # a mixture head
    assert resolve_weights(model.float(), "bf16") == "bf16"  # a named format as it is
    monkeypatch.setattr(fastpath, "dot_supported", lambda weights: False)
    assert resolve_weights(model, "auto") == "float32"
    with pytest.raises(InvalidArgumentError, match="weights must be one of"):
        resolve_weights(model, "fastest")
