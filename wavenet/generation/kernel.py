"""The compiled CPU generation kernel: every step of incremental WaveNet in numba code.

The arithmetic is that of `wavenet.generation.incremental.FastGenerator` (the reference the tests
hold it to), rearranged for speed:

- weights arrive packed once into contiguous arrays (`wavenet.generation.fastpath` packs them),
  transposed so that every product is y (B, N) += x (B, K) @ Wt (K, N), walking each
  weight matrix once per step in memory order; the inner loops are explicit 512-bit
  vector code (`_make_tile`) that feeds each loaded weight row to four streams at a time;
- a layer's residual and skip projections are one product, h @ [W_res | W_skip], whose
  skip half accumulates over the layers (the last block's residual output is never used);
  each tap of the dilated convolution is a product of its own into the same sums;
- at batch 1 a step is limited by how fast ~3 MB of weights stream from the L3 cache, so
  at small batches the past taps, whose inputs are known `dilation` steps ahead, are
  gathered: at the first of every m steps one product applies the past-tap weights to
  the m inputs those steps will need and parks the sums in `pending`, m slots a layer
  that stay in cache until used (`fastpath.time_block`);
- sampling (the same inverse-CDF rule as `sampling.sample_codes`, in float64, or for a
  "mol" model the mixture rule of `logistic.sample_mixture`) runs in the kernel from
  uniform numbers drawn beforehand by the caller, so a chunk of samples costs one call
  from Python;
- a code reads embedding row code_rows[code] (the code itself, or for a "mol" model the
  mu-law code of its 16-bit sample); a "mol" model (layout's `mixtures` > 0) adds the
  sample's value k * (2 / 65535) - 1 through its input 1x1 (value_in = [weight; bias]),
  and its head emits 3K mixture parameters instead of Q logits;
- in float32, tanh is a rational approximation (relative error < 4e-7, a few ulp) that
  vectorises, and sigmoid(g) = (1 + tanh(g / 2)) / 2; float64 uses libm.

Reduced-precision weights (`fastpath.WEIGHT_FORMATS`): the products' weight matrices may
be bfloat16 (stored as uint16, widened to float32 exactly) or int8 with one float32 scale
per output column; x, y and every sum stay float32. With int8 weights a product sums
q x and the scales multiply the sum afterwards (s * (q x) + b, one pass over the outputs),
which `_step` does wherever a product's output is complete; the PyTorch definition of the
same reduced model is `wavenet.generation.reduced`. With "bf16-dot" a product's weights are
packed in pairs of rows (`fastpath.dot_pack`) and its inputs rounded to bfloat16 pairs
(`_round_pairs`), and `vdpbf16ps` (AVX-512 BF16) makes 32 products an instruction
(`_dot_code`); with "int8-dot", in groups of four rows (`fastpath.int8_dot_pack`), inputs
quantized per row (`_quantize_quads`), `vpdpbusd` (AVX-512 VNNI) makes 64 (`_vnni_code`).
`_product` picks the product code from the weights' array type when numba compiles, so
an instruction is only compiled for weights in its format.

Conditioning adds a per-layer (B, gate_channels) term to `z` in `_step`, right after the
dilated convolution, as in `incremental._block_step`. This module holds only compiled code
and its constants: no torch, no model; `run` is its one entry point.

numba compiles the kernel on first use (about 10 s for float32 and float64 together;
cache=True keeps the result on disk for later processes). The kernel runs on one thread.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

# Fused multiply-add, no signed zeros, reciprocal; no reassociation (the products keep
# the summation order they are written in), no assumptions about inf or NaN.
_FASTMATH = {"contract", "nsz", "arcp"}

# Rows of a weight matrix taken per pass over the batch (kept in L1 while the batch uses them).
_ROW_BLOCK = 32

# tanh(x) ~ x P(u) / Q(u), u = (x / 9)^2, |x| <= 9 (beyond, float32 tanh is +-1): a
# rational fit to tanh's relative error made for this module (max 3e-8 in exact
# arithmetic, < 4e-7 evaluated in float32).
_TANH_P = (
    0.9999999778790374,
    11.038665742448018,
    24.96042058850621,
    14.233208047540836,
    1.2006433437530606,
    -0.036349379819173494,
)
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
            return _tile_code(rows, context, builder, signature, args)

        return sig, codegen

    return tile


def _tile_code(rows, context, builder, signature, args):  # noqa: ANN001, ANN202
    """The LLVM IR of `_make_tile`'s intrinsic for `rows` streams; returns `done`."""
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
    # The weights' own vector type: float as y, or bfloat16 bits / int8 values widened.
    w_dtype = w_type.dtype
    w_bits = {types.uint16: 16, types.int8: 8}.get(w_dtype)
    w_vector = vector if w_bits is None else ir.VectorType(ir.IntType(w_bits), lanes)
    w_align = align if w_bits is None else w_bits // 8
    wide = ir.VectorType(i32, lanes)

    def at(a_type, arr, row, offset, col):  # noqa: ANN001, ANN202
        index = builder.add(row, ir.Constant(i64, offset))
        return cgutils.get_item_pointer(
            context, builder, a_type, arr, [index, col], wraparound=False
        )

    def broadcast(value):  # noqa: ANN001, ANN202
        one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(i32, 0))
        return builder.shuffle_vector(
            one,
            ir.Constant(vector, ir.Undefined),
            ir.Constant(ir.VectorType(i32, lanes), [0] * lanes),
        )

    zero = ir.Constant(i64, 0)
    xs = [
        [
            broadcast(
                builder.load(at(x_type, x_arr, i0_val, i, builder.add(k0_val, ir.Constant(i64, j))))
            )
            for j in range(4)
        ]
        for i in range(rows)
    ]
    w_rows = [at(w_type, w_arr, k0_val, j, zero) for j in range(4)]
    y_rows = [at(y_type, y_arr, i0_val, i, zero) for i in range(rows)]
    fma = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vector, [vector] * 3),
        f"llvm.fma.v{lanes}{'f32' if lanes == 16 else 'f64'}",
    )
    count = builder.udiv(cols_val, ir.Constant(i64, lanes))
    with cgutils.for_range(builder, count) as loop:
        offset = builder.mul(loop.index, ir.Constant(i64, lanes))

        def pointer(row):  # noqa: ANN001, ANN202
            return builder.bitcast(builder.gep(row, [offset]), vector.as_pointer())

        def weights(row):  # noqa: ANN001, ANN202
            raw = builder.load(
                builder.bitcast(builder.gep(row, [offset]), w_vector.as_pointer()), align=w_align
            )
            if w_dtype == types.uint16:  # bfloat16: the high half of a float32
                shifted = builder.shl(builder.zext(raw, wide), ir.Constant(wide, [16] * lanes))
                return builder.bitcast(shifted, vector)
            if w_dtype == types.int8:
                return builder.sitofp(builder.sext(raw, wide), vector)
            return raw

        ws = [weights(row) for row in w_rows]
        for i in range(rows):
            total = builder.fmul(xs[i][0], ws[0])
            for j in range(1, 4):
                total = builder.call(fma, [xs[i][j], ws[j], total])
            target = pointer(y_rows[i])
            builder.store(
                builder.fadd(builder.load(target, align=align), total), target, align=align
            )
    return builder.mul(count, ir.Constant(i64, lanes))


