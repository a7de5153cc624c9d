"""A BERT encoder's forward pass in numpy (MiniLM's), in float32 or in exact int8 (`curation.meaning.int8`).

Texts are packed one after another, so the dense layers see no padding; attention takes texts of one length
together, unpadded, so a text's vector is the same bit for bit whatever shares its batch.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from curation.meaning import int8

_ATTENTION_TOKENS = 256


def _thread_pools() -> Any:
    """The thread pools loaded now (80 us): a controller kept from an earlier call would miss a BLAS loaded since
    (scipy's, torch's), and leave it on its threads."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_blas_limits: list[Any] = []  # the main thread's nested `one_blas_thread` blocks; the first holds the limit


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread for the block (MiniLM's forward pass, the screen's and the model's batches).
    Their products are small (attention over at most `_ATTENTION_TOKENS` tokens: a (length x 32) by (32 x length)
    product per text and head, thousands per pass), and OpenBLAS's threads cost more CPU waking and spinning than
    they compute: on 154 MATH problems, attention took 0.37 s of CPU on one thread and 0.66-1.9 s on two with
    another process on the machine (a shard worker's neighbour). In int8 (the default) the products are of
    integers, exact in any order, so the vectors are the same bit for bit (the float32 reference model's last bits
    follow the CPU's BLAS, as they always did).

    The limit is process-wide and OpenBLAS takes a raised count back only from the main thread, so only the main
    thread sets it (a shard task runs there) and restores it on leaving its outermost block; in another thread the
    block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _blas_limits.append(None if _blas_limits else _thread_pools().limit(limits=1, user_api="blas"))
    try:
        yield
    finally:
        limiter = _blas_limits.pop()
        if limiter is not None:
            limiter.restore_original_limits()


def _equal_length_batches(lengths: Sequence[int], tokens: int) -> list[list[int]]:
    """Positions of texts of one length, in batches of at most ``tokens`` tokens (at least one text)."""
    by_length: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        by_length.setdefault(length, []).append(i)
    batches = []
    for length, rows in sorted(by_length.items()):
        size = max(1, tokens // max(1, length))
        batches += [rows[start : start + size] for start in range(0, len(rows), size)]
    return batches


_LAYER_ARRAYS = (
    "qkv", "qkv_bias", "out", "out_bias", "norm1.weight", "norm1.bias",
    "up", "up_bias", "down", "down_bias", "norm2.weight", "norm2.bias",
)  # fmt: skip


class Bert:
    """A BERT encoder's forward pass in numpy (float32, or exact int8: `int8.Int8Layers`; absolute positions, token
    type 0, exact GELU), for inference on the weights of a ``BertModel`` checkpoint as transformers names them."""

    def __init__(
        self, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any], precision: str = "float32",
        graphs: int8.GraphStore | None = None,
    ):  # fmt: skip
        """``arrays``: `prepare`'s; ``precision``: ``int8`` runs the layers in exact integer arithmetic
        (`int8.Int8Layers`, its graphs kept in ``graphs``)."""
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.eps = np.float32(config["layer_norm_eps"])
        self.words, self.positions, self.token_type = arrays["words"], arrays["positions"], arrays["token_type"]
        self.norm = (arrays["norm.weight"], arrays["norm.bias"])
        self.layers = []
        for layer in range(int(config["num_hidden_layers"])):
            a = {key: arrays[f"{layer}.{key}"] for key in _LAYER_ARRAYS}
            self.layers.append(
                (
                    a["qkv"], a["qkv_bias"], a["out"], a["out_bias"], (a["norm1.weight"], a["norm1.bias"]),
                    a["up"], a["up_bias"], a["down"], a["down_bias"], (a["norm2.weight"], a["norm2.bias"]),
                )
            )  # fmt: skip
        layer_arrays = [{k: arrays[f"{i}.{k}"] for k in int8.LAYER_ARRAYS} for i in range(len(self.layers))]
        self.int8 = int8.Int8Layers(layer_arrays, float(self.eps), graphs) if precision == "int8" else None

    @staticmethod
    def prepare(weights: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The arrays the forward pass reads, from a ``BertModel`` checkpoint's weights: float32, contiguous, the
        query, key and value projections side by side and every dense matrix transposed (``x @ W``)."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"semantic: unsupported activation {config.get('hidden_act')!r}")

        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        arrays = {
            "words": get("embeddings.word_embeddings.weight"),
            "positions": get("embeddings.position_embeddings.weight"),
            "token_type": get("embeddings.token_type_embeddings.weight")[0],
            "norm.weight": get("embeddings.LayerNorm.weight"),
            "norm.bias": get("embeddings.LayerNorm.bias"),
        }
        for layer in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{layer}."
            names = ("query", "key", "value")
            prepared = {
                "qkv": np.concatenate([get(f"{p}attention.self.{n}.weight") for n in names]).T,
                "qkv_bias": np.concatenate([get(f"{p}attention.self.{n}.bias") for n in names]),
                "out": get(f"{p}attention.output.dense.weight").T,
                "out_bias": get(f"{p}attention.output.dense.bias"),
                "norm1.weight": get(f"{p}attention.output.LayerNorm.weight"),
                "norm1.bias": get(f"{p}attention.output.LayerNorm.bias"),
                "up": get(f"{p}intermediate.dense.weight").T,
                "up_bias": get(f"{p}intermediate.dense.bias"),
                "down": get(f"{p}output.dense.weight").T,
                "down_bias": get(f"{p}output.dense.bias"),
                "norm2.weight": get(f"{p}output.LayerNorm.weight"),
                "norm2.bias": get(f"{p}output.LayerNorm.bias"),
            }
            for key in int8.DENSE:  # for `int8.Int8Layers`: uint8 columns and each column's step
                prepared[f"{key}.int8"], prepared[f"{key}.scale"] = int8.weight_columns(prepared[key])
            arrays |= {f"{layer}.{key}": np.ascontiguousarray(value) for key, value in prepared.items()}
        return arrays

    def pooled(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """The mean of the last hidden states of each of the token ``sequences`` (none empty), ``(len, hidden)``.

        The sequences are packed one after another (rows of ``x``), so the dense layers see no padding;
        attention takes texts of one length together (`_ATTENTION_TOKENS` at a time), unpadded: a text's vector
        is then the same alone or among any others, bit for bit (padded to a group's longest, the sums' order
        changed with the padding, by 1e-6 in float32 and, through the roundings of int8, by 1e-2)."""
        lengths = np.array([len(s) for s in sequences])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        x = self.words[np.concatenate(sequences)]
        x += self.positions[np.concatenate([np.arange(n) for n in lengths])]
        x += self.token_type
        x = self.int8.norm(x, self.norm) if self.int8 else self._norm(x, self.norm)
        groups = []
        for texts in _equal_length_batches(lengths.tolist(), _ATTENTION_TOKENS):
            length = int(lengths[texts[0]])
            groups.append(((starts[texts][:, None] + np.arange(length)).reshape(-1), len(texts), length))
        with one_blas_thread():
            if self.int8:
                x = self._int8_layers(x, groups)
            for weights in self.layers if not self.int8 else []:
                x = self._layer(weights, x, groups)
        return np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)

    def _layer(self, weights: tuple[Any, ...], x: np.ndarray, groups: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
        """One layer in float32 (the reference model)."""
        qkv, qkv_bias, out, out_bias, norm1, up, up_bias, down, down_bias, norm2 = weights
        h = x @ qkv
        h += qkv_bias
        attended = np.empty_like(x)
        for rows, batch, length in groups:
            attended[rows] = self._attention(h[rows], batch, length)
        h = attended @ out
        h += out_bias
        h += x
        x = self._norm(h, norm1)
        h = x @ up
        h += up_bias
        h = _gelu(h) @ down
        h += down_bias
        h += x
        return self._norm(h, norm2)

    def _int8_layers(self, x: np.ndarray, groups: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
        """Every layer in exact integer arithmetic (`int8.Int8Layers`: the same bits on every CPU)."""
        assert self.int8 is not None
        h: np.ndarray | None = self.int8.project(x)
        scratch = int8.Scratch()  # this pass's: the model is shared by threads
        for layer in range(len(self.layers)):
            assert h is not None
            attended = np.empty_like(x)
            for rows, batch, length in groups:
                attended[rows] = int8.attention(h[rows], batch, length, self.heads, scratch)
            x, h = self.int8.after_attention(layer, attended, x)
        return x

    def _attention(self, qkv: np.ndarray, batch: int, length: int) -> np.ndarray:
        """Self-attention of ``batch`` texts of ``length`` tokens each (``qkv``: their projections, row by row)."""
        size = self.hidden // self.heads
        q, k, v = qkv.reshape(batch, length, 3, self.heads, size).transpose(2, 0, 3, 1, 4)
        scores = (q * np.float32(1 / math.sqrt(size))) @ k.transpose(0, 1, 3, 2)
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        return (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)

    def _norm(self, x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """LayerNorm over the last axis (``x`` is overwritten)."""
        x -= x.mean(-1, keepdims=True)
        scale = np.square(x).mean(-1, keepdims=True)
        scale += self.eps
        np.sqrt(scale, out=scale)
        x /= scale
        x *= weights[0]
        x += weights[1]
        return x


# erf(z) for z >= 0 as 1 - t * poly(t) * exp(-z^2), t = 1 / (1 + P z) (Abramowitz and Stegun 7.1.26: error below
# 1.5e-7, under float32's resolution of the activations it multiplies)
_ERF_P = np.float32(0.3275911)
_ERF_POLY = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_GELU_BLOCK = 64  # rows per pass: a block's temporaries stay in the core's cache (5x faster than whole arrays)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, ``x * Phi(x)``, computed as ``relu(x) - |x| * Phi(-|x|)`` block by block in place."""
    out = np.empty_like(x)
    for start in range(0, len(x), _GELU_BLOCK):
        block, result = x[start : start + _GELU_BLOCK], out[start : start + _GELU_BLOCK]
        z = np.abs(block) * np.float32(1 / math.sqrt(2))
        t = z * _ERF_P
        t += 1
        np.reciprocal(t, out=t)
        tail = t * _ERF_POLY[0]
        for coefficient in _ERF_POLY[1:]:
            tail += coefficient
            tail *= t
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        tail *= z
        tail *= np.float32(0.5)  # Phi(-|x|) = (1 - erf(|x| / sqrt 2)) / 2
        np.maximum(block, 0, out=result)
        np.abs(block, out=z)
        z *= tail
        result -= z
    return out
