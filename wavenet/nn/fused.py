"""The WaveNet stack as a few large matrix products, time-major, with a hand-written backward.

`WaveNet.forward` runs through here. The parameters are the model's own `nn.Conv1d` /
`nn.Embedding` ones (state dicts do not change); only the arithmetic is arranged for
speed. Activations live time-major as (T, B, C) flattened to (T*B, C) rows, so that the
input d steps back in time is the same matrix d*B rows earlier: a dilated tap is a
contiguous view of a zero-padded copy, never a shifted copy or a concatenation::

    xc  = [zeros (d*B rows) ; x]                         x's padded copy, compute dtype
    a   = xc[d*B:] @ Wa_tap1 + xc[:T*B] @ Wa_tap0 + ba   (T*B, G/2) filter half
    b   = the same with the gate half's weights          (T*B, G/2)
    h   = tanh(a) * sigmoid(b)                           (T*B, G/2)
    x   = x + h @ W_res + b_res                          residual stream, float32
    skips = [h_1 | ... | h_L] @ [W_skip_1 ; ... ; W_skip_L] + sum of biases   one product

`_BlockStack` computes the blocks and the skip sum forward and backward by hand (the head
and the loss stay ordinary autograd), which lets it keep what autograd cannot:
- no pads or concatenations of activations: a tap's gradient is added into a padded
  gradient buffer shifted by the same d*B rows;
- the filter and gate halves are separate contiguous products: elementwise work on half
  of a wider matrix ran slower (bf16 tanh: 1.6x);
- under bf16 autocast it casts each layer's input once and keeps the residual stream and
  its gradient in float32 (as autocast does), but without autocast's per-product casts;
- in float32 the gate's tanh is computed as 2 sigmoid(2a) - 1 (the factor 2 folded into
  a copy of the weights): PyTorch's CPU tanh costs ~6x its sigmoid per element
  (measured). bf16 keeps tanh: 2 sigmoid - 1 would round values near 0 to bf16's steps
  at 0.5 (1/128);
- backward keeps only each layer's padded input, tanh(a), sigmoid(b) and h; a forward
  with no backward to follow (no_grad, inference_mode, nothing requiring grad: eval and
  validation) keeps none of them, only [h_1 | ... | h_L] for the skip product.

Measured (benchmarks/train.py, one thread, `default` size) in docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


class StackModel(Protocol):
    """What the fused pass reads of a `WaveNet` (wavenet/nn/model.py, which imports this
    module): its blocks, config, embedding, conditioning terms and head."""

    config: Any
    blocks: Any
    head_hidden: Any
    training: bool

    def embed(self, codes: torch.Tensor) -> torch.Tensor: ...

    def conditioning_terms(
        self, global_features: torch.Tensor | None, local_features: torch.Tensor | None
    ) -> torch.Tensor: ...

    def output_layer(self, hidden: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class _Plan:
    """What `_BlockStack` needs besides tensors: shapes, dilations, which blocks have a
    residual projection, the dtype products run in, whether a backward will follow."""

    batch: int
    length: int
    dilations: tuple[int, ...]
    has_residual: tuple[bool, ...]
    dtype: torch.dtype
    # False under no_grad / inference_mode or when no input requires grad (eval,
    # validation, a frozen model): each layer's activations are then freed as soon as the
    # next layer has them, not kept for a backward that never comes.
    for_backward: bool = True

    def layers(self, params: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
        """The flat parameter tuple -> per layer (dilated w, b, skip w, b[, residual w, b])."""
        out, i = [], 0
        for residual in self.has_residual:
            n = 6 if residual else 4
            out.append(params[i : i + n])
            i += n
        return out


def _block_parameters(model: StackModel) -> tuple[list[torch.Tensor], tuple[bool, ...]]:
    params: list[torch.Tensor] = []
    for block in model.blocks:
        params += [block.dilated.weight, block.dilated.bias, block.skip.weight, block.skip.bias]
        if block.residual is not None:
            params += [block.residual.weight, block.residual.bias]
    return params, tuple(block.residual is not None for block in model.blocks)


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """Autocast's dtype where autocast would cast `weight` (it leaves float64 alone),
    else the weight's own."""
    device = weight.device.type
    if torch.is_autocast_enabled(device) and weight.dtype != torch.float64:
        return torch.get_autocast_dtype(device)
    return weight.dtype


def _sigmoid_tanh(dtype: torch.dtype) -> bool:
    """Whether the gate's tanh is taken as 2 sigmoid(2a) - 1 (see the module docstring)."""
    return dtype in (torch.float32, torch.float64)


