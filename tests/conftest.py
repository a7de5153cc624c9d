"""Test configuration: offline by construction, one thread per process; tiny models, the cluster engines (a local
Ray instance, a single-node Slurm: `tests.cluster_engines`) and llama.cpp's install (`tests.llamacpp`) found once per
session."""

from __future__ import annotations

import getpass
import importlib
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/limo/torch_extensions"))
# torch sets this the first time anything asks for its compile cache (DeepSpeed's import does); set here to torch's
# own default, it never changes under a test, so the warm server does not restart over it (`WarmServer.follow`)
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
)

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from limo.ablation import warm  # noqa: E402 (the standard library alone)
from tests.cluster_engines import (  # noqa: E402
    EngineUnavailable,
    skip_or_fail,
    slurm_unavailable_reason,
    start_slurm,
    stop_slurm,
)
from tests.launch import cold_environment  # noqa: E402
from tests.shared_data import REPO_ROOT, shared_data_dir  # noqa: E402
from tests.shared_runs import SHARED_RUNS, built_once, curate_champ  # noqa: E402

CLUSTER_FIXTURES = ("ray_instance", "slurm_cluster", "cluster_engine")
ENGINES: dict[str, tuple[Any, Callable[[], None]]] = {}  # the engines this process started: (handle, how to stop it)
LAST_ENGINE_TEST = pytest.StashKey[str]()  # the node id of the last test, in this process's order, that uses one
COMPILED_PACKAGES = ("limo", "curation", "eval", "tests", "bench")
HEAVY_MODULES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "sympy")
PRELOAD_FROM_TESTS = 500  # a run of this many tests or more imports `HEAVY_MODULES` before it freezes them


def pytest_configure(config):
    """Under ``PYTHONDONTWRITEBYTECODE`` (set on the 2-core machines where `.ci/run` was measured) no process writes
    the bytecode of what it imports, so every ``python -m limo.<entry>`` a test starts, and each grader or curation
    worker it spawns, compiled limo, curation and eval from source again: about 0.55 s of CPU a process (measured on
    nine entry-point tests: 28 s of CPU without, 22 s with). They are compiled once here, before any xdist worker
    starts: the variable stops imports from writing bytecode, not from reading it, and a file edited since is compiled
    afresh as ever."""
    if hasattr(config, "workerinput") or not sys.dont_write_bytecode:
        return
    import compileall

    for package in COMPILED_PACKAGES:
        if (REPO_ROOT / package).is_dir():
            compileall.compile_dir(REPO_ROOT / package, quiet=2)


def pytest_collection_finish(session):
    """What collecting made (the test modules and what they import: about 320,000 objects) lives as long as the
    process: out of the garbage collector's sight (`gc.freeze`, as `limo.ablation.warm` does for its imports), each
    full collection in a test (accelerate's after every training, a test's own) skips it, 0.12 s of CPU a collection
    on the 2-core Xeon. Objects the tests make are collected as ever. On an xdist worker of a large run the training
    stack (`HEAVY_MODULES`) is imported first, so that its objects are frozen too: imported later by a test, they were
    walked by every full collection after it (the training files, `-n 2`: 11.9 -> 6.4 s of collections, 85 -> 77 s)."""
    import gc

    # an xdist worker of a large run (make test, test-unit): its tests import these sooner or later; a small one
    # (make test-kernels' 19 curation tests, a file) may never need them (8 s more of make test-kernels)
    if hasattr(session.config, "workerinput") and len(session.items) >= PRELOAD_FROM_TESTS:
        for name in HEAVY_MODULES:
            importlib.import_module(name)
    gc.collect()
    gc.freeze()
    users = [item.nodeid for item in session.items if _uses_an_engine(item)]
    if users:
        session.stash[LAST_ENGINE_TEST] = users[-1]


