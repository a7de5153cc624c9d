"""The wheels the GPU machine lacks, downloaded into an ignored folder that the device tool carries there.

Usage::

    python bench/gpu/gpu_wheels.py [--dir .gpu_wheels] [--python-version 3.12] [--limit-mib 64]

The GPU machine (docs/training.md, "Checking the GPU path") has PyTorch, transformers, accelerate, peft and a long
list of others (`IMAGE`, as read off the machine's image on 2026-11-17), no network, and Python 3.12. What limo's
GPU path imports beyond that, or needs in another version (transformers), is `CARRY`: each at pyproject.toml's pin
where it pins one, else at the version this checkout's environment has (the set the tests ran with). Each is fetched
with ``pip download --no-deps --only-binary=:all:`` for ``--python-version`` on manylinux x86-64; a project PyPI has
only as an sdist (deepspeed, antlr4-python3-runtime) is built here with ``pip wheel --no-deps`` and must come out
pure Python (``py3-none-any``), since a compiled build from this machine would not load there. A rerun reuses the
wheels already in the folder and removes any the list no longer names.

The device tool carries the working tree and the named ignored folders, 64 MiB in all: the check adds the tree's own
size (tracked and untracked, not ignored, files) to the wheels' and fails naming the largest wheels when over. It
writes ``carried.json`` (name, version, file, bytes, sha256 of each wheel) into the folder and prints the list.
`bench/gpu/gpu_check.py --wheels <dir>` installs them there (``pip install --no-index --no-deps --target``).
tests/test_gpu_check.py holds `CARRY` and `IMAGE` to what the check's CPU run imports.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB = 1024**2

# Carried although the image has them: its transformers (5.17) lacks what limo's recipes set (5.23's
# `activation_checkpointing`), so the pin travels, with peft's pin (LoRA on it) and a regex it accepts (>= 2025.10.22).
REPLACED = ("transformers", "peft", "regex")
CARRY = (
    *REPLACED,
    # What limo's GPU path (training, DeepSpeed, evaluation, grading, a local curation) imports and the image lacks.
    "trl",
    "datasets",
    "dill",  # datasets
    "multiprocess",  # datasets
    "deepspeed",
    "hjson",  # deepspeed
    "pydantic",  # deepspeed's config
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "hydra-core",
    "omegaconf",
    "antlr4-python3-runtime",  # omegaconf, latex2sympy2-extended
    "gguf",
    "math-verify",
    "latex2sympy2-extended",
    "champ-dataset",
    "natsort",  # champ-dataset
    "datasketch",
    # limo.ablate's local executor and curation's shard jobs run on datatrove's executors.
    "datatrove",
    "loguru",  # datatrove
)
# Files left out of a wheel as it is fetched: never read by limo, and too large for the device tool's 64 MiB a call
# (datatrove's URL block list for its web filters is 17.3 of its 17.4 MiB).
SLIM = {"datatrove": ("datatrove/assets/url_filterblacklistsv0_3_0.tar.gz",)}
# Built here from an sdist (PyPI has no wheel of these pins); must be pure Python.
SDIST_ONLY = ("deepspeed", "antlr4-python3-runtime")
# The GPU machine's Python packages (its image 'cuda', read off a machine on 2026-11-17), beside limo's own.
IMAGE = tuple(
    """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
    charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
    cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax
    fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
    joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
    markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch
    mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti
    nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver
    nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
    nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
    orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
    protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
    requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate
    tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
    torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
    typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
    zipp""".split()
)
# Imported here only through this environment's huggingface-hub stack (httpcore2 imports it when present); the image's
# hub 1.33 goes through httpx instead.
HERE_ONLY = ("sniffio",)
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


def normalise(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_closure(names: Iterable[str]) -> set[str]:
    """``names`` and everything they require, transitively, as installed here (extras left out); normalised."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [normalise(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalise(requirement.name))
    return seen


def uncovered(distributions: Iterable[str]) -> list[str]:
    """Of the distributions a run of the check imported here, those the GPU machine would lack: neither on its image
    (nor needed by an image package, as installed here: the image brings its own), nor carried, nor limo; a name with
    no distribution on the path (setuptools' vendored ``jaraco``) travels inside its package."""
    known = requirements_closure(IMAGE) | {normalise(name) for name in (*CARRY, *HERE_ONLY, "limo")}
    missing = []
    for name in distributions:
        try:
            found = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if normalise(name) not in known and not vendored(found):
            missing.append(name)
    return sorted(missing)


def vendored(dist: importlib.metadata.Distribution) -> bool:
    """Whether ``dist`` is a copy another package ships inside itself (setuptools' ``_vendor``: more-itertools,
    backports.tarfile, jaraco.*), found only once that package has put its ``_vendor`` folder on ``sys.path`` —
    which depends on what this process imported before, so the answer must not."""
    return "_vendor" in Path(str(dist.locate_file(""))).parts