class _BlockStack(torch.autograd.Function):
    """x0 (T, B, R) float, terms (L, T or 1, B, G) or None, block parameters
    -> summed skips (T*B, S) in the compute dtype."""

    @staticmethod
    def forward(
        ctx: Any, plan: _Plan, x0: torch.Tensor, terms: torch.Tensor | None, *params: torch.Tensor
    ) -> torch.Tensor:
        batch, dtype = plan.batch, plan.dtype
        rows = plan.length * batch
        layers = plan.layers(params)
        half = params[0].shape[0] // 2
        x = x0.reshape(rows, -1)
        gated = x.new_empty((rows, len(layers) * half), dtype=dtype)  # [h_1 | ... | h_L]
        saved: list[torch.Tensor] = []  # per layer: padded input, tanh, sigmoid, h
        trick = _sigmoid_tanh(dtype)
        with torch.autocast(x0.device.type, enabled=False):
            for layer, p in enumerate(layers):
                dil_w, dil_b = p[0], p[1]
                k, shift = dil_w.shape[2], plan.dilations[layer] * batch
                pad = (k - 1) * shift
                xc = x.new_empty((pad + rows, x.shape[1]), dtype=dtype)
                xc[:pad].zero_()
                xc[pad:].copy_(x)
                # The filter (tanh) and gate (sigmoid) halves as separate contiguous
                # products: elementwise work on a half of a wider matrix runs slower
                # (measured 1.6x for bf16 tanh).
                halves = []
                for part, scale in (
                    (slice(0, half), 2.0 if trick else 1.0),
                    (slice(half, None), 1.0),
                ):
                    w = (dil_w[part] * scale).to(dtype)
                    z = torch.addmm((dil_b[part] * scale).to(dtype), xc[pad:], w[:, :, k - 1].t())
                    for j in range(k - 1):  # tap j reads (k - 1 - j) d steps back
                        z.addmm_(xc[j * shift : j * shift + rows], w[:, :, j].t())
                    if terms is not None:
                        z.view(-1, batch, half).add_(terms[layer][..., part], alpha=scale)
                    halves.append(z)
                tanh, sig = halves
                if trick:  # tanh a = 2 sigmoid(2a) - 1
                    torch.sigmoid_(tanh).mul_(2.0).sub_(1.0)
                else:
                    torch.tanh_(tanh)
                torch.sigmoid_(sig)
                h = tanh * sig
                gated[:, layer * half : (layer + 1) * half] = h
                if len(p) == 6:
                    res_w, res_b = p[4], p[5]
                    x = x + torch.addmm(res_b.to(dtype), h, res_w[:, :, 0].t().to(dtype))
                if plan.for_backward:
                    saved += [xc, tanh, sig, h]
            # Added in layer order, as sum() would from 0 (the same float rounding).
            skip_bias = sum((q[3] for q in layers[1:]), layers[0][3]).to(dtype)
            skips = torch.addmm(skip_bias, gated, _skip_matrix(layers).t().to(dtype))
        if plan.for_backward:
            ctx.plan = plan
            ctx.terms_shape = None if terms is None else (terms.shape, terms.dtype)
            # Through autograd, not as ctx attributes: backward then releases them even
            # while the loss is still held, and saved-tensor hooks see them.
            ctx.save_for_backward(gated, *saved, *params)
        return skips

    @staticmethod
    @once_differentiable  # not differentiable itself: a gradient of it raises, not misleads
    def backward(ctx: Any, d_skips: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        plan, dtype = ctx.plan, ctx.plan.dtype
        gated, *saved = ctx.saved_tensors
        params = tuple(saved[4 * len(plan.has_residual) :])
        batch, rows = plan.batch, plan.length * plan.batch
        layers = plan.layers(params)
        master = params[0].dtype
        grads: list[list[torch.Tensor]] = [[] for _ in layers]
        with torch.autocast(d_skips.device.type, enabled=False):
            d_s = d_skips.to(dtype).contiguous()
            skip_matrix = _skip_matrix(layers)  # (S, L G/2)
            d_gated = torch.mm(d_s, skip_matrix.to(dtype))  # (T*B, L G/2)
            d_skip_w = torch.mm(d_s.t(), gated).to(master)  # (S, L G/2)
            d_skip_b = _column_sums(d_s, master)
            # The gradient of the residual stream (float), with room in front for the
            # taps' shifted gradients; rows in front of `rows` are never read back.
            front = max((p[0].shape[2] - 1) * d * batch for p, d in zip(layers, plan.dilations))
            g_buffer = d_skips.new_zeros((front + rows, params[0].shape[1]), dtype=master)
            g = g_buffer[front:]
            d_local = g_buffer.new_zeros(g_buffer.shape, dtype=dtype) if dtype != master else None
            d_terms = None
            if ctx.terms_shape is not None:
                shape, terms_dtype = ctx.terms_shape
                d_terms = d_skips.new_empty(shape, dtype=terms_dtype)
            for layer in reversed(range(len(layers))):
                p = layers[layer]
                dil_w = p[0]
                xc, tanh, sig, h = saved[4 * layer : 4 * layer + 4]
                half, k = tanh.shape[1], dil_w.shape[2]
                shift = plan.dilations[layer] * batch
                d_h = d_gated[:, layer * half : (layer + 1) * half]
                layer_grads = [
                    d_skip_w[:, layer * half : (layer + 1) * half].unsqueeze(2),
                    d_skip_b.clone(),
                ]
                if len(p) == 6:
                    res_w = p[4]
                    g_c = g.to(dtype)
                    d_h = torch.addmm(d_h, g_c, res_w[:, :, 0].to(dtype))
                    layer_grads += [torch.mm(g_c.t(), h).unsqueeze(2).to(master), g.sum(0)]
                else:
                    d_h = d_h.contiguous()
                d_tanh = torch.ops.aten.tanh_backward(d_h * sig, tanh)
                d_sig = torch.ops.aten.sigmoid_backward(d_h.mul_(tanh), sig)
                tap_grads = [
                    torch.cat(
                        [torch.mm(d.t(), xc[j * shift : j * shift + rows]) for d in (d_tanh, d_sig)]
                    )
                    for j in range(k)
                ]
                layer_grads = [
                    torch.stack(tap_grads, 2).to(master),
                    torch.cat([_column_sums(d_tanh, master), _column_sums(d_sig, master)]),
                ] + layer_grads
                if d_terms is not None:
                    for d, part in ((d_tanh, slice(0, half)), (d_sig, slice(half, None))):
                        dv = d.view(-1, batch, half)
                        target = d_terms[layer][..., part]  # summed where terms broadcast
                        target.copy_(dv.sum_to_size(target.shape))
                # The input's gradient: tap j's goes (k - 1 - j) d steps back, into rows
                # in front of `front` that stand for no input (never read back). In bf16
                # the taps add up in a bf16 buffer first: a bf16 product added to the
                # float32 gradient costs a converted copy (measured 2 ms a layer per tap).
                w = dil_w.to(dtype)
                into = g_buffer if d_local is None else d_local  # None: dtype == master
                for j in reversed(range(k)):  # the current tap first: it overwrites d_local
                    target = into[front - (k - 1 - j) * shift :][:rows]
                    if j == k - 1 and into is d_local:
                        torch.mm(d_tanh, w[:half, :, j], out=target)
                    else:
                        target.addmm_(d_tanh, w[:half, :, j])
                    target.addmm_(d_sig, w[half:, :, j])
                if into is d_local:
                    g += into[front:]
                grads[layer] = layer_grads
        flat = [grad for layer_grads in grads for grad in layer_grads]
        return (None, g.view(plan.length, batch, -1), d_terms, *flat)


def _column_sums(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, C) -> (C,) in `dtype`. Summed in t's own dtype (PyTorch accumulates bf16 sums in
    float32) and then cast: `sum(dtype=float32)` converts all of t first (measured 2 ms
    per (32000, 64) bf16 tensor)."""
    return t.sum(0).to(dtype)


def _skip_matrix(layers: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    """All skip 1x1s side by side: (S, L G/2), so that the skips are one product."""
    return torch.cat([p[2][:, :, 0] for p in layers], dim=1)


def stack_logits(
    model: StackModel,
    codes: torch.Tensor,
    global_features: torch.Tensor | None = None,
    local_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """codes (B, T) -> logits (T, B, O), time-major; see `WaveNet.forward_features`.

    Conditioning: global (B, Cg), local (B, Cl, T), as `WaveNet.conditioning_features`
    returns them.
    """
    batch, length = codes.shape
    x0 = model.embed(codes.t())  # (T, B, R)
    terms = None
    if global_features is not None or local_features is not None:
        terms = model.conditioning_terms(global_features, local_features).transpose(0, 1)
    params, has_residual = _block_parameters(model)
    for_backward = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x0, terms, *params)
    )
    plan = _Plan(
        batch,
        length,
        tuple(model.config.dilations),
        has_residual,
        _compute_dtype(params[0]),
        for_backward,
    )
    skips = _BlockStack.apply(plan, x0, terms, *params)  # (T*B, S)
    hidden = torch.relu(
        F.linear(torch.relu(skips), model.head_hidden.weight[:, :, 0], model.head_hidden.bias)
    )
    hidden = F.dropout(hidden, model.config.dropout, model.training)
    return model.output_layer(hidden).view(length, batch, -1)  # "mol": float32 under bf16
