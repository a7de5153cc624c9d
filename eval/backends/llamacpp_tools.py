"""llama.cpp's own programs, built once from a pinned source: ``llama-server`` (the ``llamacpp`` generation
backend), ``llama-quantize`` and ``convert_hf_to_gguf.py`` with its ``gguf-py`` (``limo.export``).

Why this source: llama.cpp publishes no Linux binaries on PyPI that load on every glibc (``llama-cpp-py-sync``'s
wheels need glibc 2.38), while ``llama-cpp-python``'s sdist — a well-kept package, pinned below by version and
sha256 — vendors the whole llama.cpp tree: the server, the quantizer, the converter and ``gguf-py`` of one commit.
``install()`` fetches that sdist with pip (pip's cache serves it again), builds the two programs with CMake (static,
``GGML_NATIVE``: tuned for this CPU) and copies them, the converter and ``gguf-py`` into
``$LIMO_CACHE_DIR/llama.cpp/<version>-<cpu>/``, under a temporary name renamed into place, so an interrupted build
leaves nothing half-done and a second install is a no-op. ``<cpu>`` is a digest of the CPU's feature flags: a
binary built for one CPU may not run on another that shares the home folder.

``find_tools()`` is how the rest of limo finds them: ``$LIMO_LLAMACPP_DIR`` (a folder of the same layout, or any
build of llama.cpp holding ``bin/llama-server``) wins, then the cached build. Where none is found, one
`LlamaCppMissingError` says how to install it (``make llamacpp``).

Standard library only; the build needs ``cmake`` and a C++ compiler (``ninja`` when present).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from eval.backends.model_source import cache_root

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"
SOURCE_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
DIR_ENV = "LIMO_LLAMACPP_DIR"
PROGRAMS = ("llama-server", "llama-quantize")
# Static programs, native to this CPU; no network code (curl, OpenSSL), no web UI to fetch at build time.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)


class LlamaCppMissingError(FileNotFoundError):
    """llama.cpp's programs are not installed where limo looks for them (a missing file: entry points report it in
    one line)."""


@dataclass(frozen=True)
class LlamaCppTools:
    """Paths of one llama.cpp install: its programs, the HF -> GGUF converter and the ``gguf-py`` it imports."""

    root: Path
    server: Path
    quantize: Path
    convert_script: Path
    gguf_py: Path
    version: str

    def converter_env(self) -> dict[str, str]:
        """The environment ``convert_hf_to_gguf.py`` runs in: its own ``gguf-py`` first on the path (the PyPI
        ``gguf`` may be older than the converter)."""
        path = os.pathsep.join(p for p in (str(self.gguf_py), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path}


def cpu_tag() -> str:
    """A short digest of this CPU's architecture and feature flags (``/proc/cpuinfo``; the machine name elsewhere)."""
    flags = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags += " " + " ".join(sorted(line.split(":", 1)[1].split()))
                break
    except OSError:
        pass
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def install_dir() -> Path:
    """Where `install` puts this version's build for this CPU."""
    return cache_root() / "llama.cpp" / f"{SOURCE_VERSION}-{cpu_tag()}"


def _tools_in(root: Path) -> LlamaCppTools | None:
    bin_dir = root / "bin"
    server, quantize = bin_dir / "llama-server", bin_dir / "llama-quantize"
    if not (server.is_file() and os.access(server, os.X_OK)):
        return None
    convert, gguf_py = root / "convert_hf_to_gguf.py", root / "gguf-py"
    meta = root / "build.json"
    version = json.loads(meta.read_text(encoding="utf-8")).get("version", "?") if meta.is_file() else "unknown"
    return LlamaCppTools(root, server, quantize, convert, gguf_py, str(version))


