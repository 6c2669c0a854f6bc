"""Every model shape the config validator accepts runs in every generator (kernel_size 1,
one layer, odd channel counts, long kernels), and the numba kernel checks its arrays
against its layout once per call, so that its memory safety does not rest on the config
check alone (issue 27, item 2: kernel_size 1 corrupted the heap in the kernel and divided
by zero in the PyTorch step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba.core.errors import TypingError

from wavenet import ModelConfig, WaveNet, generate
from wavenet.generation import fastpath
from wavenet.generation.fastpath import NumbaGenerator
from wavenet.generation.incremental import FastGenerator
from wavenet.generation.naive import NaiveGenerator

ODD = {
    # A 1-tap "dilated" convolution is a 1x1: no ring buffers at all.
    "kernel1": ModelConfig(
        quantization_channels=11,
        residual_channels=5,
        gate_channels=6,
        skip_channels=7,
        kernel_size=1,
        layers_per_stack=3,
        stacks=2,
    ),
    "kernel1-one-layer": ModelConfig(
        quantization_channels=7,
        residual_channels=3,
        gate_channels=2,
        skip_channels=1,
        kernel_size=1,
        layers_per_stack=1,
        stacks=1,
    ),
    "one-layer": ModelConfig(
        quantization_channels=5,
        residual_channels=1,
        gate_channels=2,
        skip_channels=1,
        kernel_size=2,
        layers_per_stack=1,
        stacks=1,
    ),
    "kernel4": ModelConfig(
        quantization_channels=5,
        residual_channels=3,
        gate_channels=4,
        skip_channels=5,
        kernel_size=4,
        layers_per_stack=3,
        stacks=1,
    ),
    # Dilations up to 16 with 4 past taps: the kernel's gathered past taps (time blocks).
    "kernel5-deep": ModelConfig(
        quantization_channels=3,
        residual_channels=2,
        gate_channels=2,
        skip_channels=3,
        kernel_size=5,
        layers_per_stack=5,
        stacks=1,
    ),
    "mol-kernel1": ModelConfig(
        quantization_channels=16,
        residual_channels=3,
        gate_channels=4,
        skip_channels=5,
        kernel_size=1,
        layers_per_stack=2,
        stacks=1,
        output="mol",
        mixtures=2,
    ),
}
GENERATORS = {"torch": FastGenerator, "numba": NumbaGenerator, "naive": NaiveGenerator}


# Tiny models on one thread (conftest.py: one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(name: str) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(ODD[name]).double().eval()


@pytest.mark.parametrize("kind", list(GENERATORS))
@pytest.mark.parametrize("name", list(ODD))
def test_every_generator_steps_every_accepted_shape(name: str, kind: str) -> None:
    model = make_model(name)
    rf = model.receptive_field
    for batch in (1, 3, 16) if kind == "numba" else (2,):
        codes = torch.randint(
            0,
            model.config.classes,
            (batch, 2 * rf + 7),
            generator=torch.Generator().manual_seed(batch),
        )
        with torch.no_grad():
            full = model(codes)
        gen = GENERATORS[kind](model, batch)
        steps = torch.stack([gen.step(codes[:, t]) for t in range(codes.shape[1])], dim=-1)
        torch.testing.assert_close(steps, full, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", list(ODD))
def test_every_method_samples_the_same_codes_for_every_accepted_shape(name: str) -> None:
    model = make_model(name)
    prime = torch.randint(
        0, model.config.classes, (2, 5), generator=torch.Generator().manual_seed(3)
    )
    codes = {
        method: generate(
            model,
            40,
            batch_size=2,
            temperature=0.9,
            prime=prime,
            generator=torch.Generator().manual_seed(1),
            method=method,
        )
        for method in ("naive", "fast-torch", "fast-numba")
    }
    assert torch.equal(codes["fast-torch"], codes["naive"])
    assert torch.equal(codes["fast-numba"], codes["naive"])


# -- the kernel's own checks: a wrong array is an error, never a write out of bounds ---


def _generator(batch: int = 2, weights: str = "float32") -> NumbaGenerator:
    torch.manual_seed(0)
    model = WaveNet(
        ModelConfig(
            quantization_channels=11,
            residual_channels=5,
            gate_channels=6,
            skip_channels=7,
            kernel_size=3,
            layers_per_stack=3,
            stacks=1,
        )
    ).eval()
    return NumbaGenerator(model, batch, weights=weights)


def _replace(items: tuple, index: int, value: object) -> tuple:
    return items[:index] + (value,) + items[index + 1 :]


def test_the_kernel_refuses_a_ring_smaller_than_the_layers_spans() -> None:
    gen = _generator()
    ring, pending = gen._state_arrays
    gen._state_arrays = (np.ascontiguousarray(ring[:-1]), pending)
    with pytest.raises(ValueError, match="ring buffer"):
        gen.step(torch.tensor([1, 2]))


def test_the_kernel_refuses_dilations_beyond_its_ring() -> None:
    gen = _generator()
    layout = gen._layout
    gen._layout = _replace(layout, 0, layout[0] * 4)
    with pytest.raises(ValueError, match="ring buffer"):
        gen.step(torch.tensor([1, 2]))


def test_the_kernel_refuses_a_time_block_that_does_not_divide_the_dilation() -> None:
    gen = _generator(batch=1)
    layout = gen._layout
    gen._layout = _replace(layout, 3, np.array([1, 2, 3], dtype=np.int64))
    with pytest.raises(ValueError, match="time block"):
        gen.step(torch.tensor([1]))


@pytest.mark.parametrize(
    "index,shape,match",
    [
        (0, (2, 4), "scratch"),  # x narrower than residual_channels
        (1, (2, 10), "scratch"),  # the taps row holds kernel_size x residual_channels
        (4, (2, 11), "scratch"),  # out = residual + skip
        (7, (2, 8), "scratch"),  # logits narrower than the model's outputs
        (2, (3, 6), "scratch"),  # another batch size
    ],
)
def test_the_kernel_refuses_scratch_arrays_of_the_wrong_shape(
    index: int, shape: tuple, match: str
) -> None:
    gen = _generator()
    gen._scratch = _replace(gen._scratch, index, np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=match):
        gen.step(torch.tensor([1, 2]))


@pytest.mark.parametrize("index,cut", [(0, 1), (3, 1), (5, 1), (10, 1)])
def test_the_kernel_refuses_weights_that_do_not_match_the_layout(index: int, cut: int) -> None:
    gen = _generator()
    weights = gen._weights
    gen._weights = _replace(weights, index, np.ascontiguousarray(weights[index][cut:]))
    with pytest.raises(ValueError, match="weight"):
        gen.step(torch.tensor([1, 2]))


def test_the_kernel_refuses_too_few_uniforms_and_conditioning_rows() -> None:
    from wavenet.generation import kernel

    gen = _generator()
    out = np.zeros((4, 2), np.int64)
    fed = np.ones((1, 2), np.int64)
    cond = np.zeros((2, 3, 2, 6), np.float32)  # 4 steps need 4 rows
    with pytest.raises(ValueError, match="uniform"):
        kernel.run(
            gen._weights,
            gen._layout,
            gen._state_arrays,
            gen._scratch,
            0,
            True,
            fed,
            gen._cdf,
            np.zeros((3, 2)),
            1.0,
            out,
            False,
            gen._no_conditioning,
            False,
        )
    with pytest.raises(ValueError, match="conditioning"):
        kernel.run(
            gen._weights,
            gen._layout,
            gen._state_arrays,
            gen._scratch,
            0,
            True,
            fed,
            gen._cdf,
            np.zeros((4, 2)),
            1.0,
            out,
            False,
            cond,
            False,
        )
    with pytest.raises(ValueError, match="codes"):
        kernel.run(
            gen._weights,
            gen._layout,
            gen._state_arrays,
            gen._scratch,
            0,
            True,
            fed * 11,
            gen._cdf,
            np.zeros((4, 2)),
            1.0,
            out,
            False,
            gen._no_conditioning,
            False,
        )


def test_a_conditioned_kernel_1_model_samples_the_same_codes_in_every_method() -> None:
    torch.manual_seed(0)
    model = (
        WaveNet(
            ModelConfig(
                quantization_channels=9,
                residual_channels=3,
                gate_channels=4,
                skip_channels=5,
                kernel_size=1,
                layers_per_stack=2,
                stacks=2,
                global_classes=2,
                local_channels=3,
                upsample_scales=(2,),
            )
        )
        .double()
        .eval()
    )
    mel = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    speakers = torch.tensor([0, 1])
    codes = {
        method: generate(
            model,
            40,
            batch_size=2,
            temperature=0.9,
            mel=mel,
            global_cond=speakers,
            method=method,
            generator=torch.Generator().manual_seed(1),
        )
        for method in ("naive", "fast-torch", "fast-numba")
    }
    assert torch.equal(codes["fast-torch"], codes["naive"])
    assert torch.equal(codes["fast-numba"], codes["naive"])


def test_the_kernel_refuses_scratch_that_is_not_one_block_of_memory() -> None:
    """The products' vector code writes whole rows: a strided scratch array is refused."""
    gen = _generator()
    z = gen._scratch[2]
    strided = np.zeros((z.shape[0], 2 * z.shape[1]), z.dtype)[:, ::2]
    gen._scratch = _replace(gen._scratch, 2, strided)
    with pytest.raises(ValueError, match="C-contiguous"):
        gen.step(torch.tensor([1, 2]))


@pytest.mark.skipif(not fastpath.dot_supported("bf16-dot"), reason="no AVX-512 BF16 here")
def test_a_packed_matrix_of_another_type_does_not_compile() -> None:
    """A 3-D weight array the dot code would read past (int8 where bf16 pairs are read)
    is a typing error, not a run."""
    gen = _generator(weights="bf16-dot")
    wd = gen._weights[3]
    gen._weights = _replace(gen._weights, 3, np.zeros(wd.shape, np.int8))
    with pytest.raises(TypingError, match="packed weight matrix"):
        gen.step(torch.tensor([1, 2]))