class _BFloat(ir.Type):
    """LLVM's `bfloat` scalar type, which llvmlite's IR builder does not name."""

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BFloat)

    def __hash__(self) -> int:
        return hash("bfloat")


def _make_packed(code, blocks: int, chains: int):  # noqa: ANN001, ANN202
    """An intrinsic f(y, b, wt, c0, inputs, n) that adds row b of a product with a packed
    matrix wt to y[b, :n], for the 16-column blocks c0 <= c < c0 + `blocks`; `code`
    (`_dot_code` or `_vnni_code`) says in which format. The sums of each block are split
    over `chains` independent accumulators (inner index % chains), added at the end, so
    that the instruction's latency does not bound the loop; a block past column n is
    masked."""

    @intrinsic
    def product(typingctx, y, b, wt, c0, inputs, n):  # noqa: ANN001, ANN202
        sig = types.void(y, b, wt, c0, inputs, n)

        def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
            code(_Packed(context, builder, signature, args, blocks, chains))
            return context.get_dummy_value()

        return sig, codegen

    return product


class _Packed:
    """What `_dot_code` and `_vnni_code` share: pointers to the blocks' weight rows (each
    a vector of 16 words per inner index), to row b of the packed inputs (a word per inner
    index), the chained accumulators, their loop, and the masked update of y."""

    def __init__(self, context, builder, signature, args, blocks, chains):  # noqa: ANN001
        y_type, _, w_type, _, x_type, _ = signature.args
        self.context, self.builder, self.blocks, self.chains = context, builder, blocks, chains
        self.i32, self.i64 = ir.IntType(32), ir.IntType(64)
        self.floats = ir.VectorType(ir.FloatType(), 16)
        self.words = ir.VectorType(self.i32, 16)
        self.y_type, self.y_arr = y_type, context.make_array(y_type)(context, builder, args[0])
        w_arr = context.make_array(w_type)(context, builder, args[2])
        x_arr = context.make_array(x_type)(context, builder, args[4])
        self.b, self.c0, self.n = args[1], args[3], args[5]
        self.rows = cgutils.unpack_tuple(builder, w_arr.shape, 3)[1]
        zero = ir.Constant(self.i64, 0)
        self.w_rows = [
            builder.bitcast(
                cgutils.get_item_pointer(
                    context,
                    builder,
                    w_type,
                    w_arr,
                    [builder.add(self.c0, ir.Constant(self.i64, j)), zero, zero],
                    wraparound=False,
                ),
                self.words.as_pointer(),
            )
            for j in range(blocks)
        ]
        self.x_row = builder.bitcast(
            cgutils.get_item_pointer(
                context, builder, x_type, x_arr, [self.b, zero], wraparound=False
            ),
            self.i32.as_pointer(),
        )

    def spread(self, value, vector):  # noqa: ANN001, ANN201
        """`value` in every lane of `vector` (a vector type of 16 lanes)."""
        builder = self.builder
        one = builder.insert_element(
            ir.Constant(vector, ir.Undefined), value, ir.Constant(self.i32, 0)
        )
        return builder.shuffle_vector(
            one, ir.Constant(vector, ir.Undefined), ir.Constant(self.words, [0] * 16)
        )

    def input_word(self, k):  # noqa: ANN001, ANN201
        """The word k of row b of the inputs, in all 16 lanes."""
        return self.spread(self.builder.load(self.builder.gep(self.x_row, [k])), self.words)

    def weights(self, j, k):  # noqa: ANN001, ANN201
        """Block j's 16 weight words for inner index k."""
        return self.builder.load(self.builder.gep(self.w_rows[j], [k]), align=1)

    def sums(self, count, zero, step):  # noqa: ANN001, ANN201
        """Accumulate step(sum, j, k) -> new sum over k < count for every block j, in
        `chains` interleaved chains; -> the chains' sums of each block (lists)."""
        builder, i64, chains = self.builder, self.i64, self.chains
        slots = [
            [cgutils.alloca_once_value(builder, zero) for _ in range(self.blocks)]
            for _ in range(chains)
        ]

        def accumulate(k, chain):  # noqa: ANN001, ANN202
            for j in range(self.blocks):
                builder.store(step(builder.load(slots[chain][j]), j, k), slots[chain][j])

        rounds = builder.udiv(count, ir.Constant(i64, chains))
        with cgutils.for_range(builder, rounds) as loop:
            first = builder.mul(loop.index, ir.Constant(i64, chains))
            for chain in range(chains):
                accumulate(builder.add(first, ir.Constant(i64, chain)), chain)
        done = builder.mul(rounds, ir.Constant(i64, chains))
        with cgutils.for_range(builder, builder.sub(count, done)) as loop:
            accumulate(builder.add(done, loop.index), 0)
        return [[builder.load(slots[c][j]) for c in range(chains)] for j in range(self.blocks)]

    def add_to_y(self, j, values):  # noqa: ANN001
        """y[b, 16 (c0 + j) + l] += values[l] for the columns below n."""
        builder, i64 = self.builder, self.i64
        column = builder.mul(builder.add(self.c0, ir.Constant(i64, j)), ir.Constant(i64, 16))
        target = builder.bitcast(
            cgutils.get_item_pointer(
                self.context, builder, self.y_type, self.y_arr, [self.b, column], wraparound=False
            ),
            self.floats.as_pointer(),
        )
        _masked_add(builder, target, values, builder.sub(self.n, column))