def pytest_addoption(parser):
    parser.addoption(
        "--without-shared-runs",
        action="store_true",
        help="leave out the tests that share a built run, a trained model or a cluster engine (make test-fast)",
    )


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups into node ids (its hook is registered later)
def pytest_collection_modifyitems(config, items):
    """Tests on a cluster engine share one xdist worker (``make test`` runs two: each engine then starts once), and so
    do a module's tests that use a module-scoped fixture (built once, not once per worker); `gpu` tests skip without
    CUDA (checked lazily so collecting never imports torch). A test reading an output built once per run
    (`tests.shared_runs`) goes with the others that read it, wherever their modules are. Without ``tryfirst`` the
    groups were added after xdist had read them, and a module fixture used on both workers was built twice (the GPU
    check's CPU run: 2 x 126 s).

    On an xdist worker the items are also put in the order the workers are handed them (`dispatch_rank`).
    ``--without-shared-runs`` (``make test-fast``) leaves the grouped tests out: each group first builds an end-to-end
    run, a trained model or a cluster engine."""
    for item in items:
        shared = [name for name in SHARED_RUNS if name in getattr(item, "fixturenames", ())]
        if _uses_an_engine(item):
            item.add_marker(pytest.mark.xdist_group("cluster_engines"))
        elif shared:  # one worker builds the run once for every module that reads it (tests/shared_runs.py)
            item.add_marker(pytest.mark.xdist_group(f"shared_run:{shared[0]}"))
        elif _uses_module_fixture(item):  # one worker builds the module's fixture once (a trained model, a run)
            item.add_marker(pytest.mark.xdist_group(f"module_fixture:{item.module.__name__}"))
    if config.getoption("without_shared_runs", default=False):  # a conftest may import this hook alone
        grouped = [item for item in items if item.get_closest_marker("xdist_group")]
        config.hook.pytest_deselected(items=grouped)
        items[:] = [item for item in items if not item.get_closest_marker("xdist_group")]
    if hasattr(config, "workerinput"):
        items.sort(key=dispatch_rank)  # stable: a group's tests keep their order
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def dispatch_rank(item: pytest.Item) -> int:
    """Longest work first, so that the two workers of ``make test`` finish together: the cluster engines' group (the
    longest), then each module-fixture group, then `slow` tests, then the short ones that even out the end.
    ``make test`` passes ``--no-loadscope-reorder``: xdist would otherwise hand out groups by their number of tests,
    and the ~2,700 one-test units (a one-test module group among them) in file order, which put slow ones late (the
    64 s two-process ZeRO run of tests/test_train_distributed.py near the end), one worker idle while the other
    finished them."""
    group = next((mark.args[0] for mark in item.iter_markers("xdist_group")), "")
    if group == "cluster_engines":
        return 0
    if group:
        return 1
    return 2 if "slow" in item.keywords else 3


def _uses_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values())


class WarmServer:
    """This test process's warm server (`limo.ablation.warm`, ``--serve``), its address in ``LIMO_WARM_SERVER``: the
    ablations and demos the tests start take their warm workers from it, forks with the stack imported once, instead
    of each importing it for a worker of its own (about 7 s of CPU an ablation, and one per ``--jobs`` worker).

    It serves launchers with its environment, which is this process's when it started: where a test's imports or
    engines changed that for good (scikit-learn's import sets ``KMP_DUPLICATE_LIB_OK``, Ray's start ``RAY_*``), the
    next test starts a new one (`follow`). It listens at once and imports in the background (a launcher that comes
    before the imports are done waits for them), and dies with this process. A launcher whose environment or folder
    differs (a test's own variables, a user's folder) is refused in one line and starts its own worker, as do tests
    that clear the variable (the killed ablation's, whose worker must name its output in ``ps``)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.process, self.env, self.address = folder, None, {}, ""

    def own(self) -> dict[str, str]:
        return cold_environment()

    def start(self) -> None:
        self.stop()
        self.env = self.own()
        self.address = str(self.folder / f"server{len(list(self.folder.iterdir()))}.sock")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "limo.ablation.warm", "--serve", self.address],
            cwd=REPO_ROOT,
            env=self.env,
            preexec_fn=warm.die_with_parent,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(self.address) and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.environ[warm.SERVER] = self.address

    def follow(self) -> None:
        if self.process is None or warm.differing(self.own(), self.env):
            self.start()

    def stop(self) -> None:
        os.environ.pop(warm.SERVER, None)
        if self.process is not None:
            self.process.kill()
            self.process.wait()


_SERVER: list[WarmServer | None] = []  # this process's, made at the first test's setup (`server_of`)


def server_of(config: pytest.Config) -> WarmServer | None:
    """This process's `WarmServer` (not started: `WarmServer.follow` starts it); None where none can run (not Linux,
    ``LIMO_WARM_WORKER=0``)."""
    if not _SERVER:
        folder = config._tmp_path_factory.mktemp("warm")  # type: ignore[attr-defined]
        _SERVER.append(WarmServer(folder) if warm.available() else None)
    return _SERVER[0]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    """Before a test's fixtures are set up: the warm server runs and serves this process's environment as it is now
    (`WarmServer.follow`), so that a module's fixture starting an ablation or an entry finds it too (its fixture is
    set up before any of the test's own: from a fixture, it started cold where no server ran yet, or asked one serving
    another environment and was refused). Not for the cluster engines' tests, whose steps start cold on Ray or
    Slurm: they run first on their worker (`dispatch_rank`), and a server importing beside them only slowed them."""
    group = next((mark.args[0] for mark in item.iter_markers("xdist_group")), "")
    server = server_of(item.config)
    if server is not None and group != "cluster_engines":
        server.follow()


@pytest.fixture(scope="session")
def warm_server(request) -> WarmServer | None:
    """This process's `WarmServer` (`pytest_runtest_setup` keeps it following the environment); None where none can
    run (not Linux, ``LIMO_WARM_WORKER=0``)."""
    return server_of(request.config)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data(request) -> Path:
    """The shared data folder; use with ``@pytest.mark.shared_data``."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2-architecture model with its tokenizer, saved once per session."""
    from limo.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def overfit_model_dir(tmp_path_factory) -> Path:
    """The tiny model trained to reproduce `limo.models.tiny.DEFAULT_OVERFIT_PAIRS` under greedy decoding."""
    from limo.models.tiny import build_overfit_model

    return build_overfit_model(tmp_path_factory.mktemp("overfit") / "model", seed=0)