def find_tools() -> LlamaCppTools:
    """The llama.cpp install limo uses: ``$LIMO_LLAMACPP_DIR`` if set, else this version's cached build.

    Raises:
        LlamaCppMissingError: Neither holds ``bin/llama-server``.
    """
    given = os.environ.get(DIR_ENV)
    if given:
        found = _tools_in(Path(given).expanduser())
        if found is None:
            raise LlamaCppMissingError(f"${DIR_ENV}={given} holds no bin/llama-server")
        return found
    found = _tools_in(install_dir())
    if found is None:
        raise LlamaCppMissingError(
            f"llama.cpp is not installed (looked in {install_dir()}): run `make llamacpp` (builds llama-server and "
            f"llama-quantize once from {SOURCE_PACKAGE} {SOURCE_VERSION}'s vendored source, about 15-25 minutes on "
            f"2 cores) or set {DIR_ENV} to a llama.cpp build"
        )
    return found


def _fetch_source(work: Path) -> Path:
    """The pinned sdist, downloaded with pip (its cache serves a second download) and checked by sha256."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(work)]
        + [f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"],
        check=True,
    )
    archive = next(work.glob("llama_cpp_python-*.tar.gz"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise RuntimeError(f"{archive.name}: sha256 {digest}, expected {SOURCE_SHA256} (pinned in {__file__})")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    source = work / archive.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").is_file():
        raise RuntimeError(f"{archive.name} holds no vendor/llama.cpp")
    return source


def _build(source: Path, build: Path, jobs: int) -> None:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS], check=True)
    subprocess.run(["cmake", "--build", str(build), "-j", str(jobs), "--target", *PROGRAMS], check=True)


def _stage(source: Path, build: Path, staging: Path, seconds: float) -> None:
    (staging / "bin").mkdir(parents=True)
    for program in PROGRAMS:
        shutil.copy2(build / "bin" / program, staging / "bin" / program)
    shutil.copy2(source / "convert_hf_to_gguf.py", staging / "convert_hf_to_gguf.py")
    shutil.copytree(source / "conversion", staging / "conversion")
    shutil.copytree(source / "gguf-py", staging / "gguf-py")
    for name in ("LICENSE",):
        shutil.copy2(source / name, staging / name)
    meta = {
        "version": f"{SOURCE_PACKAGE} {SOURCE_VERSION}",
        "sdist_sha256": SOURCE_SHA256,
        "cmake_flags": list(CMAKE_FLAGS),
        "cpu": cpu_tag(),
        "build_seconds": round(seconds),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (staging / "build.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def install(jobs: int | None = None, force: bool = False) -> LlamaCppTools:
    """Build and install llama.cpp's programs for this CPU (a no-op when already installed)."""
    target = install_dir()
    if not force and (found := _tools_in(target)) is not None:
        print(f"[llamacpp] already installed: {target}", flush=True)
        return found
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise LlamaCppMissingError(f"building llama.cpp needs {tool} on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as work_dir:
        work = Path(work_dir)
        print(f"[llamacpp] building {', '.join(PROGRAMS)} from {SOURCE_PACKAGE} {SOURCE_VERSION} ...", flush=True)
        source = _fetch_source(work)
        _build(source, work / "build", jobs or os.cpu_count() or 1)
        staging = work / "install"
        _stage(source, work / "build", staging, time.monotonic() - started)
        if force and target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    print(f"[llamacpp] installed in {target} ({time.monotonic() - started:.0f} s)", flush=True)
    return find_tools() if not os.environ.get(DIR_ENV) else _tools_in(target) or find_tools()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.backends.llamacpp_tools",
        description="Build llama.cpp's llama-server and llama-quantize once for this CPU, or say where they are.",
    )
    parser.add_argument("command", choices=["install", "where"])
    parser.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: every core)")
    parser.add_argument("--force", action="store_true", help="rebuild even when installed")
    args = parser.parse_args(argv)
    try:
        tools = install(args.jobs, args.force) if args.command == "install" else find_tools()
    except (LlamaCppMissingError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"llamacpp: error: {error}", file=sys.stderr)
        return 1
    print(tools.root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