def _dot_code(packed: _Packed) -> None:
    """The "bf16-dot" product: wt (N/16, K/2, 32) from `fastpath.dot_pack`, the inputs'
    bfloat16 pairs in pairs[b, :K/2] (`_round_pairs`);

        y[b, n'] += sum over p < K/2 of  x[2p] wt[2p, n'] + x[2p + 1] wt[2p + 1, n']

    one `vdpbf16ps` (16 x 2 products into 16 float32 sums) per block and pair."""
    builder, floats = packed.builder, packed.floats
    halves = ir.VectorType(_BFloat(), 32)
    dpbf16 = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(floats, [floats, halves, halves]),
        "llvm.x86.avx512bf16.dpbf16ps.512",
    )
    x_pairs: dict = {}

    def step(total, j, k):  # noqa: ANN001, ANN202
        if j == 0:  # one broadcast of the input pair for all the blocks
            x_pairs[0] = builder.bitcast(packed.input_word(k), halves)
        w_pairs = builder.bitcast(packed.weights(j, k), halves)
        return builder.call(dpbf16, [total, x_pairs[0], w_pairs])

    for j, chains in enumerate(packed.sums(packed.rows, ir.Constant(floats, [0.0] * 16), step)):
        total = chains[0]
        for other in chains[1:]:
            total = builder.fadd(total, other)
        packed.add_to_y(j, total)


def _vnni_code(packed: _Packed) -> None:
    """The "int8-dot" product: wt (N/16, K/4 + 1, 64) from `fastpath.int8_dot_pack`
    (weights q + 128 as uint8, then the 16 columns' float32 scales s), the inputs' int8
    values xq four to a word in quads[b, :K/4], their scale sx and 128 sum(xq) in the two
    words after them (`_quantize_quads`);

        y[b, n'] += sx * s[n'] * (sum over k of q[k, n'] xq[k])

    one `vpdpbusd` (16 x 4 products of uint8 by int8 into 16 int32 sums) per block and
    word; the sums are exact, and the weights' offset of 128 is taken off once."""
    builder, i64, floats, words = packed.builder, packed.i64, packed.floats, packed.words
    vpdpbusd = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(words, [words, words, words]),
        "llvm.x86.avx512.vpdpbusd.512",
    )
    count = builder.sub(packed.rows, ir.Constant(i64, 1))  # the last row holds the scales
    x_quads: dict = {}

    def step(total, j, k):  # noqa: ANN001, ANN202
        if j == 0:
            x_quads[0] = packed.input_word(k)
        return builder.call(vpdpbusd, [total, packed.weights(j, k), x_quads[0]])

    sums = packed.sums(count, ir.Constant(words, [0] * 16), step)
    x_scale = builder.bitcast(builder.load(builder.gep(packed.x_row, [count])), ir.FloatType())
    offset = packed.input_word(builder.add(count, ir.Constant(i64, 1)))
    x_scales = packed.spread(x_scale, floats)
    for j, chains in enumerate(sums):
        total = chains[0]
        for other in chains[1:]:
            total = builder.add(total, other)
        exact = builder.sitofp(builder.sub(total, offset), floats)
        scales = builder.load(
            builder.bitcast(builder.gep(packed.w_rows[j], [count]), floats.as_pointer()), align=4
        )
        packed.add_to_y(j, builder.fmul(builder.fmul(exact, scales), x_scales))


def _masked_add(builder, target, values, left):  # noqa: ANN001
    """*target (16 float32) += values in the lanes below `left` (i64), the others untouched."""
    f32, i1, i32 = ir.FloatType(), ir.IntType(1), ir.IntType(32)
    floats, words, mask_type = ir.VectorType(f32, 16), ir.VectorType(i32, 16), ir.VectorType(i1, 16)
    masked_load = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(floats, [floats.as_pointer(), i32, mask_type, floats]),
        "llvm.masked.load.v16f32.p0",
    )
    masked_store = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [floats, floats.as_pointer(), i32, mask_type]),
        "llvm.masked.store.v16f32.p0",
    )
    one = builder.insert_element(
        ir.Constant(words, ir.Undefined), builder.trunc(left, i32), ir.Constant(i32, 0)
    )
    limit = builder.shuffle_vector(
        one, ir.Constant(words, ir.Undefined), ir.Constant(words, [0] * 16)
    )
    mask = builder.icmp_signed("<", ir.Constant(words, list(range(16))), limit)
    before = builder.call(
        masked_load, [target, ir.Constant(i32, 4), mask, ir.Constant(floats, [0.0] * 16)]
    )
    builder.call(masked_store, [builder.fadd(before, values), target, ir.Constant(i32, 4), mask])


