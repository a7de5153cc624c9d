"""bench/gpu/gpu_check.py where no GPU is: its CPU run (every part, scaled-down shapes) so the GPU check cannot rot, a
part that fails or hangs leaving the others' figures, the carried wheels covering what the check imports, and the
commands docs/training.md gives.

The CPU run takes about 70 s of CPU (slow tier): ten processes, each importing torch, transformers and TRL.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.shared_data import REPO_ROOT


def bench_module(kind: str, name: str) -> ModuleType:
    """The script bench/<kind>/<name>.py as a module (bench/ is no package).

    Its folder is on sys.path only while the script loads (as it is when the script runs): left there, it would
    precede the repository in every process this worker later spawns.
    """
    saved = list(sys.path)
    sys.path.insert(0, str(REPO_ROOT / "bench" / kind))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / kind / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def run_check(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    command = [sys.executable, "bench/gpu/gpu_check.py", "--device", "cpu", "--out", str(out), *args]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600)
    return done, json.loads((out / "gpu_check.json").read_text())


@pytest.fixture(scope="module")
def cpu_check(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """The whole check on this CPU. Budgets x10: they guard against a hang, and load must not decide a test. The
    parts that may share a process do (``--shared-process``: 4 processes fewer, each ~3 s of imports); a part in a
    process of its own is the other tests' (a failing or hanging part, the long part)."""
    out = tmp_path_factory.mktemp("gpu_check")
    done, report = run_check(out, "--budget-factor", "10", "--shared-process")
    return done, report, out


@pytest.mark.slow
def test_every_part_runs_on_cpu_with_its_figures(cpu_check):
    done, report, out = cpu_check
    parts = report["parts"]
    assert done.returncode == 0 and list(parts) == list(bench_module("gpu", "gpu_check").ORDER), done.stdout[-3000:]
    assert {name: entry["status"] for name, entry in parts.items()} == dict.fromkeys(parts, "ok"), done.stdout
    fig = {name: entry["figures"] for name, entry in parts.items()}
    assert fig["peak"]["dtype"] == "float32" and fig["peak"]["tflops"] > 0
    for shape in ("smollm2-135m", "qwen2.5-1.5b"):
        for batching in ("padding_free", "padded"):
            run = fig["sft"][shape][batching]
            assert run["tokens_per_s"] > 0 and run["mfu"] > 0, (shape, batching, run)
    assert fig["memory"]["estimate_gib"]["total"] > 0 and fig["memory"]["measured_gib"] is None
    assert fig["memory"]["setup"]["seq_len"] == fig["memory"]["max_length"]
    zero = fig["zero"]
    assert [zero["runs"][s]["zero_stage"] for s in ("plain", "zero2", "zero3")] == [None, 2, 3]
    # each run a fork of the server that imported the training stack once (on a GPU: an interpreter of its own)
    assert [zero["runs"][s]["forked"] for s in ("plain", "zero2", "zero3")] == [True] * 3
    assert zero["drop"] > 0 and all(
        zero[s]["share_of_drop"] <= zero["tolerance_share_of_drop"] for s in ("zero2", "zero3")
    )
    assert all(fig["generation"][f"batch_{b}"]["tokens"] > 0 for b in (1, 4, 8))
    assert fig["grpo"]["steps"] == 2 and "reward" in fig["grpo"]["logged"]
    assert len(fig["demo"]["stages_s"]) == 5 and "arith_heldout" in fig["demo"]["result"]
    for name in parts:
        assert re.search(rf"\[gpu_check\] {name} +ok ", done.stdout), name
    assert "===== demo =====" in (out / "gpu_check.log").read_text()
    # The carried wheels cover what the check imports: every distribution its processes imported is on the GPU image
    # or in bench/gpu/gpu_wheels.py's list. (Here, not in a test of its own: under xdist a second test rebuilt the
    # module's fixture, two more minutes of CI.)
    imported = {name for entry in report["parts"].values() for name in entry["distributions"]}
    assert {"trl", "deepspeed", "datasets", "hydra-core"} <= imported
    assert bench_module("gpu", "gpu_wheels").uncovered(imported) == []


@pytest.mark.slow
def test_a_failing_or_hanging_part_leaves_the_others_figures(tmp_path):
    work = tmp_path / "work"
    args = ["--parts", "sft,zero,peak", "--fault", "sft:hang", "--budget", "sft=2", "--fault", "zero:raise"]
    done, report = run_check(tmp_path / "out", *args, "--work", str(work), "--keep-work")
    parts = report["parts"]
    assert done.returncode == 1 and list(parts) == ["sft", "zero", "peak"]
    assert parts["sft"]["status"] == "failed" and "timed out after its budget of 2 s" in parts["sft"]["error"]
    assert parts["zero"]["status"] == "failed"
    assert parts["zero"]["error"].startswith("RuntimeError: fault injected (--fault) (gpu_parts.py:")
    assert parts["peak"]["status"] == "ok" and parts["peak"]["figures"]["tflops"] > 0
    assert not [p for p in Path("/proc").glob("[0-9]*") if str(work) in _cmdline(p)], "the hung part was killed"


