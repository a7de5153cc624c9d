"""MiniLM's int8 arithmetic is exact (`curation.meaning.int8`): the same bits whatever kernels the CPU offers.

A CPU cannot be swapped in a test, so each way a kernel could change the bits is held apart:
- the integer products against numpy's int64 products, bit for bit, on inputs that saturate onnxruntime's
  uint8 x int8 kernel on a CPU without AVX-512 VNNI (the products that made the goldens differ), and the split
  weights the graphs multiply (`int8.halved_weight`) through an emulation of that saturating kernel;
- onnxruntime's layer graphs against the numpy definition of the same operations, bit for bit (onnxruntime picks its
  kernels by CPU id: no setting can force another here; two implementations of one sequence of IEEE operations
  agreeing bit for bit is what a third, another CPU's, is held to);
- numpy's own kernels: vectors and similarities computed with OpenBLAS forced to other cores' kernels and with
  numpy's AVX2 loops switched off, in fresh processes, bit for bit;
- the lookup tables against 40-digit mpmath wherever a libm's last bits could round them the other way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curation.meaning import int8

REPO = Path(__file__).resolve().parents[1]
HIDDEN, INNER, HEADS = 32, 128, 4


def _layer(rng: np.random.Generator, hidden: int = HIDDEN, inner: int = INNER) -> dict[str, np.ndarray]:
    dense = {"qkv": (hidden, 3 * hidden), "out": (hidden, hidden), "up": (hidden, inner), "down": (inner, hidden)}
    layer: dict[str, np.ndarray] = {}
    for key, shape in dense.items():
        layer[f"{key}.int8"], layer[f"{key}.scale"] = int8.weight_columns(rng.normal(size=shape).astype(np.float32))
        layer[f"{key}_bias"] = rng.normal(size=shape[1]).astype(np.float32)
    for norm in ("norm1", "norm2"):
        layer[f"{norm}.weight"] = rng.normal(1, 0.1, hidden).astype(np.float32)
        layer[f"{norm}.bias"] = rng.normal(0, 0.1, hidden).astype(np.float32)
    return layer


def _hostile_rows(rng: np.random.Generator, width: int) -> np.ndarray:
    """Rows of every kind: ordinary, one scale per row apart, all zero, one huge value, all equal and positive
    (every activation 255 after its zero point), and beyond GELU's table and LayerNorm's clipping range."""
    x = rng.normal(size=(9, width)).astype(np.float32)
    x *= np.float32([[1], [100], [1e-3], [0], [7], [1], [1], [30], [3000]])
    x[5] = 0.5
    x[6, 3] = 1e4
    return x


def test_integer_products_are_exact_where_uint8_times_int8_saturates():
    """Rows of 255 against columns of +127 (pairs of products sum to 64,770, past int16's 32,767, which onnxruntime's
    uint8 x int8 kernel without AVX-512 VNNI saturates to): numpy's products in slices and onnxruntime's uint8 x
    uint8 graph both give the int64 products exactly."""
    rng = np.random.default_rng(0)
    weight = np.full((384, 8), 255, np.uint8)  # +127 around the zero point 128
    weight[:, 4:] = rng.integers(1, 256, size=(384, 4), dtype=np.uint8)
    rows = np.full((5, 384), 255, np.uint8)
    rows[1:] = rng.integers(0, 256, size=(4, 384), dtype=np.uint8)
    expected = (rows.astype(np.int64) - 128) @ (weight.astype(np.int64) - 128)
    assert expected[0, 0] == 127 * 127 * 384  # the saturating case
    np.testing.assert_array_equal(int8.integer_products(rows, weight), expected)
    layer = _layer(rng, hidden=384)
    layer["qkv.int8"], layer["qkv.scale"] = weight, np.ones(8, np.float32)
    layer["qkv_bias"] = np.zeros(8, np.float32)
    x = np.full((2, 384), 0.5, np.float32)  # every activation 255 after its zero point
    graph = int8.LayerGraphs(int8.onnxruntime_module(), [layer], 1e-12)
    np.testing.assert_array_equal(graph.project(x), int8.projection(layer, x))
    np.testing.assert_allclose(graph.project(x)[:, :4], 0.5 * 127 * 384, rtol=1e-6)  # a saturated sum: far below


def _saturating_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (uint8 x int8) as a kernel without VNNI computes it: each pair of adjacent products summed in 16
    bits, saturating (x86's ``pmaddubsw``), the pairs' sums then added in int32."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    if a.shape[1] % 2:  # the kernels pad the depth with zeros
        a, b = np.pad(a, ((0, 0), (0, 1))), np.pad(b, ((0, 1), (0, 0)))
    pairs = a[:, 0::2, None] * b[None, 0::2] + a[:, 1::2, None] * b[None, 1::2]
    return np.clip(pairs, -(2**15), 2**15 - 1).sum(1)


def test_halved_weights_give_exact_sums_on_a_saturating_kernel():
    """`halved_weight`'s halves add up to the weight, each within 64; on the activations and weights that saturate
    a uint8 x int8 kernel without VNNI (255 against +-127, the case that made the goldens differ), that kernel's
    products of ``[q, q]`` and the halves are the exact integers, and of the weights unsplit they are not."""
    every = np.arange(1, 256, dtype=np.uint8)[:, None]  # every weight level (0 never occurs: +-127 around 128)
    halves = int8.halved_weight(every)
    assert halves.dtype == np.int8 and np.abs(halves.astype(np.int64)).max() == int8.HALF_LEVELS
    np.testing.assert_array_equal(halves[:255].astype(np.int64) + halves[255:], every.astype(np.int64) - 128)
    assert 2 * 255 * int8.HALF_LEVELS <= 2**15 - 1
    rng = np.random.default_rng(4)
    weight = rng.choice(np.array([1, 255], np.uint8), size=(383, 6))  # +-127, odd depth
    q = np.full((4, 383), 255, np.uint8)
    q[2:] = rng.integers(0, 256, size=(2, 383), dtype=np.uint8)
    exact = q.astype(np.int64) @ (weight.astype(np.int64) - 128)
    np.testing.assert_array_equal(_saturating_products(np.hstack([q, q]), int8.halved_weight(weight)), exact)
    assert (_saturating_products(q, (weight.astype(np.int64) - 128).astype(np.int8)) != exact).any()


def test_the_kernel_probe_tells_a_saturating_kernel_from_an_exact_one():
    """`int8.products_exact` passes exact products (numpy's) and refuses a kernel that saturates pairs of products
    in 16 bits (`_saturating_products`, x86's ``pmaddubsw``), on the depths MiniLM's layers multiply."""
    weights = int8.probe_weights([(384, int8.PROBE_COLUMNS), (1536, int8.PROBE_COLUMNS)])
    assert all(w.dtype == np.int8 and np.abs(w.astype(np.int64)).max() == int8.WEIGHT_LEVELS for w in weights)

    def exact(rows: list[np.ndarray]) -> list[np.ndarray]:
        return [(q.astype(np.int64) - 128) @ w.astype(np.int64) for q, w in zip(rows, weights, strict=True)]

    def saturating(rows: list[np.ndarray]) -> list[np.ndarray]:  # the zero point taken out after, as kernels do
        return [
            _saturating_products(q, w) - 128 * w.astype(np.int64).sum(0) for q, w in zip(rows, weights, strict=True)
        ]

    assert int8.products_exact(exact, weights)
    assert not int8.products_exact(saturating, weights)
    assert not int8.products_exact(lambda rows: [p + (p.size > 1) * np.eye(*p.shape)[0] for p in exact(rows)], weights)


def test_plain_weights_are_used_exactly_where_the_probe_finds_this_cpus_kernel_exact():
    """The halved layout (`halved_weight`) is the numpy definition bit for bit on every CPU; the plain one
    (`plain_weight`, half the products' work), which `LayerGraphs` picks when `products_exact` passes this CPU's
    kernel, is too where it is picked, and on rows of 255 against weights of +127 it is wrong where it is not."""
    rng = np.random.default_rng(5)
    layers = [_layer(rng, hidden=64, inner=256), _layer(rng, hidden=64, inner=256)]
    layers[0]["qkv.int8"][:, :8] = 255  # +127: pairs of products past int16 on a saturating kernel
    runtime = int8.onnxruntime_module()
    chosen = int8.LayerGraphs(runtime, layers, 1e-12)
    x = np.vstack([_hostile_rows(rng, 64), np.full((3, 64), 0.5, np.float32)])  # 0.5: every activation 255
    attended = np.vstack([_hostile_rows(rng, 64), rng.normal(size=(3, 64)).astype(np.float32)])
    expected = int8.layer_after_attention(layers[0], attended, x, 1e-12)
    for layout in ("halved", chosen.layout):
        graphs = int8.LayerGraphs(runtime, layers, 1e-12, layout=layout)
        np.testing.assert_array_equal(graphs.project(x), int8.projection(layers[0], x))
        y, h = graphs.after_attention(0, attended, x)
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_array_equal(h, int8.projection(layers[1], expected))
    if chosen.layout == "halved":  # the probe refused this CPU's kernel: the plain layout would have been wrong
        plain = int8.LayerGraphs(runtime, layers, 1e-12, layout="plain")
        assert not np.array_equal(plain.project(x), int8.projection(layers[0], x))


def test_layer_graphs_are_the_numpy_definition_bit_for_bit():
    """`LayerGraphs` (onnxruntime, the fast path) against `projection` / `layer_after_attention` (numpy, the
    definition and the path without onnxruntime) on hostile rows, over two layers."""
    rng = np.random.default_rng(2)
    layers = [_layer(rng), _layer(rng)]
    graphs = int8.LayerGraphs(int8.onnxruntime_module(), layers, 1e-12)
    x = _hostile_rows(rng, HIDDEN)
    np.testing.assert_array_equal(graphs.project(x), int8.projection(layers[0], x))
    attended = _hostile_rows(rng, HIDDEN)
    y, h = graphs.after_attention(0, attended, x)
    expected = int8.layer_after_attention(layers[0], attended, x, 1e-12)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(h, int8.projection(layers[1], expected))
    y, h = graphs.after_attention(1, attended, y)
    np.testing.assert_array_equal(y, int8.layer_after_attention(layers[1], attended, expected, 1e-12))
    assert h is None and np.isfinite(y).all()


def test_graphs_are_written_at_an_ir_version_older_onnxruntimes_read_and_a_refused_one_falls_back_to_numpy(caplog):
    """The graphs carry `int8.IR_VERSION`, not the installed onnx's newest (an older onnxruntime on a GPU machine's
    image refused onnx 1.23's IR 14 and the curation died); where onnxruntime still refuses them (here: the same graph
    at an IR version no release reads), `Int8Layers` runs numpy's layers, the same bits, and says so; an error that
    is not onnxruntime's is raised."""
    import onnx

    rng = np.random.default_rng(7)
    layers = [_layer(rng), _layer(rng)]
    written: dict[str, bytes] = {}
    int8.Int8Layers(layers, 1e-12, lambda name, build: written.setdefault(name, build()))
    assert written and {onnx.load_from_string(b).ir_version for b in written.values()} == {int8.IR_VERSION}

    def unreadable(name: str, build) -> bytes:
        model = onnx.load_from_string(build())
        model.ir_version = 99
        return model.SerializeToString()

    x = _hostile_rows(rng, HIDDEN)
    with caplog.at_level("WARNING", logger="curation.meaning.int8"):
        refused = int8.Int8Layers(layers, 1e-12, unreadable)
    assert refused.graphs is None
    assert "cannot run MiniLM's int8 graphs" in caplog.text and "IR version" in caplog.text
    np.testing.assert_array_equal(refused.project(x), int8.projection(layers[0], x))
    y, h = refused.after_attention(0, x, x)
    np.testing.assert_array_equal(y, int8.layer_after_attention(layers[0], x, x, 1e-12))

    def broken(name: str, build) -> bytes:
        raise ValueError("not onnxruntime's")

    with pytest.raises(ValueError, match="not onnxruntime's"):
        int8.Int8Layers(layers, 1e-12, broken)


def test_attention_sums_are_exact_integers():
    """Attention's products are integers below 2**24 (float32) and 2**53 (float64): a text's rows are the same alone
    or grouped with others of its length, and the weights come from the table."""
    rng = np.random.default_rng(3)
    qkv = (rng.normal(size=(3 * 20, 3 * HIDDEN)) * 4).astype(np.float32)
    together = int8.attention(qkv, 3, 20, HEADS)
    alone = np.concatenate([int8.attention(qkv[t * 20 : (t + 1) * 20], 1, 20, HEADS) for t in range(3)])
    np.testing.assert_array_equal(together, alone)
    assert int8._key_levels(32) == 724 and 724**2 * 32 < 2**24 <= 725**2 * 32


def test_tables_are_the_correctly_rounded_values():
    """Sampled entries of the GELU and exp tables equal 40-digit mpmath values rounded as the tables round; an
    entry whose ``math`` value sits within a hair of a rounding boundary is recomputed (a planted one here)."""
    import mpmath

    gelu, exp = int8.gelu_table(), int8.exp_table()
    with mpmath.workdps(40):
        for i in range(0, len(gelu), 997):
            x = mpmath.mpf(i - int8.GELU_RANGE * int8.GELU_GRID) / int8.GELU_GRID
            assert gelu[i] == np.float32(float(0.5 * abs(x) * mpmath.erfc(abs(x) / mpmath.sqrt(2))))
        for i in range(0, len(exp), 101):
            assert exp[i] == float(mpmath.nint(mpmath.exp(-mpmath.mpf(i) / int8.EXP_GRID) * int8.EXP_LEVELS))
    halfway = np.float64(np.float32(1.5)) + np.float64(np.spacing(np.float32(1.5))) / 2
    values = np.array([halfway * (1 + 1e-14), 0.3])
    fixed = int8._correctly_rounded(np.zeros(2), values, lambda _: mpmath.mpf(7), int8._near_float32_halfway)
    assert fixed.tolist() == [7.0, 0.3]


_PROBE = """
import json, sys
import numpy as np
from curation.meaning import embedding
from curation.meaning import index as retrieval
texts = json.loads(sys.argv[1])
vectors = retrieval.normalised(embedding.load_embedder("minilm", "int8")(texts))
words = retrieval.normalised(embedding.load_embedder("wordllama")(texts))
print(json.dumps([vectors.tobytes().hex(), retrieval.cosines(vectors, vectors).tobytes().hex(),
                  retrieval.cosines(words, words).tobytes().hex()]))
"""
KERNELS = {
    "default": {},
    "OpenBLAS Sandybridge (AVX, no FMA)": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "numpy without AVX2, OpenBLAS Prescott (SSE3)": {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Prescott",
    },
}


@pytest.mark.slow
def test_vectors_and_similarities_are_the_same_bits_with_other_float_kernels(tmp_path):
    """MiniLM's int8 vectors and both models' cosines, in fresh processes whose numpy uses other float kernels
    (OpenBLAS's for older cores, numpy's baseline loops instead of its AVX2 ones), are the same bytes."""
    texts = ["How many positive 3-digit numbers are divisible by 11?", "Find $x$ if $2^x = 3^{x-1}$.", "a" * 300,
             "Let $f(x) = x^3 - 3x + 1$. " * 12 + "How many real roots does $f$ have?"]  # fmt: skip
    outputs = {}
    for name, env in KERNELS.items():
        environment = {**os.environ, **env, "LIMO_CACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(texts)], cwd=REPO, env=environment,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(found == outputs["default"] for found in outputs.values()), [k for k, v in outputs.items()]