@pytest.fixture(scope="session")
def champ_curation(tmp_path_factory) -> tuple[Path, str]:
    """``python -m limo.curate recipe=champ`` once per test run (`tests.shared_runs.built_once`): its ``curate/``
    folder and its stdout. Read only: a test that changes it copies it."""
    out = built_once(tmp_path_factory, "champ-curation", curate_champ)
    return out / "curate", (out / "stdout.txt").read_text()


@pytest.fixture(scope="session")
def taught_model_dir(tmp_path_factory) -> Path:
    """The tiny model taught the RISE lessons (`tests.test_ablate_rise.taught_model`, 80 steps), once per test run."""
    from tests.test_ablate_rise import taught_model

    return built_once(tmp_path_factory, "taught-80", lambda out: taught_model(out, steps=80))


def engine(name: str, start: Callable[[], tuple[Any, Callable[[], None]]]) -> Any:
    """The cluster engine ``name`` this process runs (`ENGINES`), started by ``start`` (its handle and how to stop it)
    the first time a test asks for it, or again after `stop_engines` stopped it."""
    if name not in ENGINES:
        ENGINES[name] = start()
    return ENGINES[name][0]


def stop_engines() -> None:
    """Stop every engine this process started: after the last test that uses one (`pytest_runtest_teardown`), and at
    the session's end."""
    while ENGINES:
        _, (_, stop) = ENGINES.popitem()
        stop()


def _uses_an_engine(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in CLUSTER_FIXTURES)


def pytest_sessionfinish(session):
    stop_engines()
    if _SERVER and _SERVER[0] is not None:
        _SERVER[0].stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After the last test of this process that uses a cluster engine (they run first, on one worker: `dispatch_rank`),
    stop the engines instead of keeping them to the session's end: an idle Ray instance (its raylet, GCS, monitors
    and two idle workers) took about 6% of a core, some 50 s of CPU over the rest of a 2-core run."""
    result = yield
    if _uses_an_engine(item) and item.nodeid == item.session.stash.get(LAST_ENGINE_TEST, None):
        stop_engines()
    return result


def _start_ray() -> tuple[Any, Callable[[], None]]:
    try:
        import ray
    except ImportError:
        skip_or_fail("ray is not installed (pip install 'limo[cluster]')")
    if ray.is_initialized():
        skip_or_fail("this process is already connected to a Ray instance the fixture did not start")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env})
    return ray, ray.shutdown


@pytest.fixture
def ray_instance():
    """A local Ray instance started by this process alone (`engine`), shared by the tests that ask for it."""
    return engine("ray", _start_ray)


def _start_slurm() -> tuple[Any, Callable[[], None]]:
    reason = slurm_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    try:
        cluster = start_slurm()
    except EngineUnavailable as err:
        skip_or_fail(str(err))

    def stop() -> None:
        stop_slurm(cluster)
        shutil.rmtree(cluster.root, ignore_errors=True)

    return cluster, stop


@pytest.fixture
def slurm_cluster():
    """A single-node Slurm on 127.0.0.1 in a temporary folder (`engine`), stopped by the PIDs in its pid files."""
    return engine("slurm", _start_slurm)


@pytest.fixture
def cluster_engine(request):
    """The engine a test's indirect ``cluster_engine`` parameter names: `ray_instance` (``ray``) or `slurm_cluster`
    (``slurm``). Through this fixture, not ``request.getfixturevalue``, the test goes with the other engines' tests
    (`pytest_collection_modifyitems`), on the worker that runs the engines."""
    return request.getfixturevalue({"ray": "ray_instance", "slurm": "slurm_cluster"}[request.param])


@pytest.fixture(scope="session")
def llama_tools():
    """llama.cpp's llama-server, llama-quantize and converter (skips, or fails under LIMO_REQUIRE_LLAMACPP=1, without
    them: tests/llamacpp.py)."""
    from tests.llamacpp import require_tools

    return require_tools()


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The hub endpoint is a closed local port, with offline mode and proxies unset, so the probe decides."""
    import socket

    from eval import records

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    records.hub_unreachable.cache_clear()
    yield f"127.0.0.1:{port}"
    records.hub_unreachable.cache_clear()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module (skips, or fails under LIMO_REQUIRE_BROWSER=1, without it)."""
    from tests.browser import Browser, chromium_path, skip_or_fail

    path = chromium_path()
    if path is None:
        skip_or_fail("chromium is not installed (Debian: apt-get install chromium); the report.html tests need it")
    started = Browser(path)
    yield started
    started.close()