@intrinsic
def _float_bits(typingctx, value):  # noqa: ANN001, ANN202
    """A float32's bits as a uint32 (no conversion)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _float_from_bits(typingctx, bits):  # noqa: ANN001, ANN202
    """The float32 whose bits are the uint32 `bits` (no conversion)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@intrinsic
def _widen(typingctx, value):  # noqa: ANN001, ANN202
    """One weight as a float: bfloat16 bits (uint16) or int8 -> float32; floats as they are."""
    if value == types.uint16:

        def bf16(context, builder, signature, args):  # noqa: ANN001, ANN202
            wide = builder.zext(args[0], ir.IntType(32))
            return builder.bitcast(
                builder.shl(wide, ir.Constant(ir.IntType(32), 16)), ir.FloatType()
            )

        return types.float32(value), bf16
    if value == types.int8:

        def int8(context, builder, signature, args):  # noqa: ANN001, ANN202
            return builder.sitofp(args[0], ir.FloatType())

        return types.float32(value), int8

    def same(context, builder, signature, args):  # noqa: ANN001, ANN202
        return args[0]

    return value(value), same


# logistic.LOG_SCALE_MIN (this module imports no torch).
_LOG_SCALE_MIN = -14.0

_tile4 = _make_tile(4)
_tile1 = _make_tile(1)
# Four blocks (64 columns) with two chains each, or one block with four: eight or four
# independent sums in flight.
_dot4 = _make_packed(_dot_code, 4, 2)
_dot1 = _make_packed(_dot_code, 1, 4)
_vnni4 = _make_packed(_vnni_code, 4, 2)
_vnni1 = _make_packed(_vnni_code, 1, 4)


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
                        yi[n] += (
                            a0 * _widen(w0[n])
                            + a1 * _widen(w1[n])
                            + a2 * _widen(w2[n])
                            + a3 * _widen(w3[n])
                        )
            b += streams
        for b in range(batch):
            yb = y[b]
            for k in range(r4, r1):
                wk = wt[k]
                a0 = x[b, k]
                for n in range(cols):
                    yb[n] += a0 * _widen(wk[n])


@njit(cache=True, error_model="numpy", inline="always")
def _bf16_bits(value):  # pragma: no cover - compiled
    """A float32 rounded to bfloat16 (to nearest, ties to even), as its 16 bits in a uint32;
    NaN stays a (quiet) NaN."""
    bits = _float_bits(np.float32(value))
    if bits & np.uint32(0x7FFFFFFF) > np.uint32(0x7F800000):
        return (bits >> np.uint32(16)) | np.uint32(0x40)
    odd = (bits >> np.uint32(16)) & np.uint32(1)
    return (bits + np.uint32(0x7FFF) + odd) >> np.uint32(16)


@njit(cache=True, error_model="numpy")
def _round_pairs(x, pairs):  # pragma: no cover - compiled
    """pairs[b, p] = the bfloat16 roundings of x[b, 2p] (low half) and x[b, 2p + 1] (high
    half), a product's inputs as `vdpbf16ps` reads them; an odd K's last pair ends in 0."""
    rows, k = x.shape
    half = k // 2
    for b in range(rows):
        for p in range(half):
            low = _bf16_bits(x[b, 2 * p])
            pairs[b, p] = low | (_bf16_bits(x[b, 2 * p + 1]) << np.uint32(16))
        if k % 2:
            pairs[b, half] = _bf16_bits(x[b, k - 1])


_ROUNDER = np.float32(1.5 * 2**23)


@njit(cache=True, error_model="numpy", inline="always")
def _peak(row):  # pragma: no cover - compiled
    """max |row|, as the largest of the values' bits with the sign bit cleared: for
    non-negative floats the bits order as the values do, and an integer maximum runs in
    vector code where a float one (NaN rules) does not."""
    top = np.uint32(0)
    for i in range(row.shape[0]):
        bits = _float_bits(np.float32(row[i])) & np.uint32(0x7FFFFFFF)
        top = bits if bits > top else top
    return _float_from_bits(top)


@njit(cache=True, error_model="numpy")
def _quantize_quads(x, quads):  # pragma: no cover - compiled
    """Each row of x as int8 for `vpdpbusd`: xq = round(x / sx) (ties to even), sx =
    max |x| / 127 (1 for a row of zeros), four values a word in quads[b, :ceil(K/4)]
    (lowest byte first, zeros after the last), then sx's bits and 128 sum(xq): the
    arithmetic of `reduced.int8_rows`. Plain division (no fast-math), as torch divides."""
    rows, k = x.shape
    words = (k + 3) // 4
    for b in range(rows):
        row = x[b]
        peak = _peak(row)
        scale = peak / np.float32(127.0) if peak > 0 else np.float32(1.0)
        values = quads[b, :words].view(np.int8)
        total = 0
        for i in range(k):
            # |x / sx| <= 127 (+ rounding): adding 1.5 * 2^23 and taking it off again
            # rounds to the nearest integer, ties to even, in vector code (np.rint is
            # a library call).
            q = (np.float32(row[i]) / scale + _ROUNDER) - _ROUNDER
            q = min(max(q, np.float32(-127.0)), np.float32(127.0))
            values[i] = np.int8(q)
            total += np.int32(q)
        for i in range(k, 4 * words):
            values[i] = 0
        quads[b, words] = _float_bits(scale)
        quads[b, words + 1] = np.uint32(np.int64(128 * total) & 0xFFFFFFFF)


