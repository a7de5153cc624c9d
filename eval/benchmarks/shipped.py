"""Benchmark files shipped with limo, for when the hub cannot serve a benchmark.

MATH500, AIME 2024, AIME 2025 and AMC 2023 travel inside the package (``eval/benchmarks/files/``, gzipped JSON
lines in the shared/data layout; ``files/NOTICE`` names each one's source, commit and licence). A benchmark spec
names its copy in ``shipped``; the loader reads it only when neither ``path`` nor ``data_dir`` is given and the
hub does not answer (unreachable, ``HF_HUB_OFFLINE=1`` without a cached copy, or a failed load), and the caller
says so in one line. Sets whose terms ask not to be redistributed (GPQA) have no shipped copy.

Every load checks the file's sha256 (of the decompressed JSON lines, the digest NOTICE gives) against `SHIPPED`,
so a copy changed after install is refused rather than scored; the digest is the checksum reports record.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

from eval.records import DataError

SHIPPED_DIR = Path(__file__).with_name("files")
# file name -> sha256 of its decompressed JSON lines (the digests of the source files NOTICE names)
SHIPPED: dict[str, str] = {
    "math500.jsonl.gz": "ad59261ad3b2fd8eb4621b68d504987b827078e2850eba9b758226b147112215",
    "aime2024.jsonl.gz": "60c6cc65cc8c21e2a8c269a8abc9778941c1185dd51f57a08d4b0382c9afceea",
    "aime2025.jsonl.gz": "12f59c4650d31e0b706550de540054a2d89057ce4c230d4ebf339a9b6f9738fe",
    "amc2023.jsonl.gz": "0bc5abe142b834dde34f131962bc400d0c37b3da3d99307395cb168875dcc295",
}


@functools.cache
def shipped_copy(name: str) -> tuple[Path, str]:
    """The shipped file ``name`` and its verified sha256.

    Raises:
        DataError: ``name`` is not shipped, the file is missing, or its content is not the one NOTICE names.
    """
    if name not in SHIPPED:
        raise DataError(f"{name}: limo ships no such benchmark file (shipped: {', '.join(SHIPPED)})")
    path = SHIPPED_DIR / name
    if not path.is_file():
        raise DataError(f"{path}: the benchmark file shipped with limo is missing (reinstall limo or pass data_dir=)")
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    if digest != SHIPPED[name]:
        raise DataError(
            f"{path}: sha256 {digest[:16]}... is not {SHIPPED[name][:16]}..., the digest its NOTICE names "
            "(the file was changed after install: reinstall limo or pass data_dir=)"
        )
    return path, digest
