"""Compiled incremental WaveNet for the CPU: every step of generation inside one numba kernel.

The arithmetic is that of `wavenet.generation.FastGenerator` (the reference the tests
hold this module to), rearranged for speed:

- weights are copied once into contiguous arrays, transposed so that every product is
  y (B, N) += x (B, K) @ Wt (K, N), walking each weight matrix once per step in memory
  order; the inner loops are explicit 512-bit vector code (`_make_tile`) that feeds each
  loaded weight row to four streams at a time;
- a layer's kernel_size taps are one product ([past taps, x] @ [W_0; ...; W_k-1]), and its
  residual and skip projections are one product too, h @ [W_res | W_skip], whose skip half
  accumulates over the layers (the last block's residual output is never used);
- at batch 1 a step is limited by how fast ~3 MB of weights stream from the L3 cache, so
  at small batches the past taps, whose inputs are known `dilation` steps ahead, are
  gathered: every m steps one product applies the past-tap weights to the last m inputs
  and parks the results in `pending` for the steps that need them (`time_block`);
- sampling (the same inverse-CDF rule as `generation.sample_codes`, in float64) runs in
  the kernel from uniform numbers drawn beforehand by the caller, so a chunk of samples
  costs one call from Python;
- in float32, tanh is a rational approximation (relative error < 4e-7, a few ulp) that
  vectorises, and sigmoid(g) = (1 + tanh(g / 2)) / 2; float64 uses libm.

State: a `NumbaState`, whose rings are views into one flat (sum of spans, B,
residual_channels) buffer that the kernel updates in place. Conditioning, when generation
supports it, adds a per-layer (B, gate_channels) term to `z` in `_step`, right after the
dilated convolution, as in `generation._block_step`.

numba compiles the kernel on first use (about 10 s for float32 and float64 together;
cache=True keeps the result on disk for later processes). The kernel runs on one thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .generation import (IncrementalState, Progress, StatefulGenerator, StepConditioning,
                         _check_conditioning, _check_step_codes)
from .model import WaveNet

# Fused multiply-add, no signed zeros, reciprocal; no reassociation (the products keep
# the summation order they are written in), no assumptions about inf or NaN.
_FASTMATH = {"contract", "nsz", "arcp"}

# Rows of a weight matrix taken per pass over the batch (kept in L1 while the batch uses them).
_ROW_BLOCK = 32

# A layer's past-tap products are gathered over up to this many rows (steps x streams).
_TIME_BLOCK_ROWS = 16

# tanh(x) ~ x P(u) / Q(u), u = (x / 9)^2, |x| <= 9 (beyond, float32 tanh is +-1): a
# rational fit to tanh's relative error made for this module (max 3e-8 in exact
# arithmetic, < 4e-7 evaluated in float32).
_TANH_P = (0.9999999778790374, 11.038665742448018, 24.96042058850621, 14.233208047540836,
           1.2006433437530606, -0.036349379819173494)
_TANH_Q = (1.0, 38.03865205945682, 177.20526777729313, 203.4465588540203, 51.878830740986295)


def _make_tile(rows: int):  # noqa: ANN202 - returns a numba intrinsic
    """An intrinsic tile(y, i0, wt, k0, x, cols) -> done: for i < rows, j < 4 and the first
    `done` columns n (a multiple of the vector width, <= cols),

        y[i0 + i, n] += ((x[i0+i, k0] wt[k0, n] + x[i0+i, k0+1] wt[k0+1, n])
                         + x[i0+i, k0+2] wt[k0+2, n]) + x[i0+i, k0+3] wt[k0+3, n]

    written with explicit 16 x float32 (8 x float64) vectors and fused multiply-adds.
    numba's loop vectoriser stops at 256-bit registers on CPUs where LLVM prefers them;
    explicit vectors of 512 bits use AVX-512 where there is one and are split into
    narrower registers elsewhere. Each loaded row of wt feeds `rows` streams.
    """

    @intrinsic
    def tile(typingctx, y, i0, wt, k0, x, cols):  # noqa: ANN001, ANN202
        sig = types.int64(y, i0, wt, k0, x, cols)

        def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
            y_type, _, w_type, _, x_type, _ = signature.args
            y_arr = context.make_array(y_type)(context, builder, args[0])
            w_arr = context.make_array(w_type)(context, builder, args[2])
            x_arr = context.make_array(x_type)(context, builder, args[4])
            i0_val, k0_val, cols_val = args[1], args[3], args[5]
            scalar = context.get_value_type(y_type.dtype)
            lanes = 16 if y_type.dtype == types.float32 else 8
            align = 4 if y_type.dtype == types.float32 else 8
            vector = ir.VectorType(scalar, lanes)
            i32, i64 = ir.IntType(32), ir.IntType(64)

            def at(a_type, arr, row, offset, col):  # noqa: ANN001, ANN202
                index = builder.add(row, ir.Constant(i64, offset))
                return cgutils.get_item_pointer(context, builder, a_type, arr, [index, col],
                                                wraparound=False)

            def broadcast(value):  # noqa: ANN001, ANN202
                one = builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                             ir.Constant(i32, 0))
                return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined),
                                              ir.Constant(ir.VectorType(i32, lanes), [0] * lanes))

            zero = ir.Constant(i64, 0)
            xs = [[broadcast(builder.load(at(x_type, x_arr, i0_val, i, builder.add(
                k0_val, ir.Constant(i64, j))))) for j in range(4)] for i in range(rows)]
            w_rows = [at(w_type, w_arr, k0_val, j, zero) for j in range(4)]
            y_rows = [at(y_type, y_arr, i0_val, i, zero) for i in range(rows)]
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fma.v{lanes}{'f32' if lanes == 16 else 'f64'}")
            count = builder.udiv(cols_val, ir.Constant(i64, lanes))
            with cgutils.for_range(builder, count) as loop:
                offset = builder.mul(loop.index, ir.Constant(i64, lanes))

                def pointer(row):  # noqa: ANN001, ANN202
                    return builder.bitcast(builder.gep(row, [offset]), vector.as_pointer())

                ws = [builder.load(pointer(row), align=align) for row in w_rows]
                for i in range(rows):
                    total = builder.fmul(xs[i][0], ws[0])
                    for j in range(1, 4):
                        total = builder.call(fma, [xs[i][j], ws[j], total])
                    target = pointer(y_rows[i])
                    builder.store(builder.fadd(builder.load(target, align=align), total), target,
                                  align=align)
            return builder.mul(count, ir.Constant(i64, lanes))

        return sig, codegen

    return tile


_tile4 = _make_tile(4)
_tile1 = _make_tile(1)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _matmul_acc(x, wt, y):  # pragma: no cover - compiled
    """y (B, N) += x (B, K) @ wt (K, N).

    Rows of wt are taken in blocks of _ROW_BLOCK (which stay in L1 while the batch uses
    them), four at a time, for four streams at a time (`_tile4`) and then one at a time
    (`_tile1`), with the columns that do not fill a vector done in scalar code.
    """
    batch, rows = x.shape
    cols = wt.shape[1]
    for r0 in range(0, rows, _ROW_BLOCK):
        r1 = min(r0 + _ROW_BLOCK, rows)
        r4 = r0 + (r1 - r0) // 4 * 4
        b = 0
        while b < batch:
            streams = 4 if b + 4 <= batch else 1
            for k in range(r0, r4, 4):
                if streams == 4:
                    done = _tile4(y, b, wt, k, x, cols)
                else:
                    done = _tile1(y, b, wt, k, x, cols)
                w0, w1, w2, w3 = wt[k], wt[k + 1], wt[k + 2], wt[k + 3]
                for i in range(b, b + streams):
                    a0, a1, a2, a3 = x[i, k], x[i, k + 1], x[i, k + 2], x[i, k + 3]
                    yi = y[i]
                    for n in range(done, cols):
                        yi[n] += a0 * w0[n] + a1 * w1[n] + a2 * w2[n] + a3 * w3[n]
            b += streams
        for b in range(batch):
            yb = y[b]
            for k in range(r4, r1):
                wk = wt[k]
                a0 = x[b, k]
                for n in range(cols):
                    yb[n] += a0 * wk[n]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _tanh_f32(v):  # pragma: no cover - compiled
    x = min(max(v, np.float32(-9.0)), np.float32(9.0))
    u = x * x * np.float32(1.0 / 81.0)
    p = np.float32(_TANH_P[5])
    p = p * u + np.float32(_TANH_P[4])
    p = p * u + np.float32(_TANH_P[3])
    p = p * u + np.float32(_TANH_P[2])
    p = p * u + np.float32(_TANH_P[1])
    p = p * u + np.float32(_TANH_P[0])
    q = np.float32(_TANH_Q[4])
    q = q * u + np.float32(_TANH_Q[3])
    q = q * u + np.float32(_TANH_Q[2])
    q = q * u + np.float32(_TANH_Q[1])
    q = q * u + np.float32(_TANH_Q[0])
    return x * p / q


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _gate(z, h, approximate):  # pragma: no cover - compiled
    """h (B, C) = tanh(z[:, :C]) * sigmoid(z[:, C:]) for z (B, 2C)."""
    batch, channels = h.shape
    if approximate:
        half = np.float32(0.5)
        for b in range(batch):
            for c in range(channels):
                f = np.float32(z[b, c])
                g = np.float32(z[b, channels + c])
                h[b, c] = _tanh_f32(f) * (half + half * _tanh_f32(half * g))
    else:
        for b in range(batch):
            for c in range(channels):
                h[b, c] = math.tanh(z[b, c]) / (1.0 + math.exp(-z[b, channels + c]))


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _relu(y):  # pragma: no cover - compiled
    batch, channels = y.shape
    for b in range(batch):
        for c in range(channels):
            y[b, c] = max(y[b, c], 0.0)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _step(weights, layout, state, scratch, codes, t, approximate, cond, ci):  # pragma: no cover - compiled
    """One step for every stream: codes (B,) at time t -> scratch logits (B, Q); state updated.

    layout = (dilations, kernel_size, ring offsets, time blocks, pending offsets), per layer.
    A layer whose time block m is 1 multiplies all its taps at once, [past taps, x] @ W. A
    layer with m > 1 finds its past taps' product already summed in `pending` (the slot of
    time t), and every m steps multiplies the last m inputs by the past-tap weights in one
    product, adding the results to the pending slots of the times they are taps for (all
    later than t, since m <= dilation): the past-tap weights are read once per m steps.
    """
    emb, wd, bd, wrs, br, bs, w1, b1, w2, b2 = weights
    dilations, kernel_size, offsets, time_blocks, pending_offsets = layout
    ring, pending = state
    x, xin, z, h, out, skips, hidden, logits = scratch
    batch, residual = x.shape
    skip = skips.shape[1]
    gate = z.shape[1]
    layers = wd.shape[0]
    taps = kernel_size - 1
    for b in range(batch):
        x[b] = emb[codes[b]]
        out[b, residual:] = bs
    for layer in range(layers):
        dilation = dilations[layer]
        span = taps * dilation
        base = offsets[layer]
        block = time_blocks[layer]
        for b in range(batch):
            z[b] = bd[layer]
        if block == 1:
            for j in range(taps):
                slot = base + (t - (taps - j) * dilation) % span
                xin[:, j * residual:(j + 1) * residual] = ring[slot]
            xin[:, taps * residual:] = x
            _matmul_acc(xin, wd[layer].reshape((kernel_size * residual, gate)), z)
        else:
            past = pending[pending_offsets[layer] + t % span]
            for b in range(batch):
                z[b] += past[b]
                past[b] = 0.0
            _matmul_acc(x, wd[layer, taps], z)
        if ci >= 0:  # conditioning: cond[ci] is (layers, B, gate) for this step
            for b in range(batch):
                z[b] += cond[ci, layer, b]
        ring[base + t % span] = x
        if block > 1 and (t + 1) % block == 0:
            first = (t + 1 - block) % span  # the block never wraps: block divides span
            inputs = ring[base + first:base + first + block].reshape((block * batch, residual))
            for j in range(taps):
                target = pending_offsets[layer] + (t + 1 - block + (taps - j) * dilation) % span
                _matmul_acc(inputs, wd[layer, j],
                            pending[target:target + block].reshape((block * batch, gate)))
        _gate(z, h, approximate)
        # out = [residual | skip]: the residual part is this layer's, the skip part sums
        # over the layers.
        for b in range(batch):
            out[b, :residual] = 0.0
        _matmul_acc(h, wrs[layer], out)
        if layer + 1 < layers:  # the last block's residual output is not used
            for b in range(batch):
                for c in range(residual):
                    x[b, c] += out[b, c] + br[layer, c]
    for b in range(batch):
        for c in range(skip):
            skips[b, c] = max(out[b, residual + c], 0.0)
    for b in range(batch):
        hidden[b] = b1
    _matmul_acc(skips, w1, hidden)
    _relu(hidden)
    for b in range(batch):
        logits[b] = b2
    _matmul_acc(hidden, w2, logits)


@njit(cache=True, error_model="numpy")
def _sample_row(row, uniform, temperature, cdf):  # pragma: no cover - compiled
    """The code `generation.sample_codes` picks for one row of logits."""
    count = row.shape[0]
    best = 0
    for i in range(1, count):
        if row[i] > row[best]:
            best = i
    if temperature == 0.0:
        return best
    top = np.float64(row[best]) / temperature
    total = 0.0
    for i in range(count):
        total += math.exp(np.float64(row[i]) / temperature - top)
        cdf[i] = total
    target = uniform * total
    for i in range(count):
        if cdf[i] > target:
            return i
    return count - 1


@njit(cache=True, error_model="numpy", nogil=True)
def _run(weights, layout, state, scratch, t0, approximate, fed, cdf, uniforms, temperature,
         out, step_after_last, cond, cond_constant):  # pragma: no cover - compiled
    """Teacher-force `fed` (T, B) from time t0, then sample out (n, B) from the logits on,
    feeding each sample back except the last one (unless step_after_last).

    cond: (steps, layers, B, gate) conditioning for the steps of this call, in order
    (empty when the model has none), or (1, ...) for all of them when cond_constant."""
    steps = 0
    for i in range(fed.shape[0]):
        ci = -1 if cond.shape[0] == 0 else (0 if cond_constant else steps)
        _step(weights, layout, state, scratch, fed[i], t0 + i, approximate, cond, ci)
        steps += 1
    t = t0 + fed.shape[0]
    logits = scratch[-1]
    count, batch = out.shape
    for i in range(count):
        for b in range(batch):
            uniform = uniforms[i, b] if temperature > 0.0 else 0.0
            out[i, b] = _sample_row(logits[b], uniform, temperature, cdf)
        if i + 1 < count or step_after_last:
            ci = -1 if cond.shape[0] == 0 else (0 if cond_constant else steps)
            _step(weights, layout, state, scratch, out[i], t + i, approximate, cond, ci)
            steps += 1


def _pack(model: WaveNet, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The model's weights as the kernel wants them (copies, contiguous, transposed)."""
    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype, copy=False))

    blocks = list(model.blocks)
    emb = arr(model.embedding.weight)                                  # (Q, R)
    # (L, k, R, G): tap j of block l is wd[l, j].T (tap k - 1 acts on the current input).
    wd = arr(torch.stack([b.dilated.weight.permute(2, 1, 0) for b in blocks]))
    bd = arr(torch.stack([b.dilated.bias for b in blocks]))            # (L, G)
    # (L, G/2, R + S): the residual and skip projections side by side; the last block
    # has no residual projection (the kernel never uses that part), so zeros stand in.
    residual_weights = [b.residual.weight[:, :, 0] if b.residual is not None
                        else b.skip.weight.new_zeros(b.dilated.weight.shape[1], b.skip.weight.shape[1])
                        for b in blocks]
    residual_biases = [b.residual.bias if b.residual is not None
                       else b.skip.bias.new_zeros(b.dilated.weight.shape[1]) for b in blocks]
    wrs = arr(torch.stack([torch.cat([w, b.skip.weight[:, :, 0]]).T
                           for w, b in zip(residual_weights, blocks)]))
    br = arr(torch.stack(residual_biases))                             # (L, R)
    bs = arr(torch.stack([b.skip.bias for b in blocks]).sum(0))        # (S,)
    w1 = arr(model.head_hidden.weight[:, :, 0].T)                      # (S, S)
    b1 = arr(model.head_hidden.bias)
    w2 = arr(model.head_out.weight[:, :, 0].T)                         # (S, Q)
    b2 = arr(model.head_out.bias)
    return emb, wd, bd, wrs, br, bs, w1, b1, w2, b2


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

    pending[l]: (span_l, B, gate_channels); slot s % span_l holds the sum of the past-tap
      products that time s will use (None for layers with a time block of 1).
    """

    pending: list[torch.Tensor | None] = field(default_factory=list)

    def reset(self) -> None:
        super().reset()
        for partial in self.pending:
            if partial is not None:
                partial.zero_()


class NumbaGenerator(StatefulGenerator):
    """Incremental WaveNet in a compiled kernel; the same interface as `FastGenerator`.

    The model must be on the CPU in float32 or float64; its weights are copied when the
    generator is built (later changes to the model are not seen). Teacher forcing::

        gen = NumbaGenerator(model, batch_size=B)
        logits_t = gen.step(codes[:, t])   # (B,) -> (B, Q), close to model(codes)[:, :, t]
    """

    def __init__(self, model: WaveNet, batch_size: int = 1,
                 conditioning: StepConditioning | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.conditioning = _check_conditioning(model, conditioning)
        parameter = model.embedding.weight
        if parameter.device.type != "cpu" or parameter.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"NumbaGenerator needs a float32 or float64 model on the CPU, got "
                             f"{parameter.dtype} on {parameter.device}")
        c = self.config = model.config
        self.dtype = parameter.dtype
        np_dtype = np.dtype(np.float32 if self.dtype == torch.float32 else np.float64)
        self._weights = _pack(model, np_dtype)
        self._approximate = self.dtype == torch.float32

        spans = [(c.kernel_size - 1) * d for d in c.dilations]
        blocks = [time_block(d, batch_size) for d in c.dilations]
        offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
        gathered = [s if m > 1 else 0 for s, m in zip(spans, blocks)]
        pending_offsets = np.concatenate([[0], np.cumsum(gathered)[:-1]]).astype(np.int64)
        self._layout = (np.array(c.dilations, dtype=np.int64), c.kernel_size, offsets,
                        np.array(blocks, dtype=np.int64), pending_offsets)

        flat_ring = torch.zeros(sum(spans), batch_size, c.residual_channels, dtype=self.dtype)
        flat_pending = torch.zeros(sum(gathered), batch_size, c.gate_channels, dtype=self.dtype)
        self.state = NumbaState(
            rings=[flat_ring[o:o + s] for o, s in zip(offsets, spans)],
            pending=[flat_pending[o:o + s] if s else None
                     for o, s in zip(pending_offsets, gathered)])
        self._state_arrays = (flat_ring.numpy(), flat_pending.numpy())

        def zeros(*shape: int) -> np.ndarray:
            return np.zeros(shape, np_dtype)

        self._scratch = (zeros(batch_size, c.residual_channels),                   # x
                         zeros(batch_size, c.kernel_size * c.residual_channels),   # taps
                         zeros(batch_size, c.gate_channels),                       # z
                         zeros(batch_size, c.gate_channels // 2),                  # h
                         zeros(batch_size, c.residual_channels + c.skip_channels), # out
                         zeros(batch_size, c.skip_channels),                       # skips
                         zeros(batch_size, c.skip_channels),                       # hidden
                         zeros(batch_size, c.quantization_channels))               # logits
        self._cdf = np.zeros(c.quantization_channels, np.float64)
        self._np_dtype = np_dtype
        self._no_conditioning = np.zeros((0, len(c.dilations), batch_size, c.gate_channels), np_dtype)
        # Steps per kernel call, so that a call's conditioning terms stay small.
        self._steps_per_call = conditioning.chunk if conditioning is not None else 1 << 62

    def _run(self, fed: np.ndarray, uniforms: np.ndarray, temperature: float, out: np.ndarray,
             step_after_last: bool) -> None:
        """Feed fed (T, B), then sample into out (n, B) (all int64, C-contiguous)."""
        steps = fed.shape[0] + max(out.shape[0] - (0 if step_after_last else 1), 0)
        cond, constant = self._no_conditioning, False
        if self.conditioning is not None and steps > 0:
            constant = self.conditioning.constant
            start = self.state.position
            terms = (self.conditioning.terms(0, 1) if constant
                     else self.conditioning.terms(start, start + steps))
            cond = np.ascontiguousarray(terms.numpy().astype(self._np_dtype, copy=False))
        _run(self._weights, self._layout, self._state_arrays, self._scratch, self.state.position,
             self._approximate, fed, self._cdf, uniforms, temperature, out, step_after_last,
             cond, constant)
        self.state.position += steps

    def _feed(self, codes: np.ndarray) -> torch.Tensor:
        """Feed codes (T, B); returns a copy of the last logits."""
        nothing = np.zeros((0, self.batch_size), np.int64)
        for start in range(0, codes.shape[0], self._steps_per_call):
            part = codes[start:start + self._steps_per_call]
            self._run(part, np.zeros((0, self.batch_size)), 0.0, nothing, False)
        return torch.from_numpy(self._scratch[-1].copy())

    def step(self, codes: torch.Tensor) -> torch.Tensor:
        """Feed one code per stream: codes (B,) long -> logits (B, Q) for the next code."""
        _check_step_codes(codes, self.batch_size)
        return self._feed(self._checked_codes(codes.reshape(1, -1)))

    def feed(self, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-force codes (B, T), T >= 1; returns the last logits (B, Q)."""
        if codes.dim() != 2 or codes.shape[0] != self.batch_size or codes.shape[1] < 1:
            raise ValueError(f"codes must be (batch_size={self.batch_size}, T >= 1), "
                             f"got shape {tuple(codes.shape)}")
        return self._feed(self._checked_codes(codes.T))

    def _checked_codes(self, codes: torch.Tensor) -> np.ndarray:
        """Codes (T, B) as a C-contiguous int64 array, checked to be in range."""
        array = np.ascontiguousarray(codes.detach().cpu().numpy().astype(np.int64, copy=False))
        q = self.config.quantization_channels
        if array.min() < 0 or array.max() >= q:
            raise ValueError(f"codes must be in [0, {q - 1}], found values in "
                             f"[{array.min()}, {array.max()}]")
        return array

    def generate(self, codes_in: torch.Tensor, n_samples: int, temperature: float,
                 chunks: Iterator[tuple[int, int, torch.Tensor | None]],
                 progress: Progress | None = None) -> torch.Tensor:
        """Feed codes_in (B, T >= 1), then sample n_samples codes per stream -> (B, n_samples).

        `chunks` yields (start, stop, uniforms (stop - start, B) float64 or None), as
        `generation.uniform_chunks` does. The last sampled code is not fed back.
        """
        self.feed(codes_in)
        out = np.empty((n_samples, self.batch_size), np.int64)
        no_uniforms = np.zeros((0, self.batch_size), np.float64)
        no_codes = np.zeros((0, self.batch_size), np.int64)
        for start, stop, uniforms in chunks:
            u = no_uniforms if uniforms is None else np.ascontiguousarray(uniforms.numpy())
            for first in range(start, stop, self._steps_per_call):
                last = min(first + self._steps_per_call, stop)
                part = u if uniforms is None else u[first - start:last - start]
                self._run(no_codes, part, float(temperature), out[first:last], last < n_samples)
            if progress is not None:
                progress(stop, n_samples)
        return torch.from_numpy(out.T.copy())
