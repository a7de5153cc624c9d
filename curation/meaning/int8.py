"""A BERT encoder's layers in exact integer arithmetic: the same bits on every CPU.

MiniLM (decontamination's model, `curation.meaning`) runs in int8 by default. Its vectors are recorded as evidence
(similarities in rejects.jsonl and the funnel) and decide at thresholds, so they must not depend on which CPU
computed them. Two things made them depend on it, and this module removes both:

- **Saturating integer products.** onnxruntime's uint8 x int8 kernel on x86-64 without AVX-512 VNNI (AVX2, and
  AVX-512 without VNNI) adds pairs of products in 16 bits and saturates (255 * 127 * 2 > 32767): the integer sums
  were wrong there and right on a VNNI machine. Here each weight is split into two halves of at most 64
  (`halved_weight`), so a pair of a uint8 activation's products stays within 16 bits on every uint8 x int8 kernel:
  every sum is the exact integer on every kernel, and the fast ones (VNNI, AMX) are used where the CPU has them.
  Where a probe at load finds this CPU's kernel exact on the very rows and columns that saturate the others
  (`products_exact`), the weights stay whole (`plain_weight`): the same integers at half the products' length.
  Without onnxruntime the same integers come from numpy's float32 products in slices of `EXACT_SLICE` rows of the
  weight, where every partial sum is an integer below 2**24, exact in any order (`integer_products`).
- **Float work whose bits depend on the kernel.** int8 rounds every activation to a step, so a last-bit difference
  before a rounding moves an integer and, through six layers, a vector by 1e-2 (measured: the same int8 model with
  OpenBLAS's Sandybridge kernels, or numpy without its AVX2 loops, gave similarities 0.01 apart). So nothing here
  computes a float whose bits a kernel chooses: products and sums are of integers and exact (float32 sums below
  2**24, float64 below 2**53); the rest is elementwise IEEE arithmetic (+, -, *, /, sqrt, rounding: correctly
  rounded, the same at every SIMD width), maxima and table lookups. No library ``exp`` or ``erf`` and no float sum
  of non-integers: LayerNorm's statistics are sums of the inputs on a 1/4096 grid (`exact_norm`); GELU is
  ``max(x, 0)`` less a table of ``|x| Phi(-|x|)`` (`gelu`); attention multiplies queries and keys of 724 levels and
  values of 2047, and reads ``exp`` from a table of 16-bit integers (`attention`). The tables are built from the
  platform's ``math`` functions, and any entry so near a rounding boundary that a libm differing in its last bit
  could round it the other way is recomputed with mpmath (`_correctly_rounded`).

numpy is the definition (`projection`, `layer_after_attention`, `attention`) and the path without onnxruntime;
`LayerGraphs` runs the same operations as onnxruntime graphs, faster, and tests/test_int8_exact.py holds the two
bit for bit. Each vector stays within 0.3% (cosine) of the float32 model's (docs/performance.md).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ACTIVATION_LEVELS = 127  # a row's activations on [-127, 127] steps of max|x| / 127, stored as uint8 around 128
WEIGHT_LEVELS = 127  # a column's weights on [-127, 127] steps of max|w| / 127, stored as uint8 around 128
ZERO_POINT = 128
EXACT_SLICE = 384  # numpy's exact products: 127 * 127 * 384 < 2**24, so a float32 sum over a slice is exact
NORM_GRID = 4096  # LayerNorm's statistics read the input on a grid of 1/4096 ...
NORM_RANGE = 1024  # ... clipped to [-1024, 1024] (MiniLM's inputs reach 231): 384 squares sum below 2**53
GELU_GRID = 4096  # GELU read from a table at steps of 1/4096 (error under 1.5e-4, a hundredth of the next rounding)
GELU_RANGE = 8  # the table covers [-8, 8]; above, GELU(x) = x to 1e-15; below, 0
VALUE_LEVELS = 2047  # values in 12 bits: 65535 * 2047 * 256 tokens < 2**53 (queries and keys: `_key_levels`)
GELU_BLOCK = 64  # rows per numpy pass: a block's temporaries stay in the core's cache (5x faster than whole arrays)
EXP_GRID = 1024  # softmax's exp(-d) read at steps of 1/1024 of d ...
EXP_LEVELS = 65535  # ... as an integer of 16 bits: exp(-d) * 65535 rounded
EXP_RANGE = 12  # exp(-12) * 65535 < 0.5: every entry beyond is 0


@functools.cache
def gelu_table() -> np.ndarray:
    """``|x| * Phi(-|x|)`` as float32 at ``x = i / GELU_GRID`` for ``|x| <= GELU_RANGE`` (``GELU(x) = max(x, 0) -
    |x| * Phi(-|x|)``, and the term vanishes beyond the table: 2e-15 at 8)."""
    points = np.arange(-GELU_RANGE * GELU_GRID, GELU_RANGE * GELU_GRID + 1) / GELU_GRID
    # Phi(-a) = erfc(a / sqrt 2) / 2: erfc keeps its digits where 1 - erf would cancel
    values = np.array([0.5 * abs(x) * math.erfc(abs(x) / math.sqrt(2)) for x in points.tolist()])

    def exact(x: float) -> Any:
        import mpmath

        return 0.5 * abs(x) * mpmath.erfc(abs(mpmath.mpf(x)) / mpmath.sqrt(2))

    return _correctly_rounded(points, values, exact, _near_float32_halfway).astype(np.float32)


@functools.cache
def exp_table() -> np.ndarray:
    """``round(exp(-i / EXP_GRID) * EXP_LEVELS)`` for ``i`` in ``[0, EXP_RANGE * EXP_GRID]``, as float64 integers."""
    points = np.arange(EXP_RANGE * EXP_GRID + 1) / EXP_GRID
    values = np.array([math.exp(-d) * EXP_LEVELS for d in points.tolist()])

    def exact(d: float) -> Any:
        import mpmath

        return mpmath.exp(-mpmath.mpf(d)) * EXP_LEVELS

    return np.rint(_correctly_rounded(points, values, exact, _near_half_integer))


def _correctly_rounded(
    points: np.ndarray, values: np.ndarray, exact: Callable[[float], Any], near: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``values`` (float64s from ``math`` at ``points``), but ``exact(point)`` (mpmath, 40 digits) where ``near``
    says a value lies so close to where the table's rounding changes that a libm differing in its last bits could
    round it the other way: so the table is the same on every machine."""
    close = np.flatnonzero(near(values))
    if len(close):  # rare (none or one per table): mpmath is imported only then
        import mpmath

        with mpmath.workdps(40):
            values = values.copy()
            values[close] = [float(exact(float(points[i]))) for i in close]
    return values


