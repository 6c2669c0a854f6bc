"""The numba generator: `CodeGenerator` around the compiled kernel in `wavenet.generation.kernel`.

This module is the kernel's Python side: it packs a model's weights into the arrays the
kernel reads (copies, contiguous, transposed: `_pack`), picks each layer's time block
(`time_block`), owns the state and scratch arrays the kernel updates in place, and feeds
the kernel a chunk of steps per call, with their uniform numbers and conditioning terms.

State: a `NumbaState`, whose rings are views into one flat (sum of spans, B,
residual_channels) buffer that the kernel updates in place.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import ModelConfig
from ..errors import InvalidArgumentError
from ..nn.layers import bias_of, causal_padding
from ..nn.model import WaveNet
from . import kernel
from .incremental import CodeGenerator, IncrementalState, StepConditioning
from .reduced import bf16_bits, check_format, int8_columns
from .sampling import CodesSink, Progress, Uniforms

# A layer's past-tap products are gathered over up to this many rows (steps x streams).
_TIME_BLOCK_ROWS = 16

# The head's outputs are padded with zero columns to a multiple of this (a 512-bit vector
# of float32), so that the kernel's last product runs in vector code only: a "mol" head's
# 3 x 10 outputs would otherwise leave 14 columns to scalar code.
_HEAD_COLUMNS = 16


def head_width(config: ModelConfig) -> int:
    """Columns of the kernel's logits: the model's outputs, padded to _HEAD_COLUMNS."""
    return -(-config.output_channels // _HEAD_COLUMNS) * _HEAD_COLUMNS


def _pack(model: WaveNet, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The model's weights as the kernel wants them (copies, contiguous, transposed)."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))

    blocks = model.residual_blocks()
    emb = arr(model.embedding.weight)  # (Q, R)
    # The embedding row of each code: the code itself, or a 16-bit sample's mu-law code.
    rows = model.embedding_index(torch.arange(model.config.classes))
    code_rows = np.ascontiguousarray(rows.cpu().numpy().astype(np.int64))
    # "mol": each sample's value also enters through a 1x1, as (2, R): weight row, bias row.
    if model.config.output == "mol":
        value_in = arr(
            torch.stack([model.sample_input.weight[:, 0, 0], bias_of(model.sample_input)])
        )
    else:
        value_in = np.zeros((2, emb.shape[1]), dtype)
    # (L, k, R, G): tap j of block l is wd[l, j].T (tap k - 1 acts on the current input).
    wd = arr(torch.stack([b.dilated.weight.permute(2, 1, 0) for b in blocks]))
    bd = arr(torch.stack([bias_of(b.dilated) for b in blocks]))  # (L, G)
    # (L, G/2, R + S): the residual and skip projections side by side; the last block
    # has no residual projection (the kernel never uses that part), so zeros stand in.
    residual_weights = [
        b.residual.weight[:, :, 0]
        if b.residual is not None
        else b.skip.weight.new_zeros(b.dilated.weight.shape[1], b.skip.weight.shape[1])
        for b in blocks
    ]
    residual_biases = [
        bias_of(b.residual)
        if b.residual is not None
        else bias_of(b.skip).new_zeros(b.dilated.weight.shape[1])
        for b in blocks
    ]
    wrs = arr(
        torch.stack(
            [torch.cat([w, b.skip.weight[:, :, 0]]).T for w, b in zip(residual_weights, blocks)]
        )
    )
    br = arr(torch.stack(residual_biases))  # (L, R)
    bs = arr(torch.stack([bias_of(b.skip) for b in blocks]).sum(0))  # (S,)
    w1 = arr(model.head_hidden.weight[:, :, 0].T)  # (S, S)
    b1 = arr(bias_of(model.head_hidden))
    pad = head_width(model.config) - model.config.output_channels
    w2 = arr(torch.nn.functional.pad(model.head_out.weight[:, :, 0].T, (0, pad)))  # (S, Q + pad)
    b2 = arr(torch.nn.functional.pad(bias_of(model.head_out), (0, pad)))
    no_scales = tuple(np.zeros((0,) * n, dtype) for n in (2, 2, 1, 1))
    return (emb, code_rows, value_in, wd, bd, wrs, br, bs, w1, b1, w2, b2, *no_scales)


def _reduce(packed: tuple[np.ndarray, ...], weights: str) -> tuple[np.ndarray, ...]:
    """Packed float32 weights with the products' matrices (wd, wrs, w1, w2) in format
    `weights` (`reduced`): bfloat16 bits as uint16, or int8 with their column scales
    appended in the order `kernel._step` unpacks them. The values are those of
    `reduced.reduced_model`: the same matrices, split into the same columns."""
    emb, code_rows, value_in, wd, bd, wrs, br, bs, w1, b1, w2, b2 = packed[:12]
    if weights == "float32":
        return packed
    if weights in ("bf16-dot", "int8-dot"):
        pack = dot_pack if weights == "bf16-dot" else int8_dot_pack
        return (
            emb,
            code_rows,
            value_in,
            pack(wd),
            bd,
            pack(wrs),
            br,
            bs,
            pack(w1),
            b1,
            pack(w2),
            b2,
            *packed[12:],
        )
    if weights == "bf16":

        def bits(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(bf16_bits(torch.from_numpy(a)).numpy().view(np.uint16))

        return (
            emb,
            code_rows,
            value_in,
            bits(wd),
            bd,
            bits(wrs),
            br,
            bs,
            bits(w1),
            b1,
            bits(w2),
            b2,
            *packed[12:],
        )
    layers, taps, residual, gate = wd.shape
    qd, sd = zip(
        *(
            int8_columns(torch.from_numpy(wd[i].reshape(taps * residual, gate)))
            for i in range(layers)
        )
    )
    qrs, srs = zip(*(int8_columns(torch.from_numpy(wrs[i])) for i in range(layers)))
    q1, s1 = int8_columns(torch.from_numpy(w1))
    q2, s2 = int8_columns(torch.from_numpy(w2))

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.numpy())

    return (
        emb,
        code_rows,
        value_in,
        arr(torch.stack(qd).view(wd.shape)),
        bd,
        arr(torch.stack(qrs)),
        br,
        bs,
        arr(q1),
        b1,
        arr(q2),
        b2,
        arr(torch.stack(sd)),
        arr(torch.stack(srs)),
        arr(s1),
        arr(s2),
    )


def dot_pack(matrices: np.ndarray) -> np.ndarray:
    """Float32 product matrices (..., K, N) -> their bfloat16 bits as the "bf16-dot"
    kernel reads them, (..., ceil(N / 16), ceil(K / 2), 32) uint16: per block of 16
    columns, per pair of rows p, the 32 values W[2p, n], W[2p + 1, n] for each column n
    in turn (what one `vdpbf16ps` multiplies by a pair of inputs). Padding is zeros."""
    *lead, k, n = matrices.shape
    padded = np.zeros((*lead, k + k % 2, -(-n // 16) * 16), np.float32)
    padded[..., :k, :n] = matrices
    bits = bf16_bits(torch.from_numpy(padded)).numpy().view(np.uint16)
    # (..., K/2, 2, N/16, 16) -> (..., N/16, K/2, 16, 2)
    split = bits.reshape(*lead, padded.shape[-2] // 2, 2, padded.shape[-1] // 16, 16)
    order = (*range(len(lead)), len(lead) + 2, len(lead), len(lead) + 3, len(lead) + 1)
    packed = split.transpose(order).reshape(*lead, split.shape[-2], split.shape[-4], 32)
    return np.ascontiguousarray(packed)


def int8_dot_pack(matrices: np.ndarray) -> np.ndarray:
    """Float32 product matrices (..., K, N) -> the "int8-dot" kernel's packing,
    (..., ceil(N / 16), ceil(K / 4) + 1, 64) uint8: per block of 16 columns, per group
    of four rows g, the 64 bytes q[4g + i, n] + 128 (i < 4) for each column n in turn
    (what one `vpdpbusd` multiplies by four inputs), then 64 bytes holding the 16 columns'
    float32 scales. q, s are `reduced.int8_columns`' (q in [-127, 127]); padding is q = 0."""
    *lead, k, n = matrices.shape
    columns = -(-n // 16) * 16
    flat = torch.from_numpy(np.ascontiguousarray(matrices.reshape(-1, k, n)))
    quantized = [int8_columns(m) for m in flat]
    q = np.zeros((len(quantized), -(-k // 4) * 4, columns), np.int16)
    s = np.ones((len(quantized), columns), np.float32)
    for i, (values, scales) in enumerate(quantized):
        q[i, :k, :n] = values.numpy()
        s[i, :n] = scales.numpy()
    offset = (q + 128).astype(np.uint8)
    # (M, K/4, 4, N/16, 16) -> (M, N/16, K/4, 16, 4)
    groups = offset.reshape(len(quantized), q.shape[1] // 4, 4, columns // 16, 16)
    body = groups.transpose(0, 3, 1, 4, 2).reshape(
        len(quantized), columns // 16, q.shape[1] // 4, 64
    )
    tail = s.reshape(len(quantized), columns // 16, 1, 16).view(np.uint8)
    packed = np.concatenate([body, tail], axis=2)
    return np.ascontiguousarray(packed.reshape(*lead, *packed.shape[1:]))


# The CPU feature each "-dot" format's instruction needs (LLVM's name, /proc/cpuinfo's).
_DOT_FEATURES = {
    "bf16-dot": ("avx512bf16", "avx512_bf16"),
    "int8-dot": ("avx512vnni", "avx512_vnni"),
}
# The intrinsics are written in the IR of this LLVM (opaque pointers, bfloat vectors for
# `vdpbf16ps`); older ones name or type them differently. Tested: LLVM 22 (llvmlite 0.50).
_DOT_LLVM = (22,)


def dot_unsupported(weights: str) -> str | None:
    """Why a "-dot" format cannot run here, or None: numba must compile for a CPU with the
    instruction ("bf16-dot": `vdpbf16ps`, AVX-512 BF16; "int8-dot": `vpdpbusd`, AVX-512
    VNNI; the host's features, or those NUMBA_CPU_FEATURES names when it is set) with an
    LLVM whose intrinsics the kernel is written for."""
    from llvmlite import binding
    from numba.core import config

    feature, flag = _DOT_FEATURES[weights]
    named = getattr(config, "CPU_FEATURES", None)
    if named:
        has = f"+{feature}" in str(named).split(",")
    else:
        has = bool(binding.get_host_cpu_features().get(feature, False))
    if not has:
        return f"needs a CPU with {flag}, which this one lacks"
    if tuple(binding.llvm_version_info) < _DOT_LLVM:
        llvm = ".".join(map(str, binding.llvm_version_info))
        return f"needs numba built on LLVM {_DOT_LLVM[0]} or newer (llvmlite 0.50+), not {llvm}"
    return None


def dot_supported(weights: str) -> bool:
    """Whether the "-dot" format `weights` can run here (`dot_unsupported`)."""
    return dot_unsupported(weights) is None


def time_block(dilation: int, batch_size: int) -> int:
    """Steps m over which a layer's past-tap products are gathered into one product.

    The largest power of two that divides the dilation and keeps m * batch_size <=
    _TIME_BLOCK_ROWS; 1 (no gathering) from batch _TIME_BLOCK_ROWS / 2 on, where the batch
    already reuses each weight enough.
    """
    m = 1
    while dilation % (2 * m) == 0 and 2 * m * batch_size <= _TIME_BLOCK_ROWS:
        m *= 2
    return m


@dataclass
class NumbaState(IncrementalState):
    """`IncrementalState` plus, for layers whose past taps are gathered over time, the
    partial dilated-convolution sums already made for future steps.

    pending[l]: (m_l, B, gate_channels), m_l the layer's time block; slot s % m_l holds the
      sum of the past-tap products that time s uses, made at the start of its block of m_l
      steps (None for layers with a time block of 1).
    """

    pending: list[torch.Tensor | None] = field(default_factory=list)

    def reset(self) -> None:
        super().reset()
        for partial in self.pending:
            if partial is not None:
                partial.zero_()


def _kernel_layout(config: ModelConfig, batch_size: int) -> tuple[tuple, list[int], list[int]]:
    """The per-layer layout `kernel._step` reads, and each layer's ring and pending spans.

    -> ((dilations, kernel_size, ring offsets, time blocks, pending offsets, mixtures), spans,
    gathered): spans[l] = (kernel_size - 1) * dilation_l slots of ring; gathered[l] = its
    time block's pending slots for a layer whose past taps are gathered (time block > 1),
    else 0. Offsets index the flat buffers that hold every layer's slots one after another.
    mixtures: K for a "mol" model (its input adds the sample's value, its output is
    mixture parameters), 0 for a categorical one.
    """
    spans = [causal_padding(config.kernel_size, d) for d in config.dilations]
    # kernel_size 1 keeps no past inputs, so there is nothing to gather.
    blocks = [time_block(d, batch_size) if config.kernel_size > 1 else 1 for d in config.dilations]
    offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
    gathered = [m if m > 1 else 0 for m in blocks]
    pending_offsets = np.concatenate([[0], np.cumsum(gathered)[:-1]]).astype(np.int64)
    mixtures = config.mixtures if config.output == "mol" else 0
    layout = (
        np.array(config.dilations, dtype=np.int64),
        config.kernel_size,
        offsets,
        np.array(blocks, dtype=np.int64),
        pending_offsets,
        mixtures,
    )
    return layout, spans, gathered


def _zero_state(
    config: ModelConfig,
    batch_size: int,
    layout: tuple,
    spans: list[int],
    gathered: list[int],
    dtype: torch.dtype,
) -> tuple[NumbaState, tuple[np.ndarray, np.ndarray]]:
    """A NumbaState at time 0, and the two flat buffers its rings and pending sums view:
    (sum of spans, B, residual_channels) and (sum of gathered, B, gate_channels), as the
    numpy arrays the kernel updates in place."""
    offsets, pending_offsets = layout[2], layout[4]
    flat_ring = torch.zeros(sum(spans), batch_size, config.residual_channels, dtype=dtype)
    flat_pending = torch.zeros(sum(gathered), batch_size, config.gate_channels, dtype=dtype)
    state = NumbaState(
        rings=[flat_ring[o : o + s] for o, s in zip(offsets, spans)],
        pending=[flat_pending[o : o + s] if s else None for o, s in zip(pending_offsets, gathered)],
    )
    return state, (flat_ring.numpy(), flat_pending.numpy())


def _scratch(
    config: ModelConfig, batch_size: int, np_dtype: np.dtype, time_blocks: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The kernel's working arrays for one step, in the order `kernel._step` unpacks them."""
    c = config

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, np_dtype)

    # A "bf16-dot" product's inputs as bfloat16 pairs: up to a time block of rows, the
    # widest product's inputs.
    widest = max(c.residual_channels, c.gate_channels // 2, c.skip_channels)
    # ("int8-dot": quads of int8 and two words more).
    rows = int(time_blocks.max()) * batch_size
    return (
        zeros(batch_size, c.residual_channels),  # x
        np.zeros((rows, (widest + 1) // 2 + 2), np.uint32),  # pairs
        zeros(batch_size, c.gate_channels),  # z
        zeros(batch_size, c.gate_channels // 2),  # h
        zeros(batch_size, c.residual_channels + c.skip_channels),  # out
        zeros(batch_size, c.skip_channels),  # skips
        zeros(batch_size, c.skip_channels),  # hidden
        zeros(batch_size, head_width(c)),
    )  # logits (padded)


class NumbaGenerator(CodeGenerator):
    """Incremental WaveNet in a compiled kernel; the same interface as `FastGenerator`.

    The model must be on the CPU in float32 or float64; its weights are copied when the
    generator is built (later changes to the model are not seen). Teacher forcing::

        gen = NumbaGenerator(model, batch_size=B)
        logits_t = gen.step(codes[:, t])   # (B,) -> (B, O), close to model(codes)[:, :, t]
    """

    state: NumbaState

    def __init__(
        self,
        model: WaveNet,
        batch_size: int = 1,
        conditioning: StepConditioning | None = None,
        weights: str = "float32",
    ) -> None:
        super().__init__(model, batch_size, conditioning)
        parameter = model.embedding.weight
        if parameter.device.type != "cpu" or parameter.dtype not in (torch.float32, torch.float64):
            raise InvalidArgumentError(
                f"NumbaGenerator needs a float32 or float64 model on the "
                f"CPU, got {parameter.dtype} on {parameter.device}"
            )
        check_format(weights)
        why = dot_unsupported(weights) if weights in _DOT_FEATURES else None
        if why is not None:
            instead = weights.removesuffix("-dot")
            raise InvalidArgumentError(f"weights={weights!r} {why}: use weights={instead!r}")
        if weights != "float32" and parameter.dtype != torch.float32:
            raise InvalidArgumentError(
                f"weights={weights!r} needs a float32 model, got {parameter.dtype}"
            )
        c = self.config
        self.dtype = parameter.dtype
        # The products' weight format (`reduced`): float32 (as the model), bf16 or int8.
        self.weights = weights
        np_dtype = np.dtype(np.float32 if self.dtype == torch.float32 else np.float64)
        self._weights = _reduce(_pack(model, np_dtype), weights)
        self._approximate = self.dtype == torch.float32
        self._layout, spans, gathered = _kernel_layout(c, batch_size)
        self.state, self._state_arrays = _zero_state(
            c, batch_size, self._layout, spans, gathered, self.dtype
        )
        self._scratch = _scratch(c, batch_size, np_dtype, self._layout[3])
        self._cdf = np.zeros(c.output_channels, np.float64)
        self._np_dtype = np_dtype
        self._no_conditioning = np.zeros(
            (0, len(c.dilations), batch_size, c.gate_channels), np_dtype
        )
        # Steps per kernel call, so that a call's conditioning terms stay small.
        self._steps_per_call = conditioning.chunk if conditioning is not None else 1 << 62

    def _run(
        self,
        fed: np.ndarray,
        uniforms: np.ndarray,
        temperature: float,
        out: np.ndarray,
        step_after_last: bool,
        ahead: _TermsAhead | None = None,
    ) -> None:
        """Feed fed (T, B), then sample into out (n, B) (all int64, C-contiguous); the
        conditioning rows come from `ahead` when given (computed while the kernel ran)."""
        steps = fed.shape[0] + max(out.shape[0] - (0 if step_after_last else 1), 0)
        cond, constant = self._no_conditioning, False
        if self.conditioning is not None and steps > 0:
            constant = self.conditioning.constant
            start = self.state.position
            if constant:
                cond = self._terms(0, 1)
            elif ahead is not None:
                cond = ahead.rows(start, start + steps)
            else:
                cond = self._terms(start, start + steps)
        try:
            kernel.run(
                self._weights,
                self._layout,
                self._state_arrays,
                self._scratch,
                self.state.position,
                self._approximate,
                fed,
                self._cdf,
                uniforms,
                temperature,
                out,
                step_after_last,
                cond,
                constant,
            )
        except ValueError as error:  # compiled code raises only built-in exceptions
            raise InvalidArgumentError(str(error)) from error
        self.state.position += steps

    def _terms(self, start: int, stop: int) -> np.ndarray:
        """Conditioning terms of steps [start, stop) as the kernel reads them."""
        assert self.conditioning is not None
        terms = self.conditioning.terms(start, stop)
        return np.ascontiguousarray(terms.numpy().astype(self._np_dtype, copy=False))

    def _feed_array(self, codes: np.ndarray) -> torch.Tensor:
        """Feed codes (T, B); returns a copy of the last logits."""
        nothing = np.zeros((0, self.batch_size), np.int64)
        for start in range(0, codes.shape[0], self._steps_per_call):
            part = codes[start : start + self._steps_per_call]
            self._run(part, np.zeros((0, self.batch_size)), 0.0, nothing, False)
        return torch.from_numpy(self._scratch[-1][:, : self.config.output_channels].copy())

    def _step(self, codes: torch.Tensor) -> torch.Tensor:
        return self._feed_array(self._checked_codes(codes.reshape(1, -1)))

    def _feed(self, codes: torch.Tensor) -> torch.Tensor:
        return self._feed_array(self._checked_codes(codes.T))

    def _checked_codes(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (T, B) as a C-contiguous int64 array, checked to be in range."""
        array = np.ascontiguousarray(codes.detach().cpu().numpy().astype(np.int64, copy=False))
        q = self.config.classes
        if array.min() < 0 or array.max() >= q:
            raise InvalidArgumentError(
                f"codes must be in [0, {q - 1}], found values in [{array.min()}, {array.max()}]"
            )
        return array

    def sample(
        self,
        prime: torch.Tensor,
        n_samples: int,
        temperature: float,
        uniforms: Uniforms,
        progress: Progress | None = None,
        on_codes: CodesSink | None = None,
    ) -> torch.Tensor:
        """`CodeGenerator.sample` with the sampling loop in the kernel, a chunk of steps a call.

        Feeds prime (B, T >= 1), then samples n_samples codes per stream -> (B, n_samples);
        the last sampled code is not fed back.
        """
        self.feed(prime)
        out = np.empty((n_samples, self.batch_size), np.int64)
        no_uniforms = np.zeros((0, self.batch_size), np.float64)
        no_codes = np.zeros((0, self.batch_size), np.int64)
        ahead = None
        if self.conditioning is not None and not self.conditioning.constant:
            # A vocoder's terms for the next steps are computed on a second thread while
            # the kernel (which releases the GIL) runs these.
            # Every sampled code but the last is fed: n_samples - 1 steps from here.
            position = self.state.position
            end = position + n_samples - 1
            ahead = _TermsAhead(self._terms, position, self._steps_per_call, end)
        try:
            for start, stop, chunk in uniforms:
                u = no_uniforms if chunk is None else np.ascontiguousarray(chunk.numpy())
                for first in range(start, stop, self._steps_per_call):
                    last = min(first + self._steps_per_call, stop)
                    part = u if chunk is None else u[first - start : last - start]
                    self._run(
                        no_codes, part, float(temperature), out[first:last], last < n_samples, ahead
                    )
                if on_codes is not None:
                    on_codes(torch.from_numpy(out[start:stop].T.copy()))
                if progress is not None:
                    progress(stop, n_samples)
        finally:
            if ahead is not None:
                ahead.close()
        return torch.from_numpy(out.T.copy())


class _TermsAhead:
    """Conditioning rows computed a block ahead on one worker thread.

    Blocks of `block` steps from `first` to `end` are computed in order by
    `compute(start, stop)`; asking for rows returns them (waiting if need be) and starts
    the block after the last one asked for, so that it is ready when the kernel needs it.
    """

    def __init__(
        self, compute: Callable[[int, int], np.ndarray], first: int, block: int, end: int
    ) -> None:
        self._compute, self._first, self._block, self._end = compute, first, block, end
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wavenet-terms")
        self._blocks: dict[int, Future[np.ndarray]] = {}
        self._submit(first)

    def _start_of(self, step: int) -> int:
        return self._first + (step - self._first) // self._block * self._block

    def _submit(self, start: int) -> None:
        if start < self._end and start not in self._blocks:
            stop = min(start + self._block, self._end)
            self._blocks[start] = self._pool.submit(self._compute, start, stop)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows of steps [start, stop), start >= first, stop <= end."""
        parts, step = [], start
        while step < stop:
            base = self._start_of(step)
            self._submit(base)
            block = self._blocks[base].result()
            parts.append(block[step - base : min(stop, base + self._block) - base])
            step = base + self._block
        last = self._start_of(stop - 1)
        for old in [b for b in self._blocks if b < last]:
            del self._blocks[old]  # never asked for again: steps only move forward
        self._submit(last + self._block)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