def _cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_part_that_dies_without_a_result_is_reported_with_its_last_line(tmp_path, monkeypatch):
    check = bench_module("gpu", "gpu_check")
    log = tmp_path / "part.log"
    spec = {"device": "cpu", "work": str(tmp_path)}
    monkeypatch.setattr(check, "REPO", tmp_path)  # a "gpu_parts.py" that prints and exits 3
    (tmp_path / "bench" / "gpu").mkdir(parents=True)
    (tmp_path / "bench" / "gpu" / "gpu_parts.py").write_text("print('out of memory, it said')\nraise SystemExit(3)\n")
    entry = check.run_part("peak", spec, 60, log)
    assert entry["status"] == "failed"
    assert entry["error"] == "its process exited with status 3 and wrote no result; last line: out of memory, it said"


def test_parts_sharing_a_process_keep_what_finished_when_it_dies(tmp_path, monkeypatch):
    """``--shared-process`` (the CPU run above): a part's result is kept once it finished; the part running when the
    process died, and those after it, fail naming the parts that shared it. Only consecutive shareable parts share."""
    check = bench_module("gpu", "gpu_check")
    assert check.process_groups(["peak", "sft", "demo", "zero", "generation"], shared=True) == [
        ["peak", "sft"],
        ["demo"],
        ["zero", "generation"],
    ]
    assert check.process_groups(["peak", "sft"], shared=False) == [["peak"], ["sft"]]
    monkeypatch.setattr(check, "REPO", tmp_path)  # a "gpu_parts.py" that finishes peak, then dies in sft
    (tmp_path / "bench" / "gpu").mkdir(parents=True)
    (tmp_path / "bench" / "gpu" / "gpu_parts.py").write_text(
        "import json, sys\n"
        "json.dump({'peak': {'status': 'ok', 'figures': {'tflops': 1.0}, 'seconds': 0.5}}, open(sys.argv[3], 'w'))\n"
        "print('killed in sft')\nraise SystemExit(3)\n"
    )
    spec = {"device": "cpu", "work": str(tmp_path), "faults": {}}
    entries = check.run_shared(["peak", "sft", "memory"], spec, 60, tmp_path / "group.log")
    assert entries["peak"] == {"status": "ok", "figures": {"tflops": 1.0}, "seconds": 0.5, "budget_s": 60}
    for name in ("sft", "memory"):
        assert entries[name]["status"] == "failed"
        assert entries[name]["error"] == (
            "its process exited with status 3 and wrote no result; last line: killed in sft"
            " (in one process with peak, sft, memory)"
        )


def test_wheel_list_pins_and_size_limit(tmp_path):
    wheels = bench_module("gpu", "gpu_wheels")
    versions = wheels.pinned_versions()
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    for name in ("trl", "deepspeed", "datasets", "hydra-core", "math-verify", "champ-dataset"):
        assert f'"{name}=={versions[name]}"' in pyproject, name
    assert set(wheels.CARRY) & set(wheels.IMAGE) == set(wheels.REPLACED)  # the rest of the image is used as it is
    files = []
    for name, mib in (("small-1.0-py3-none-any.whl", 1), ("big-2.0-py3-none-any.whl", 40)):
        path = tmp_path / name
        path.write_bytes(b"\0" * (mib * wheels.MIB))
        files.append(path)
    wheels.check_size(files, tree=20 * wheels.MIB, limit_mib=64)  # 61 MiB: fits
    with pytest.raises(SystemExit, match=r"= 66\.0 MiB, over the device tool's 64 MiB; largest: big-2\.0-py3"):
        wheels.check_size(files, tree=25 * wheels.MIB, limit_mib=64)
    assert wheels.wheel_in(tmp_path, "Big", "2.0") == files[1] and wheels.wheel_in(tmp_path, "big", "2.1") is None
    # setuptools' vendored copies are found as distributions once it put its _vendor folder on sys.path (whatever
    # this worker imported before): they travel inside setuptools, on the image, and are never "uncovered"
    import setuptools  # noqa: F401

    __import__("more_itertools")
    assert wheels.uncovered(["more-itertools", "backports.tarfile"]) == []