def pinned_versions(names: tuple[str, ...] = CARRY) -> dict[str, str]:
    """Each name's version: pyproject.toml's ``==`` pin, else this environment's.

    Raises:
        SystemExit: A name neither pinned nor installed here (there is no tested version to carry).
    """
    text = (REPO / "pyproject.toml").read_text()
    dependencies = text[text.index("\ndependencies = [") : text.index("\n]", text.index("\ndependencies = ["))]
    pins = {normalise(name): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)==([^";\s]+)"', dependencies)}
    versions = {}
    for name in names:
        try:
            versions[name] = pins.get(normalise(name)) or importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(
                f"gpu_wheels: error: {name} is neither pinned in pyproject.toml nor installed here"
            ) from None
    return versions


def wheel_in(folder: Path, name: str, version: str) -> Path | None:
    """The folder's wheel of ``name==version``, if one is there."""
    stem = f"{normalise(name).replace('-', '_')}-{version}-"
    return next((p for p in sorted(folder.glob("*.whl")) if p.name.lower().startswith(stem)), None)


def fetch(name: str, version: str, folder: Path, python_version: str) -> Path:
    """The wheel of ``name==version`` in ``folder``: reused, downloaded, or (`SDIST_ONLY`) built pure here.

    Raises:
        SystemExit: pip found no wheel, the build failed, or the built wheel is not pure Python.
    """
    found = wheel_in(folder, name, version)
    if found:
        return found
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    if name in SDIST_ONLY:
        command = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(folder), f"{name}=={version}"]
    else:
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        command = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", python_version]
        command += [*platforms, "--implementation", "cp", "-d", str(folder), f"{name}=={version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    found = wheel_in(folder, name, version)
    if done.returncode != 0 or found is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"gpu_wheels: error: no wheel of {name}=={version} ({last}), {' '.join(command)}")
    if name in SDIST_ONLY and not found.name.endswith("-py3-none-any.whl"):
        raise SystemExit(f"gpu_wheels: error: {found.name} was built for this machine only (not py3-none-any)")
    return found


def slim(wheel: Path, members: tuple[str, ...]) -> None:
    """Rewrite ``wheel`` without ``members`` and their RECORD lines (pip installs it as it is; the files are gone)."""
    with zipfile.ZipFile(wheel) as source:
        names = [n for n in source.namelist() if n not in members]
        if len(names) == len(source.namelist()):
            return
        rewritten = wheel.with_suffix(".slim")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for name in names:
                data = source.read(name)
                if name.endswith(".dist-info/RECORD"):
                    lines = data.decode().splitlines(keepends=True)
                    data = "".join(line for line in lines if line.split(",")[0] not in members).encode()
                target.writestr(source.getinfo(name), data)
    rewritten.replace(wheel)


def tree_bytes() -> int:
    """What the device tool sends besides carried folders: tracked and untracked, not ignored, files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum((REPO / name.decode()).stat().st_size for name in listed if name and (REPO / name.decode()).is_file())


def check_size(wheels: list[Path], tree: int, limit_mib: float) -> None:
    """Raise naming the largest wheels when the wheels and the working tree exceed ``limit_mib``."""
    total = tree + sum(p.stat().st_size for p in wheels)
    if total <= limit_mib * MIB:
        return
    largest = sorted(wheels, key=lambda p: p.stat().st_size, reverse=True)[:3]
    named = ", ".join(f"{p.name} {p.stat().st_size / MIB:.1f} MiB" for p in largest)
    raise SystemExit(
        f"gpu_wheels: error: wheels {(total - tree) / MIB:.1f} MiB + working tree {tree / MIB:.1f} MiB = "
        f"{total / MIB:.1f} MiB, over the device tool's {limit_mib:g} MiB; largest: {named}"
    )


def describe(name: str, version: str, wheel: Path) -> dict[str, object]:
    data = wheel.read_bytes()
    return {
        "name": name,
        "version": version,
        "file": wheel.name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir", type=Path, default=REPO / ".gpu_wheels", help="the ignored folder (default .gpu_wheels)"
    )
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (3.12)")
    parser.add_argument("--limit-mib", type=float, default=64.0, help="what the device tool carries, tree included")
    parser.add_argument(
        "--leave-out",
        nargs="*",
        default=[],
        metavar="NAME",
        help="wheels a run does not need, to fit the model beside them (an ablation of small models: champ-dataset "
        "deepspeed hjson pydantic pydantic-core annotated-types typing-inspection natsort)",
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    left_out = {normalise(name) for name in args.leave_out}
    versions = {k: v for k, v in pinned_versions().items() if normalise(k) not in left_out}
    wheels = {name: fetch(name, version, args.dir, args.python_version) for name, version in versions.items()}
    for name, members in SLIM.items():
        if name in wheels:
            slim(wheels[name], members)
    for stale in set(args.dir.glob("*.whl")) - set(wheels.values()):
        stale.unlink()
    tree = tree_bytes()
    check_size(list(wheels.values()), tree, args.limit_mib)
    carried = [describe(name, versions[name], wheel) for name, wheel in wheels.items()]
    (args.dir / "carried.json").write_text(json.dumps(carried, indent=1) + "\n")
    total = sum(int(row["bytes"]) for row in carried)  # type: ignore[call-overload]
    for row in sorted(carried, key=lambda r: -int(r["bytes"])):  # type: ignore[call-overload]
        print(f"{row['bytes'] / MIB:7.2f} MiB  {row['file']}")  # type: ignore[operator]
    print(
        f"{len(carried)} wheels, {total / MIB:.1f} MiB, + working tree {tree / MIB:.1f} MiB = "
        f"{(total + tree) / MIB:.1f} of {args.limit_mib:g} MiB, in {args.dir} (list: {args.dir / 'carried.json'})"
    )


if __name__ == "__main__":
    main()