def _near_float32_halfway(values: np.ndarray) -> np.ndarray:
    """Where ``values`` lie within 1e-12 (relative) of halfway between the two float32 numbers around them."""
    nearest = values.astype(np.float32)
    other = np.nextafter(nearest, np.where(values > nearest, np.float32(np.inf), np.float32(-np.inf)))
    halfway = (nearest.astype(np.float64) + other) / 2
    return (values != nearest) & (np.abs(values - halfway) <= 1e-12 * np.abs(values))


def _near_half_integer(values: np.ndarray) -> np.ndarray:
    """Where ``values`` lie within 1e-9 of a half integer (where rounding to an integer changes)."""
    return np.abs(values - np.floor(values) - 0.5) <= 1e-9


def weight_columns(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``weight`` (``x @ weight``) as uint8 columns (``WEIGHT_LEVELS`` steps either side of ``ZERO_POINT``) and each
    column's float32 step."""
    step = np.abs(weight).max(0) / np.float32(WEIGHT_LEVELS)
    step[step == 0] = 1
    levels = np.clip(np.rint(weight / step), -WEIGHT_LEVELS, WEIGHT_LEVELS)
    return (levels + ZERO_POINT).astype(np.uint8), step.astype(np.float32)


def quantised_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x``'s rows as uint8 around ``ZERO_POINT`` (round half to even) and each row's float32 step
    (max |x| / `ACTIVATION_LEVELS`; any step for an all-zero row)."""
    steps = np.maximum(np.maximum(x.max(1), -x.min(1)) * np.float32(1 / ACTIVATION_LEVELS), np.float32(1e-30))
    levels = np.rint(x / steps[:, None])
    levels += ZERO_POINT
    return levels.astype(np.uint8), steps


DENSE = ("qkv", "out", "up", "down")  # a layer's weights multiplied in int8
HALF_LEVELS = 64  # `halved_weight`: 2 * 255 * 64 = 32640, below int16's 32767


def halved_weight(weight: np.ndarray) -> np.ndarray:
    """uint8 columns ``weight`` (around `ZERO_POINT`) as the int8 rows of two halves stacked, ``[low; high]`` with
    ``low + high = weight - 128`` and every entry within ``±HALF_LEVELS``: ``[q, q] @ [low; high] = q @ (weight -
    128)``. onnxruntime's uint8 x int8 kernels are its fast ones (on a Sapphire Rapids core, AMX: a 2048 x 384 x
    1536 product in 3.6 ms at the halves' double length against 14.7 ms in uint8 x uint8); those without
    VNNI add pairs of products in 16 bits, saturating, and with weights of at most 64 a pair of a uint8's products
    stays within 16 bits (`HALF_LEVELS`): every sum is exact on every kernel."""
    centred = weight.astype(np.int16) - ZERO_POINT
    low = centred // 2
    return np.concatenate([low, centred - low]).astype(np.int8)


def plain_weight(weight: np.ndarray) -> np.ndarray:
    """uint8 columns ``weight`` (around `ZERO_POINT`) as int8, ``weight - 128``: for a kernel whose pairs of products
    do not saturate (`products_exact`), ``q @ plain_weight(w)`` is `halved_weight`'s sum at half its length."""
    return (weight.astype(np.int16) - ZERO_POINT).astype(np.int8)


# `products_exact`'s probe: one row, a few, and counts around the kernels' row blocks; columns in whole blocks of 16
# and a remainder (the kernel is chosen by CPU for every shape; the probe holds it to each way a shape is cut)
PROBE_ROWS = (1, 2, 3, 5, 16, 31, 64, 257)
PROBE_COLUMNS = 35


def probe_weights(shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """int8 weights of each ``(depth, width)`` for `products_exact`: columns of +127, of -127, alternating, the rest
    scrambled (`_scrambled`; at least three columns)."""
    weights = []
    for depth, width in shapes:
        w = (_scrambled((depth, max(width, 3)), 2 * WEIGHT_LEVELS + 1) - WEIGHT_LEVELS).astype(np.int8)
        w[:, 0], w[:, 1], w[:, 2] = WEIGHT_LEVELS, -WEIGHT_LEVELS, WEIGHT_LEVELS
        w[1::2, 2] = -WEIGHT_LEVELS
        weights.append(w)
    return weights


def _scrambled(shape: tuple[int, int], levels: int, seed: int = 0) -> np.ndarray:
    """Integers in ``[0, levels)`` spread over ``shape`` by a multiplicative hash (numpy.random's import costs
    more than the probe)."""
    cells = np.arange(shape[0] * shape[1], dtype=np.uint64).reshape(shape) + np.uint64(seed * 7919)
    return ((cells * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) % np.uint64(levels)  # wraps: a scramble


def products_exact(product: Callable[[list[np.ndarray]], Sequence[np.ndarray]], weights: Sequence[np.ndarray]) -> bool:
    """Whether ``product(rows)``, an uint8 x int8 kernel's ``(rows[i] - 128) @ weights[i]`` for every ``i`` (float32
    of its int32 sums), is exact where a kernel adding pairs of products in 16 bits saturates (`halved_weight`):
    `probe_weights`' columns against rows of 255, of 0, alternating and scrambled, `PROBE_ROWS` of them. Such a
    kernel misses every sum of a row of 255 and a column of +-127 by thousands."""
    for count in PROBE_ROWS:
        rows = [_scrambled((count, len(w)), 256, count).astype(np.uint8) for w in weights]
        for q in rows:
            q[0] = 255
            q[1:2] = 0
            q[2:3, ::2] = 255
        for q, w, found in zip(rows, weights, product(rows), strict=True):
            exact = ((q.astype(np.int32) - ZERO_POINT) @ w.astype(np.int32)).astype(np.float32)  # numpy's, no BLAS
            if not np.array_equal(np.asarray(found, np.float32), exact):
                return False
    return True


def integer_products(q: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(q - 128) @ (weight - 128)`` as exact int32, in numpy: float32 products of slices of `EXACT_SLICE` rows of
    ``weight``, whose sums are integers below 2**24 (exact in any order), added as int64."""
    rows, centred = q.astype(np.float32) - ZERO_POINT, weight.astype(np.float32) - ZERO_POINT
    total = np.zeros((len(q), weight.shape[1]), np.int64)
    for start in range(0, weight.shape[0], EXACT_SLICE):
        total += (rows[:, start : start + EXACT_SLICE] @ centred[start : start + EXACT_SLICE]).astype(np.int64)
    return total.astype(np.int32)


def dense(x: np.ndarray, weight: np.ndarray, step: np.ndarray, bias: np.ndarray, passes: int = 1) -> np.ndarray:
    """``x @ W + bias`` for ``W`` given as uint8 columns ``weight`` of ``step`` (`weight_columns`), ``x``'s rows in
    int8 (`quantised_rows`; ``passes`` 2: a second pass reads what the first rounding left), the products exact and
    scaled back by the column's step, then the row's."""
    total: np.ndarray | None = None
    for number in range(passes):
        q, steps = quantised_rows(x)
        term = integer_products(q, weight).astype(np.float32)
        term *= step
        term *= steps[:, None]
        total = term if total is None else total + term
        if number + 1 < passes:
            x = x - (q.astype(np.float32) - ZERO_POINT) * steps[:, None]
    assert total is not None
    total += bias
    return total


def layer_after_attention(arrays: Mapping[str, np.ndarray], attended: np.ndarray, x: np.ndarray,
                          eps: float) -> np.ndarray:  # fmt: skip
    """A BERT layer's output from its attention's output ``attended`` and its input ``x``: the output projection,
    residual and LayerNorm, the feed-forward pair with GELU, residual and LayerNorm (numpy: the definition that
    `LayerGraphs` computes faster)."""
    a = arrays

    def linear(key: str, source: np.ndarray) -> np.ndarray:
        return dense(source, a[f"{key}.int8"], a[f"{key}.scale"], a[f"{key}_bias"])

    x = exact_norm(linear("out", attended) + x, a["norm1.weight"], a["norm1.bias"], eps)
    down = linear("down", gelu(linear("up", x)))
    down += x
    return exact_norm(down, a["norm2.weight"], a["norm2.bias"], eps)


def projection(arrays: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A layer's query, key and value projection of ``x``, read in two int8 passes (in one, that rounding moved the
    vectors further than every other rounding together)."""
    return dense(x, arrays["qkv.int8"], arrays["qkv.scale"], arrays["qkv_bias"], passes=2)


def exact_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, its mean and variance from sums of ``x`` on a ``1 / NORM_GRID`` grid: integers,
    and their squares, whose float64 sums stay below 2**53 (`_norm_range`), so exact in any order."""
    limit = np.float32(_norm_range(x.shape[1]) * NORM_GRID)
    grid = np.clip(np.rint(x * np.float32(NORM_GRID)), -limit, limit).astype(np.float64)
    size = x.shape[1] * NORM_GRID
    mean = grid.sum(1, keepdims=True) / size
    variance = np.maximum(np.square(grid).sum(1, keepdims=True) / (size * NORM_GRID) - np.square(mean), 0)
    normed = x - mean.astype(np.float32)
    normed *= (1 / np.sqrt(variance + eps)).astype(np.float32)
    normed *= weight
    normed += bias
    return normed


def _norm_range(hidden: int) -> int:
    """`NORM_RANGE`, less if ``hidden`` squares of ``NORM_RANGE * NORM_GRID`` could reach 2**53."""
    return min(NORM_RANGE, math.isqrt((2**53 - 1) // hidden) // NORM_GRID)


_MAGIC = np.float32(2**23)  # t + 2**23 for 0 <= t < 2**22 holds round(t) (half to even) in its low bits ...
_MAGIC_BITS = np.int32(0x4B000000)  # ... above the bits of 2**23: far cheaper than numpy's float-to-int cast


def _rounded(t: np.ndarray) -> np.ndarray:
    """``t`` (float32, in ``[0, 2**22]``; overwritten) rounded half to even, as int32."""
    t += _MAGIC
    index = t.view(np.int32)
    index -= _MAGIC_BITS
    return index


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU as ``max(x, 0)`` less `gelu_table`'s nearest entry (clamped beyond it, where the term is 0), in row
    blocks of `GELU_BLOCK`."""
    out, table = np.empty_like(x), gelu_table()
    limit = np.float32(GELU_RANGE * GELU_GRID)
    for start in range(0, len(x), GELU_BLOCK):
        block, result = x[start : start + GELU_BLOCK], out[start : start + GELU_BLOCK]
        t = block * np.float32(GELU_GRID)
        np.clip(t, -limit, limit, out=t)
        t += limit
        np.take(table, _rounded(t).astype(np.intp), out=result, mode="wrap")  # in range: no checks
        np.subtract(np.maximum(block, 0), result, out=result)
    return out


def _key_levels(size: int) -> int:
    """The integer range of queries and keys for heads of ``size``: their products summed over a head stay below
    2**24, so float32 matrix products of them are exact (724 for MiniLM's 32)."""
    return math.isqrt((2**24 - 1) // size)


def _on_levels(a: np.ndarray, axes: tuple[int, ...], levels: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """``a`` as integers (of ``dtype``) on ``levels`` steps of its max |a| over ``axes`` either side of 0, and the
    steps."""
    steps = np.maximum(np.abs(a).max(axis=axes, keepdims=True).astype(dtype) / dtype(levels), dtype(1e-30))
    return np.rint(a / steps), steps


class Scratch:
    """Arrays `attention` writes its large intermediates into, reused by every group and layer of one forward pass
    (`curation.meaning.encoder.Bert.pooled`): fresh arrays of a few MB each time were half of attention's time, in
    page faults (glibc hands freed memory back to the system and the next call touches it anew). One per pass, never
    shared between threads."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """An uninitialised array of ``shape``: a view of the buffer ``name``, grown when it is too small."""
        size = math.prod(shape)
        array = self._arrays.get(name)
        if array is None or array.size < size:
            array = self._arrays[name] = np.empty(size, dtype)
        return array[:size].reshape(shape)


def attention(qkv: np.ndarray, batch: int, length: int, heads: int, scratch: Scratch | None = None) -> np.ndarray:
    """Self-attention of ``batch`` texts of ``length`` tokens (``qkv``: their projections, row by row), every
    product and sum an exact integer: queries on `_key_levels` steps per token and head, keys per text and head (so
    a row's logits share one scale), values on `VALUE_LEVELS` per text and head, ``exp`` from `exp_table`. The
    logits, table indices and weights are written into ``scratch``'s arrays (None: fresh ones)."""
    scratch = scratch or Scratch()
    hidden = qkv.shape[1] // 3
    size = hidden // heads
    q, k, v = np.ascontiguousarray(qkv.reshape(batch, length, 3, heads, size).transpose(2, 0, 3, 1, 4))
    levels = _key_levels(size)
    (q, q_steps), (k, k_steps) = _on_levels(q, (3,), levels, np.float32), _on_levels(k, (2, 3), levels, np.float32)
    shape = (batch, heads, length, length)
    keys = np.ascontiguousarray(k.transpose(0, 1, 3, 2))  # contiguous: BLAS
    logits = np.matmul(q, keys, out=scratch.get("logits", shape, np.float32))  # exact: below 2**24
    # exp(logit - max) = exp(-scale * (top - logit)): its table index
    scale = (q_steps.astype(np.float64) * k_steps * (EXP_GRID / math.sqrt(size))).astype(np.float32)
    index = np.subtract(logits.max(-1, keepdims=True), logits, out=logits)
    index *= scale
    np.minimum(index, np.float32(EXP_RANGE * EXP_GRID), out=index)
    positions = scratch.get("positions", shape, np.intp)
    np.copyto(positions, _rounded(index))
    weights = np.take(exp_table(), positions, mode="wrap", out=scratch.get("weights", shape, np.float64))  # in range
    v, v_steps = _on_levels(v, (2, 3), VALUE_LEVELS, np.float64)
    attended = weights @ v  # exact: below 65535 * 2047 * length
    attended *= v_steps / weights.sum(-1, keepdims=True)
    return attended.transpose(0, 2, 1, 3).reshape(batch * length, hidden).astype(np.float32)


class Int8Layers:
    """A BERT encoder's layers around attention in exact int8 arithmetic: `projection` and `layer_after_attention`,
    run as one onnxruntime graph per layer (`LayerGraphs`: the same operations, so the same bits, faster), or in
    numpy where onnxruntime is not installed or cannot run the graphs (announced: `graphs_or_none`)."""

    def __init__(self, layers: Sequence[Mapping[str, np.ndarray]], eps: float, store: GraphStore | None = None):
        """``layers``: each layer's arrays by name (`LAYER_ARRAYS`, from `weight_columns` and the checkpoint);
        ``store``: where `LayerGraphs` keeps its serialised graphs (None: built every time)."""
        self.layers, self.eps = layers, float(eps)
        runtime = onnxruntime_module()
        self.graphs = graphs_or_none(runtime, layers, self.eps, store) if runtime is not None else None

    def norm(self, x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return exact_norm(x, weights[0], weights[1], self.eps)

    def project(self, x: np.ndarray) -> np.ndarray:
        """The first layer's query, key and value projection of ``x``."""
        return self.graphs.project(x) if self.graphs else projection(self.layers[0], x)

    def after_attention(self, layer: int, attended: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``layer``'s output, and the next layer's projection of it (None after the last)."""
        if self.graphs:
            return self.graphs.after_attention(layer, attended, x)
        y = layer_after_attention(self.layers[layer], attended, x, self.eps)
        following = layer + 1 < len(self.layers)
        return y, projection(self.layers[layer + 1], y) if following else None


def graphs_or_none(
    runtime: Any, layers: Sequence[Mapping[str, np.ndarray]], eps: float, store: GraphStore | None
) -> LayerGraphs | None:
    """`LayerGraphs`, or None, announced, where this onnxruntime refuses them (an older release than the graphs'
    `IR_VERSION` or opset, say): numpy's layers give the same vectors, slower. Only onnxruntime's own errors fall
    back; any other is a fault and raised."""
    try:
        return LayerGraphs(runtime, layers, eps, store)
    except Exception as err:
        if not type(err).__module__.startswith("onnxruntime"):
            raise
        version, reason = getattr(runtime, "__version__", "?"), str(err).splitlines()[0]
        log.warning("semantic: onnxruntime %s cannot run MiniLM's int8 graphs (%s): its int8 layers run in numpy "
                    "(the same vectors, slower)", version, reason)  # fmt: skip
        return None


LAYER_ARRAYS = (
    *(f"{key}.{part}" for key in DENSE for part in ("int8", "scale")),
    "qkv_bias", "out_bias", "up_bias", "down_bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
)  # fmt: skip


# ``store(name, build)``: the serialised graph ``name`` as kept, else ``build()``'s bytes, kept for the next process
GraphStore = Callable[[str, Callable[[], bytes]], bytes]


@functools.cache
def onnxruntime_module() -> Any:
    """onnxruntime (with onnx, which builds its graphs: found, imported only when a graph is built), or None,
    announced once, when either is missing; the sessions allocate from one shared arena (an arena each, or none,
    cost a quarter more time)."""
    import importlib.util

    try:
        if importlib.util.find_spec("onnx") is None:
            raise ImportError("No module named 'onnx'")
        import onnxruntime
    except ImportError as err:
        log.warning("semantic: onnxruntime or onnx missing (%s): MiniLM's int8 layers run in numpy (the same "
                    "vectors, slower)", err)  # fmt: skip
        return None
    arena, default = onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, onnxruntime.OrtMemType.DEFAULT
    cpu = onnxruntime.OrtMemoryInfo("Cpu", arena, 0, default)
    onnxruntime.create_and_register_allocator(cpu, onnxruntime.OrtArenaCfg(0, -1, -1, -1))
    return onnxruntime


# The graphs' ONNX IR version: opset 18's own (ONNX 1.13), which onnxruntime reads from 1.14 on. Left to onnx, the IR
# version is its release's newest (onnx 1.23 writes 14), and an onnxruntime older than that onnx refuses the graph
# ("Unsupported model IR version: 14, max supported IR version: 13", seen on a GPU machine's image).
IR_VERSION = 8
OPSET = 18


def onnx_model(graph: Any) -> Any:
    """An ONNX model of ``graph`` at `IR_VERSION`, opset `OPSET` and Microsoft's domain (``MatMulIntegerToFloat``)."""
    from onnx import helper

    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION)


class LayerGraphs:
    """`projection` and `layer_after_attention` as onnxruntime graphs of the same operations in the same order.

    Per layer, a graph from its attention's output and input to the feed-forward's first product (the output
    projection, residual, LayerNorm, the product), numpy's `gelu` (a table lookup: onnxruntime's Gather was ten
    times slower), and a graph from there to the layer's output and the next layer's projection (the second
    product, residual, LayerNorm, projection); a first graph projects the embeddings. Only operations whose result
    the arithmetic fixes are used — ``MatMulIntegerToFloat`` on uint8 x `halved_weight` (exact int32 sums on every
    kernel, converted to float32 and multiplied by the column's step as `dense` does), IEEE elementwise arithmetic
    (Add, Sub, Mul, Div, Sqrt, Round, Cast), ``QuantizeLinear`` (divide, round half to even, add the zero point),
    ``DequantizeLinear``, maxima and minima, float64 sums of integers below 2**53 — and graph rewrites are off, so
    nothing is fused into an operation of another precision. tests/test_semantic.py holds the graphs to the numpy
    definition bit for bit.
    """

    def __init__(
        self, runtime: Any, layers: Sequence[Mapping[str, np.ndarray]], eps: float, store: GraphStore | None = None,
        layout: str | None = None,
    ):  # fmt: skip
        """``store`` keeps the serialised graphs (`GraphStore`; names ``project``, ``before-<layer>``,
        ``after-<layer>``, with ``-plain`` in the plain layout, and ``probe``) for the next process, which then
        neither imports onnx nor builds them (a third of loading MiniLM); its caller names it by what decides the
        graphs (the layers' arrays, this module's code). ``layout``: the weights' layout, ``plain`` (`plain_weight`)
        or ``halved`` (`halved_weight`); None: plain where this CPU's kernel is exact on the probe
        (`products_exact`), else halved. Both give the same integers, so the same bits."""
        self._runtime, self._eps = runtime, eps
        self._store: GraphStore = store or (lambda name, build: build())
        hidden, inner, qkv = (len(layers[0][k]) for k in ("out_bias", "up_bias", "qkv_bias"))
        shapes = [(depth, PROBE_COLUMNS) for depth in sorted({hidden, inner})]  # the layers' depths
        self.layout = layout or ("plain" if self._products_exact(shapes) else "halved")
        log.debug("semantic: MiniLM's int8 products on %s weights (products_exact)", self.layout)
        self._project = self._session("project", self._projection, {"next.": layers[0]}, [("x", hidden)], [("h", qkv)])
        halves = [("attended", hidden), ("x", hidden)], [("x1", hidden), ("up.y", inner)]
        self._before = [
            self._session(f"before-{i}", self._first_half, {"this.": a}, *halves) for i, a in enumerate(layers)
        ]
        self._after = []
        for i, (a, following) in enumerate(zip(layers, [*layers[1:], None], strict=True)):
            arrays, outputs = {"this.": a}, [("y", hidden)]
            if following is not None:
                arrays, outputs = arrays | {"next.": following}, [*outputs, ("h", qkv)]
            inputs = [("up.gelu", inner), ("x1", hidden)]
            self._after.append(self._session(f"after-{i}", self._second_half, arrays, inputs, outputs))

    def project(self, x: np.ndarray) -> np.ndarray:
        return self._project.run(None, {"x": x})[0]

    def _products_exact(self, shapes: Sequence[tuple[int, int]]) -> bool:
        """`products_exact` on this CPU's kernel: a graph of one ``MatMulIntegerToFloat`` per ``(depth, width)``,
        its weights constants as the layers' are (onnxruntime packs those ahead: the kernel the layers run)."""
        weights = probe_weights(shapes)

        def serialised() -> bytes:
            from onnx import TensorProto, helper, numpy_helper

            zero, one = np.asarray(ZERO_POINT, np.uint8), np.asarray(1, np.float32)
            nodes, inputs, outputs = [], [], []
            constants = [numpy_helper.from_array(zero, "zero"), numpy_helper.from_array(one, "one")]
            for i, w in enumerate(weights):
                constants += [
                    numpy_helper.from_array(w, f"w{i}"),
                    numpy_helper.from_array(np.ones(w.shape[1], np.float32), f"s{i}"),
                ]
                inputs.append(helper.make_tensor_value_info(f"q{i}", TensorProto.UINT8, ["rows", w.shape[0]]))
                outputs.append(helper.make_tensor_value_info(f"p{i}", TensorProto.FLOAT, ["rows", w.shape[1]]))
                nodes.append(helper.make_node("MatMulIntegerToFloat", [f"q{i}", f"w{i}", "one", f"s{i}", "zero"],
                                              [f"p{i}"], domain="com.microsoft"))  # fmt: skip
            graph = helper.make_graph(nodes, "int8_probe", inputs, outputs, constants)
            return onnx_model(graph).SerializeToString()

        session = self._runtime.InferenceSession(self._store("probe", serialised), self._settings(),
                                                 providers=["CPUExecutionProvider"])  # fmt: skip
        return products_exact(lambda rows: session.run(None, {f"q{i}": q for i, q in enumerate(rows)}), weights)

    def after_attention(self, layer: int, attended: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x1, up = self._before[layer].run(None, {"attended": attended, "x": x})
        outputs = self._after[layer].run(None, {"up.gelu": gelu(up), "x1": x1})
        return outputs[0], outputs[1] if len(outputs) > 1 else None

    @staticmethod
    def _projection(graph: _GraphBuilder) -> None:
        graph.dense("next.", "qkv", "x", "h", passes=2)

    @staticmethod
    def _first_half(graph: _GraphBuilder) -> None:
        graph.dense("this.", "out", "attended", "out.y")
        graph.node("Add", ["out.y", "x"], ["residual1"])
        graph.norm("this.", "norm1", "residual1", "x1")
        graph.dense("this.", "up", "x1", "up.y")

    @staticmethod
    def _second_half(graph: _GraphBuilder) -> None:
        graph.dense("this.", "down", "up.gelu", "down.y")
        graph.node("Add", ["down.y", "x1"], ["residual2"])
        graph.norm("this.", "norm2", "residual2", "y")
        if "next." in graph.arrays:
            graph.dense("next.", "qkv", "y", "h", passes=2)

    def _session(
        self, name: str, build: Callable[[_GraphBuilder], None], arrays: Mapping[str, Mapping[str, np.ndarray]],
        inputs: list[tuple[str, int]], outputs: list[tuple[str, int]],
    ) -> Any:  # fmt: skip
        """A session of the graph ``build`` writes over ``arrays`` (a layer's arrays under ``this.``, the following
        layer's under ``next.``), with float32 row inputs and outputs of the given widths; the graph is ``name`` in
        the store."""

        def serialised() -> bytes:
            from onnx import TensorProto, helper

            graph = _GraphBuilder(self._eps, arrays, self.layout == "plain")
            build(graph)

            def rows(name: str, width: int) -> Any:
                return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["rows", width])

            model = onnx_model(helper.make_graph(
                graph.nodes, "int8_layer", [rows(*i) for i in inputs], [rows(*o) for o in outputs], graph.initializers,
            ))  # fmt: skip
            return model.SerializeToString()

        graph = self._store(f"{name}-plain" if self.layout == "plain" else name, serialised)
        return self._runtime.InferenceSession(graph, self._settings(), providers=["CPUExecutionProvider"])

    def _settings(self) -> Any:
        settings = self._runtime.SessionOptions()
        settings.intra_op_num_threads = settings.inter_op_num_threads = 1  # the shard's one core
        settings.log_severity_level = 3
        settings.graph_optimization_level = self._runtime.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fusions
        settings.add_session_config_entry("session.use_env_allocators", "1")  # `onnxruntime_module`'s arena
        return settings


class _GraphBuilder:
    """Nodes and constants of one graph, each step written as its numpy definition computes it."""

    def __init__(self, eps: float, arrays: Mapping[str, Mapping[str, np.ndarray]], plain: bool = False):
        """``plain``: the weights as `plain_weight` (else `halved_weight`, the rows twice)."""
        from onnx import helper, numpy_helper

        self._helper, self._make = helper, numpy_helper.from_array
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.eps, self.arrays, self.plain = eps, arrays, plain
        self._constants: set[str] = set()

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes: Any) -> None:
        self.nodes.append(self._helper.make_node(op, inputs, outputs, **attributes))

    def constant(self, name: str, value: Any) -> str:
        if name not in self._constants:
            self._constants.add(name)
            self.initializers.append(self._make(np.asarray(value), name))
        return name

    def array(self, prefix: str, key: str) -> str:
        """The layer array ``key`` under ``prefix`` (``this.``, ``next.``) as a constant of the graph."""
        return self.constant(prefix + key, self.arrays[prefix][key])

    def quantised(self, source: str, tag: str) -> tuple[str, str, str]:
        """`quantised_rows`: ``source``'s rows as uint8 (``tag.q``), their steps (a vector) and as a column."""
        axes = self.constant("axis1", np.array([1], np.int64))
        self.node("ReduceMax", [source, axes], [f"{tag}.high"], keepdims=0)
        self.node("ReduceMin", [source, axes], [f"{tag}.low"], keepdims=0)
        self.node("Neg", [f"{tag}.low"], [f"{tag}.minus_low"])
        self.node("Max", [f"{tag}.high", f"{tag}.minus_low"], [f"{tag}.max"])
        self.node("Mul", [f"{tag}.max", self.constant("inv_levels", np.float32(1 / ACTIVATION_LEVELS))], [f"{tag}.s0"])
        self.node("Max", [f"{tag}.s0", self.constant("tiny", np.float32(1e-30))], [f"{tag}.steps"])
        self.node("Shape", [f"{tag}.steps"], [f"{tag}.count"])
        self.node("Expand", [self.constant("zero_point", np.uint8(ZERO_POINT)), f"{tag}.count"], [f"{tag}.zeros"])
        self.node("QuantizeLinear", [source, f"{tag}.steps", f"{tag}.zeros"], [f"{tag}.q"], axis=0)
        self.node("Unsqueeze", [f"{tag}.steps", axes], [f"{tag}.step"])
        return f"{tag}.q", f"{tag}.steps", f"{tag}.step"

    def dense(self, prefix: str, key: str, source: str, target: str, passes: int = 1) -> None:
        """`dense`: ``target = source @ W + bias``, the integer products as `plain_weight` or `halved_weight` (the
        rows twice) computes them."""
        zero = self.constant("zero_point", np.uint8(ZERO_POINT))
        layout = plain_weight if self.plain else halved_weight
        weights = self.constant(f"{prefix}{key}.{layout.__name__}", layout(self.arrays[prefix][f"{key}.int8"]))
        total = ""
        for number in range(passes):
            tag = f"{prefix}{key}.{number}"
            q, steps, step = self.quantised(source, tag)
            if not self.plain:
                self.node("Concat", [q, q], [f"{tag}.twice"], axis=1)
            weight = [q if self.plain else f"{tag}.twice", weights, self.constant("one", np.float32(1))]
            weight += [self.array(prefix, f"{key}.scale"), zero]  # float(acc) * (1 * column step)
            self.node("MatMulIntegerToFloat", weight, [f"{tag}.columns"], domain="com.microsoft")
            self.node("Mul", [f"{tag}.columns", step], [f"{tag}.term"])
            if total:
                self.node("Add", [total, f"{tag}.term"], [f"{tag}.total"])
            total = f"{tag}.total" if total else f"{tag}.term"
            if number + 1 < passes:  # what this pass's rounding left, for the next
                self.node("DequantizeLinear", [q, steps, f"{tag}.zeros"], [f"{tag}.read"], axis=0)
                self.node("Sub", [source, f"{tag}.read"], [f"{tag}.rest"])
                source = f"{tag}.rest"
        self.node("Add", [total, self.array(prefix, f"{key}_bias")], [target])

    def norm(self, prefix: str, which: str, source: str, target: str) -> None:
        """`exact_norm`."""
        t, hidden = f"{prefix}{which}", len(self.arrays[prefix][f"{which}.weight"])
        size, limit = hidden * NORM_GRID, _norm_range(hidden) * NORM_GRID
        axes = self.constant("axis1", np.array([1], np.int64))
        self.node("Mul", [source, self.constant("norm_grid", np.float32(NORM_GRID))], [f"{t}.scaled"])
        self.node("Round", [f"{t}.scaled"], [f"{t}.rounded"])
        low, high = (
            self.constant(f"norm_low{limit}", np.float32(-limit)),
            self.constant(f"norm_high{limit}", np.float32(limit)),
        )
        bounds = [low, high]
        self.node("Clip", [f"{t}.rounded", *bounds], [f"{t}.clipped"])
        self.node("Cast", [f"{t}.clipped"], [f"{t}.grid"], to=11)  # DOUBLE
        self.node("ReduceSum", [f"{t}.grid", axes], [f"{t}.s1"], keepdims=1)
        self.node("Mul", [f"{t}.grid", f"{t}.grid"], [f"{t}.squares"])
        self.node("ReduceSum", [f"{t}.squares", axes], [f"{t}.s2"], keepdims=1)
        self.node("Div", [f"{t}.s1", self.constant(f"norm_size{size}", np.float64(size))], [f"{t}.mean"])
        size2 = self.constant(f"norm_size2{size}", np.float64(size * NORM_GRID))
        self.node("Div", [f"{t}.s2", size2], [f"{t}.square_mean"])
        self.node("Mul", [f"{t}.mean", f"{t}.mean"], [f"{t}.mean_square"])
        self.node("Sub", [f"{t}.square_mean", f"{t}.mean_square"], [f"{t}.variance0"])
        self.node("Max", [f"{t}.variance0", self.constant("zero_d", np.float64(0))], [f"{t}.variance"])
        self.node("Add", [f"{t}.variance", self.constant("eps", np.float64(self.eps))], [f"{t}.variance_eps"])
        self.node("Sqrt", [f"{t}.variance_eps"], [f"{t}.deviation"])
        self.node("Div", [self.constant("one_d", np.float64(1)), f"{t}.deviation"], [f"{t}.inverse"])
        self.node("Cast", [f"{t}.mean"], [f"{t}.mean_f"], to=1)  # FLOAT
        self.node("Cast", [f"{t}.inverse"], [f"{t}.inverse_f"], to=1)
        self.node("Sub", [source, f"{t}.mean_f"], [f"{t}.centred"])
        self.node("Mul", [f"{t}.centred", f"{t}.inverse_f"], [f"{t}.normed"])
        self.node("Mul", [f"{t}.normed", self.array(prefix, f"{which}.weight")], [f"{t}.weighted"])
        self.node("Add", [f"{t}.weighted", self.array(prefix, f"{which}.bias")], [target])