def test_docs_give_a_device_command_that_fits_the_tool():
    """docs/training.md's commands: the plain one for a machine with a GPU, and for a machine without network one bash
    line under 2,000 characters naming the ignored wheel folder to carry."""
    text = (REPO_ROOT / "docs" / "training.md").read_text()
    section = text[text.index("## Checking the GPU path") :]
    commands = re.findall(r"```bash\n\s*(.+?)\n\s*```", section, re.S)
    assert any(c.startswith("python bench/gpu/gpu_check.py --out") for c in commands)
    command = next((c for c in commands if "--wheels" in c), "")
    assert len(command) < 2000 and "bench/gpu/gpu_check.py --wheels .gpu_wheels" in command
    assert "carry" in section and "/.gpu_wheels/" in (REPO_ROOT / ".gitignore").read_text().splitlines()
    help_text = subprocess.run(["make", "help"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    phony = re.search(r"^\.PHONY:(.*)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert "gpu-check" in help_text and phony and "gpu-check" in phony[1].split()


def test_the_long_part_trains_what_the_plan_fits():
    """A 7B full fine-tune at 16k-token rows: ~137 GiB by the plan under ZeRO-3, ~24 GiB on the GPU with the
    optimizer in ~170 GiB of host memory: on an H200 with 128 GiB of host memory, LoRA; a bigger host, offload."""
    parts = bench_module("gpu", "gpu_parts")
    long = parts.gpu_sizes().long
    mode, plans = parts.long_mode(long, "cuda", device_gib=139.8, host_gib=125.0)
    assert mode == "lora" and plans["full_gib"] > 135 and plans["offload_gib"] < 40 < plans["offload_cpu_gib"]
    assert parts.long_mode(long, "cuda", device_gib=139.8, host_gib=2000.0)[0] == "offload"
    assert parts.long_mode(long, "cuda", device_gib=plans["full_gib"] + 4.5, host_gib=125.0)[0] == "full"
    assert parts.long_setup(long, "cuda", "lora").seq_len >= 2 * long.max_length  # a packed row of two
    overrides = parts.long_overrides(Path("m"), Path("d"), long, "cuda", "padding_free", "lora")
    assert "deepspeed=zero3" in overrides and "train.args.activation_checkpointing=true" in overrides
    assert any(o.startswith("++train.lora={r: 16") for o in overrides) and "train.args.max_length=null" in overrides
    offload = parts.long_overrides(Path("m"), Path("d"), long, "cuda", "padded", "offload")
    assert f"train.args.max_length={long.seq_len}" in offload and any("offload_optimizer" in o for o in offload)


@pytest.mark.slow
def test_the_long_part_runs_on_cpu(tmp_path):
    """The long part at a tenth of its lengths on the tiny shape: ZeRO-3, LoRA, padding-free rows attended example
    by example against padded batches, both with their figures."""
    done, report = run_check(tmp_path / "out", "--parts", "peak,long", "--budget-factor", "10")
    entry = report["parts"]["long"]
    assert done.returncode == 0 and entry["status"] == "ok", done.stdout[-3000:]
    fig = entry["figures"]
    assert fig["mode"] == "lora" and fig["padding_free_over_padded"] > 0
    for batching, attention in (("padding_free", "sdpa_packed"), ("padded", "sdpa")):
        run = fig[batching]
        assert run["zero_stage"] == 3 and run["attention"] == attention, (batching, run)
        assert run["tokens_per_s"] > 0 and run["mfu"] > 0 and run["estimate_gib"] > 0
    assert re.search(r"\[gpu_check\] long +ok ", done.stdout)


def test_device_parts_fit_each_call_and_join_to_the_payload(tmp_path, monkeypatch):
    """bench/gpu/device_parts.py: a payload of a file and a folder, cut for calls of 256 KiB with a 50,000-byte tree
    and a first-call folder; each call carries at most the limit with the tree, and running the calls' commands in
    order (copies, then the join) unpacks the payload as it was."""
    parts_module = bench_module("gpu", "device_parts")
    rng = random.Random(0)
    model = tmp_path / "student.gguf.xz"
    model.write_bytes(rng.randbytes(400_000))
    package = tmp_path / "site" / "wordllama"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "weights" / "table.safetensors").write_bytes(rng.randbytes(150_000))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a.whl").write_bytes(rng.randbytes(60_000))
    monkeypatch.setattr(parts_module, "STAGING", str(tmp_path / "staging"))
    monkeypatch.setattr(parts_module, "PAYLOAD", str(tmp_path / "payload"))
    out = tmp_path / "parts"
    limit, tree = 256 * 1024, 50_000
    items = [f"student.gguf.xz={model}", f"pkgs/wordllama={package}"]
    parts_module.main([*items, "--out", str(out), "--first", str(wheels), "--limit-mib", "0.25", "--margin-mib", "0",
                       "--tree-bytes", str(tree)])  # fmt: skip
    lines = (out / "calls.txt").read_text().splitlines()
    carries = [line.split()[1:] for line in lines if line.startswith("carry ")]
    commands = [line[len("run   ") :] for line in lines if line.startswith("run   ")]
    assert len(carries) == len(commands) == len(list(out.glob("part-*"))) >= 3
    assert carries[0][0] == str(wheels)
    for carry in carries:
        assert tree + sum(parts_module.folder_bytes(Path(p)) for p in carry) <= limit, carry
    for command in commands:
        subprocess.run(["bash", "-c", command], check=True)
    payload = tmp_path / "payload"
    assert (payload / "student.gguf.xz").read_bytes() == model.read_bytes()
    assert (payload / "pkgs" / "wordllama" / "weights" / "table.safetensors").read_bytes() == (
        package / "weights" / "table.safetensors"
    ).read_bytes()
    with pytest.raises(SystemExit, match="NAME=PATH"):
        parts_module.main([f"nothing={tmp_path / 'absent'}", "--out", str(out)])