def _packed_product(prepare, four, one):  # noqa: ANN001, ANN202
    """The product with a packed matrix: the inputs made ready once (`prepare(x, pairs)`),
    then for each row, four blocks of 16 columns at a time (`four`), then one (`one`)."""

    def product(x, wt, y, pairs):  # noqa: ANN001, ANN202
        prepare(x, pairs)
        columns = y.shape[1]
        blocks = wt.shape[0]
        for b in range(x.shape[0]):
            c = 0
            while c + 4 <= blocks:
                four(y, b, wt, c, pairs, columns)
                c += 4
            while c < blocks:
                one(y, b, wt, c, pairs, columns)
                c += 1

    return product


def _product(x, wt, y, pairs):  # noqa: ANN001, ANN202 - typed by the overload below
    """y (B, N) += x (B, K) @ W (K, N), W in any weight format; compiled code only."""
    raise NotImplementedError("_product is called from compiled code only")


@overload(_product, jit_options={"fastmath": _FASTMATH, "error_model": "numpy"})
def _product_typed(x, wt, y, pairs):  # noqa: ANN001, ANN202
    """A (K, N) matrix (float32, float64, bfloat16 bits or int8) goes through `_matmul_acc`;
    a packed "bf16-dot" matrix (N/16, K/2, 32, uint16) through `_dot_code`, with x rounded
    to bfloat16 pairs in `pairs` first, and a packed "int8-dot" one (uint8) through
    `_vnni_code`, with x quantized there. Chosen at compile time from wt's type, so that a
    CPU without an instruction never compiles it."""
    _check_packed(wt)
    if wt.ndim == 3 and wt.dtype == types.uint8:
        return _packed_product(_quantize_quads, _vnni4, _vnni1)
    if wt.ndim == 3:
        return _packed_product(_round_pairs, _dot4, _dot1)

    def dense(x, wt, y, pairs):  # noqa: ANN001, ANN202
        _matmul_acc(x, wt, y)

    return dense


def _check_packed(wt) -> None:  # noqa: ANN001
    """A 3-D weight array is a packed "-dot" matrix: uint8 ("int8-dot") or uint16
    ("bf16-dot"), C-contiguous (the dot code reads whole 64-byte rows); anything else is a
    typing error rather than reads past its end."""
    if wt.ndim == 3 and (wt.dtype not in (types.uint8, types.uint16) or wt.layout != "C"):
        raise TypingError(
            f"a packed weight matrix must be a C-contiguous uint8 or uint16 array, got {wt}"
        )


def _fits(wt, rows, cols):  # noqa: ANN001, ANN202 - typed by the overload below
    """Whether wt holds a (rows, cols) product matrix in its format; compiled code only."""
    raise NotImplementedError("_fits is called from compiled code only")


@overload(_fits)
def _fits_typed(wt, rows, cols):  # noqa: ANN001, ANN202
    _check_packed(wt)
    if wt.ndim == 3 and wt.dtype == types.uint8:
        return lambda wt, rows, cols: wt.shape == ((cols + 15) // 16, (rows + 3) // 4 + 1, 64)
    if wt.ndim == 3:
        return lambda wt, rows, cols: wt.shape == ((cols + 15) // 16, (rows + 1) // 2, 32)
    return lambda wt, rows, cols: wt.shape == (rows, cols)


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
def _step(
    weights, layout, state, scratch, codes, t, approximate, cond, ci
):  # pragma: no cover - compiled
    """One step for every stream: codes (B,) at time t -> scratch logits (B, O); state updated.

    layout = (dilations, kernel_size, ring offsets, time blocks, pending offsets, mixtures):
    per layer, then K for a "mol" model (0 for categorical).
    A layer whose time block m is 1 multiplies each tap's input by its weights every step.
    A layer with m > 1, at a step t that m divides, multiplies the past taps' inputs of
    steps t .. t + m - 1 (all from before t, since m <= dilation) by their weights in one
    product per tap and keeps the sums in its m pending slots; step t + i adds slot i: the
    past-tap weights are read once per m steps.

    weights ends with the column scales of int8 weights (sd (L, G), srs (L, R + S), s1 (S,),
    s2 (O,)), or four empty arrays: a product then starts from zero instead of its bias,
    and its sum becomes s * sum + b once complete; the skips sum over the layers in `skips`.
    """
    emb, code_rows, value_in, wd, bd, wrs, br, bs, w1, b1, w2, b2, sd, srs, s1, s2 = weights
    dilations, kernel_size, offsets, time_blocks, pending_offsets, mixtures = layout
    ring, pending = state
    x, pairs, z, h, out, skips, hidden, logits = scratch
    batch, residual = x.shape
    skip = skips.shape[1]
    gate = z.shape[1]
    layers = wd.shape[0]
    taps = kernel_size - 1
    scaled = sd.shape[0] > 0
    for b in range(batch):
        x[b] = emb[code_rows[codes[b]]]
        if mixtures > 0:
            value = codes[b] * (2.0 / 65535.0) - 1.0
            for c in range(residual):
                x[b, c] = (x[b, c] + value * value_in[0, c]) + value_in[1, c]
        if scaled:
            skips[b] = bs
        else:
            out[b, residual:] = bs
    for layer in range(layers):
        dilation = dilations[layer]
        span = taps * dilation
        base = offsets[layer]
        block = time_blocks[layer]
        for b in range(batch):
            if scaled:
                z[b] = 0.0
            else:
                z[b] = bd[layer]
        if block == 1:
            for j in range(taps):
                slot = base + (t - (taps - j) * dilation) % span
                _product(ring[slot], wd[layer, j], z, pairs)
        else:
            sums = pending[pending_offsets[layer] : pending_offsets[layer] + block]
            if t % block == 0:
                # The past taps of steps t .. t + block - 1, all inputs of earlier steps
                # (block <= dilation), in one product per tap; their ring slots are
                # consecutive (block divides t, the dilation and the span) and still
                # hold them (the oldest, time t - span, is overwritten below).
                rows = sums.reshape((block * batch, gate))
                rows[:] = 0.0
                for j in range(taps):
                    first = base + (t - (taps - j) * dilation) % span
                    inputs = ring[first : first + block].reshape((block * batch, residual))
                    _product(inputs, wd[layer, j], rows, pairs)
            past = sums[t % block]
            for b in range(batch):
                z[b] += past[b]
        _product(x, wd[layer, taps], z, pairs)
        if scaled:
            for b in range(batch):
                for c in range(gate):
                    z[b, c] = z[b, c] * sd[layer, c] + bd[layer, c]
        if ci >= 0:  # conditioning: cond[ci] is (layers, B, gate) for this step
            for b in range(batch):
                z[b] += cond[ci, layer, b]
        if span > 0:  # kernel_size 1: a 1x1 of the current input, nothing to keep
            ring[base + t % span] = x
        _gate(z, h, approximate)
        # out = [residual | skip]: the residual part is this layer's, the skip part sums
        # over the layers.
        for b in range(batch):
            if scaled:
                out[b] = 0.0
            else:
                out[b, :residual] = 0.0
        _product(h, wrs[layer], out, pairs)
        if scaled:
            for b in range(batch):
                for c in range(residual):
                    out[b, c] *= srs[layer, c]
                for c in range(skip):
                    skips[b, c] += out[b, residual + c] * srs[layer, residual + c]
        if layer + 1 < layers:  # the last block's residual output is not used
            for b in range(batch):
                for c in range(residual):
                    x[b, c] += out[b, c] + br[layer, c]
    for b in range(batch):
        for c in range(skip):
            skips[b, c] = max(skips[b, c] if scaled else out[b, residual + c], 0.0)
    for b in range(batch):
        if scaled:
            hidden[b] = 0.0
        else:
            hidden[b] = b1
    _product(skips, w1, hidden, pairs)
    if scaled:
        for b in range(batch):
            for c in range(skip):
                hidden[b, c] = hidden[b, c] * s1[c] + b1[c]
    _relu(hidden)
    for b in range(batch):
        if scaled:
            logits[b] = 0.0
        else:
            logits[b] = b2
    _product(hidden, w2, logits, pairs)
    if scaled:
        head = logits.shape[1]
        for b in range(batch):
            for c in range(head):
                logits[b, c] = logits[b, c] * s2[c] + b2[c]


@njit(cache=True, error_model="numpy", inline="always")
def _argmax(row, count):  # pragma: no cover - compiled
    best = 0
    for i in range(1, count):
        if row[i] > row[best]:
            best = i
    return best


@intrinsic
def _double_from_bits(typingctx, bits):  # noqa: ANN001, ANN202
    """The float64 whose bits are the int64 `bits` (no conversion)."""

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


# exp(x) = 2^k e^r, k = round(x / ln 2), r = x - k ln 2 (ln 2 in two parts, so that r is
# exact to ~1e-20), |r| <= ln 2 / 2, where the Taylor series to r^13 is within 4e-18 of e^r.
_LN2_HIGH = 0.6931471803691238
_LN2_LOW = 1.9082149292705877e-10
_EXP_TERMS = tuple(1.0 / math.factorial(n) for n in range(14))
# Below this, e^x is under float64's normal range; it is taken as 0.
_EXP_FLOOR = -708.0


@njit(cache=True, error_model="numpy", inline="always")
def _exp_nonpositive(x):  # pragma: no cover - compiled
    """e^x for float64 x <= 0, within 1 ulp of math.exp (0 below -708, NaN for NaN), in
    code that vectorises (math.exp is a library call per value)."""
    clamped = max(x, _EXP_FLOOR)
    k = math.floor(clamped * (1.0 / math.log(2.0)) + 0.5)
    r = (clamped - k * _LN2_HIGH) - k * _LN2_LOW
    p = _EXP_TERMS[13]
    p = p * r + _EXP_TERMS[12]
    p = p * r + _EXP_TERMS[11]
    p = p * r + _EXP_TERMS[10]
    p = p * r + _EXP_TERMS[9]
    p = p * r + _EXP_TERMS[8]
    p = p * r + _EXP_TERMS[7]
    p = p * r + _EXP_TERMS[6]
    p = p * r + _EXP_TERMS[5]
    p = p * r + _EXP_TERMS[4]
    p = p * r + _EXP_TERMS[3]
    p = p * r + _EXP_TERMS[2]
    p = p * r + _EXP_TERMS[1]
    p = p * r + _EXP_TERMS[0]
    scale = _double_from_bits((np.int64(k) + 1023) << 52)
    # Below the floor 0; NaN stays NaN, as from math.exp (the draw then takes the last code).
    return p * scale if x > _EXP_FLOOR else (0.0 if x <= _EXP_FLOOR else x)


@njit(cache=True, error_model="numpy", inline="always")
def _draw(row, count, best, uniform, temperature, cdf):  # pragma: no cover - compiled
    """Index i < count drawn from softmax(row[:count] / temperature) by the inverse CDF at
    `uniform` (float64; best = the argmax, for a stable exponent) -> (i, cdf target)."""
    top = np.float64(row[best])
    for i in range(count):  # the difference first: no temperature overflows it
        cdf[i] = _exp_nonpositive((np.float64(row[i]) - top) / temperature)
    total = 0.0
    for i in range(count):
        total += cdf[i]
        cdf[i] = total
    target = uniform * total
    for i in range(count):
        if cdf[i] > target:
            return i, target
    return count - 1, target


@njit(cache=True, error_model="numpy")
def _sample_row(row, uniform, temperature, cdf):  # pragma: no cover - compiled
    """The code `sampling.sample_codes` picks for one row of logits."""
    count = row.shape[0]
    best = _argmax(row, count)
    if temperature == 0.0:
        return best
    return _draw(row, count, best, uniform, temperature, cdf)[0]


@njit(cache=True, error_model="numpy")
def _sample_mixture_row(row, uniform, temperature, mixtures, cdf):  # pragma: no cover - compiled
    """The code `logistic.sample_mixture` picks for one row of 3K mixture parameters."""
    best = _argmax(row, mixtures)
    if temperature == 0.0:
        value = np.float64(row[mixtures + best])
    else:
        index, target = _draw(row, mixtures, best, uniform, temperature, cdf)
        low = cdf[index - 1] if index > 0 else 0.0
        inner = min(max((target - low) / (cdf[index] - low), 0.0), 1.0)
        log_scale = max(np.float64(row[2 * mixtures + index]), _LOG_SCALE_MIN)
        scale = math.exp(log_scale) * temperature
        value = np.float64(row[mixtures + index]) + scale * (math.log(inner) - math.log1p(-inner))
    if math.isnan(value):  # NaN outputs: read as 0.0 (as an int, NaN would index anywhere)
        value = 0.0
    position = (value + 1.0) * (65535.0 / 2.0) + 0.5
    return int(math.floor(min(max(position, 0.0), 65535.0)))


@njit(cache=True, error_model="numpy")
def _check_layout(weights, layout, state, scratch):  # pragma: no cover - compiled
    """Raise ValueError unless every array `_step` indexes has the size the layout says.

    The sizes are taken from the weights (residual = embedding columns, gate = dilated
    bias columns, skip = skip bias length, head = head bias length), the layers from the
    dilations, the batch from the ring; everything else must agree with them, and every
    ring and pending slot a layer reaches must lie inside its buffer."""
    emb, code_rows, value_in, wd, bd, wrs, br, bs, w1, b1, w2, b2, sd, srs, s1, s2 = weights
    dilations, kernel_size, offsets, time_blocks, pending_offsets, mixtures = layout
    ring, pending = state
    x, pairs, z, h, out, skips, hidden, logits = scratch
    layers = dilations.shape[0]
    residual, gate, skip, head = emb.shape[1], bd.shape[1], bs.shape[0], b2.shape[0]
    batch = ring.shape[1]
    taps = kernel_size - 1
    if kernel_size < 1 or layers < 1 or gate % 2 != 0 or mixtures < 0:
        raise ValueError(
            "kernel.run: the layout needs kernel_size >= 1, at least one layer, "
            "an even gate width and mixtures >= 0"
        )
    if (
        offsets.shape[0] != layers
        or time_blocks.shape[0] != layers
        or pending_offsets.shape[0] != layers
    ):
        raise ValueError(
            "kernel.run: the layout's offsets and time blocks must have one entry per dilation"
        )
    # The products' vector code reads and writes whole rows of these: each must be one
    # block of memory in C order.
    if not (
        x.flags.c_contiguous
        and pairs.flags.c_contiguous
        and z.flags.c_contiguous
        and h.flags.c_contiguous
        and out.flags.c_contiguous
        and skips.flags.c_contiguous
        and hidden.flags.c_contiguous
        and logits.flags.c_contiguous
        and ring.flags.c_contiguous
        and pending.flags.c_contiguous
    ):
        raise ValueError("kernel.run: the scratch, ring and pending arrays must be C-contiguous")
    widest = max(residual, gate // 2, skip)  # the most inputs a product takes
    rows = batch  # the most rows a product takes: a batch, or a time block of them
    for layer in range(time_blocks.shape[0]):
        rows = max(rows, time_blocks[layer] * batch)
    if (
        x.shape != (batch, residual)
        or pairs.shape[0] < rows
        or pairs.shape[1] < (widest + 1) // 2 + 2
        or z.shape != (batch, gate)
        or h.shape != (batch, gate // 2)
        or out.shape != (batch, residual + skip)
        or skips.shape != (batch, skip)
        or hidden.shape != (batch, skip)
        or logits.shape != (batch, head)
    ):
        raise ValueError(
            "kernel.run: a scratch array does not match the batch and the "
            "weights' widths (x, pairs, z, h, out, skips, hidden, logits)"
        )
    if (
        wd.shape[:2] != (layers, kernel_size)
        or not _fits(wd[0, 0], residual, gate)
        or bd.shape[0] != layers
        or wrs.shape[0] != layers
        or not _fits(wrs[0], gate // 2, residual + skip)
        or br.shape != (layers, residual)
        or value_in.shape != (2, residual)
        or not _fits(w1, skip, skip)
        or b1.shape[0] != skip
        or not _fits(w2, skip, head)
    ):
        raise ValueError(
            "kernel.run: a weight array does not match the layout (layers, "
            "kernel_size) and the widths of the embedding and biases"
        )
    if sd.shape[0] > 0 and (
        sd.shape != (layers, gate)
        or srs.shape != (layers, residual + skip)
        or s1.shape[0] != skip
        or s2.shape[0] != head
    ):
        raise ValueError(
            "kernel.run: the int8 weights' column scales must be (layers, gate), "
            "(layers, residual + skip), (skip,) and (head,)"
        )
    for i in range(code_rows.shape[0]):
        if code_rows[i] < 0 or code_rows[i] >= emb.shape[0]:
            raise ValueError("kernel.run: a code's embedding row lies outside the embedding weight")
    if mixtures > 0 and (3 * mixtures > head or code_rows.shape[0] < 65536):
        raise ValueError(
            "kernel.run: a mixture head needs 3 x mixtures outputs and an "
            "embedding row for each of the 65,536 16-bit samples"
        )
    if ring.shape[2] != residual or pending.shape[1] != batch or pending.shape[2] != gate:
        raise ValueError(
            "kernel.run: the ring buffer must be (slots, batch, residual) and "
            "the pending buffer (slots, batch, gate)"
        )
    for layer in range(layers):
        dilation, block = dilations[layer], time_blocks[layer]
        span = taps * dilation
        if dilation < 1 or offsets[layer] < 0 or offsets[layer] + span > ring.shape[0]:
            raise ValueError(
                "kernel.run: a layer's (kernel_size - 1) x dilation slots lie "
                "outside the ring buffer"
            )
        if block < 1 or (block > 1 and (taps < 1 or dilation % block != 0)):
            raise ValueError(
                "kernel.run: a time block must be 1, or divide the layer's "
                "dilation (kernel_size >= 2)"
            )
        if block > 1 and (
            pending_offsets[layer] < 0 or pending_offsets[layer] + block > pending.shape[0]
        ):
            raise ValueError("kernel.run: a gathered layer's slots lie outside the pending buffer")


@njit(cache=True, error_model="numpy")
def _check_call(
    code_rows,
    batch,
    layers,
    gate,
    head,
    mixtures,
    t0,
    fed,
    cdf,
    uniforms,
    temperature,
    out,
    step_after_last,
    cond,
    cond_constant,
):  # pragma: no cover - compiled
    """Raise ValueError unless the codes, uniforms, outputs and conditioning of one `run`
    call fit the layout (see `_check_layout`)."""
    if t0 < 0 or fed.shape[1] != batch or out.shape[1] != batch:
        raise ValueError(
            "kernel.run: t0 must be >= 0 and the fed codes and outputs must be (steps, batch)"
        )
    for i in range(fed.shape[0]):
        for b in range(batch):
            if fed[i, b] < 0 or fed[i, b] >= code_rows.shape[0]:
                raise ValueError("kernel.run: fed codes must lie in [0, classes)")
    if mixtures == 0 and (
        cdf.shape[0] < 1 or cdf.shape[0] > head or cdf.shape[0] > code_rows.shape[0]
    ):
        raise ValueError(
            "kernel.run: the cdf must hold one entry per output, at most the "
            "head's width and the number of codes"
        )
    if mixtures > 0 and cdf.shape[0] < mixtures:
        raise ValueError("kernel.run: the cdf must hold one entry per mixture component")
    if (
        temperature > 0.0
        and out.shape[0] > 0
        and (uniforms.shape[0] < out.shape[0] or uniforms.shape[1] != batch)
    ):
        raise ValueError("kernel.run: one uniform number per output code is needed (steps, batch)")
    steps = fed.shape[0] + max(out.shape[0] - (0 if step_after_last else 1), 0)
    if cond.shape[0] > 0:
        if cond.shape[1] != layers or cond.shape[2] != batch or cond.shape[3] != gate:
            raise ValueError("kernel.run: conditioning terms must be (steps, layers, batch, gate)")
        if not cond_constant and cond.shape[0] < steps:
            raise ValueError("kernel.run: fewer conditioning rows than steps")


@njit(cache=True, error_model="numpy", nogil=True)
def run(
    weights,
    layout,
    state,
    scratch,
    t0,
    approximate,
    fed,
    cdf,
    uniforms,
    temperature,
    out,
    step_after_last,
    cond,
    cond_constant,
):  # pragma: no cover - compiled
    """Teacher-force `fed` (T, B) from time t0, then sample out (n, B) from the logits on,
    feeding each sample back except the last one (unless step_after_last).

    weights, layout, state, scratch: the tuples `_step` unpacks (`fastpath` builds them);
    cdf: (O,) float64 scratch, O the model's outputs; uniforms: (n, B) float64 (unused at
    temperature 0).
    cond: (steps, layers, B, gate) conditioning for the steps of this call, in order
    (empty when the model has none), or (1, ...) for all of them when cond_constant.

    Every array's size is checked against the layout first (`_check_layout`,
    `_check_call`: ValueError), once per call, so that no step indexes outside an array
    whatever the caller passed."""
    _check_layout(weights, layout, state, scratch)
    _check_call(
        weights[1],
        state[0].shape[1],
        layout[0].shape[0],
        weights[4].shape[1],
        weights[11].shape[0],
        layout[5],
        t0,
        fed,
        cdf,
        uniforms,
        temperature,
        out,
        step_after_last,
        cond,
        cond_constant,
    )
    steps = 0
    for i in range(fed.shape[0]):
        ci = -1 if cond.shape[0] == 0 else (0 if cond_constant else steps)
        _step(weights, layout, state, scratch, fed[i], t0 + i, approximate, cond, ci)
        steps += 1
    t = t0 + fed.shape[0]
    logits = scratch[-1][:, : cdf.shape[0]]  # the head's columns without their padding
    mixtures = layout[5]
    count, batch = out.shape
    for i in range(count):
        for b in range(batch):
            uniform = uniforms[i, b] if temperature > 0.0 else 0.0
            if mixtures > 0:
                out[i, b] = _sample_mixture_row(logits[b], uniform, temperature, mixtures, cdf)
            else:
                out[i, b] = _sample_row(logits[b], uniform, temperature, cdf)
        if i + 1 < count or step_after_last:
            ci = -1 if cond.shape[0] == 0 else (0 if cond_constant else steps)
            _step(weights, layout, state, scratch, out[i], t + i, approximate, cond, ci)
            steps += 1
