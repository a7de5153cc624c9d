"""DeepSpeed's CPU backend compiles its shm op when a run starts; torch guards the build with a lock file and waits
on it forever. A compile interrupted once (Ctrl-C, a killed job) left that lock, and every later ZeRO run on the
machine hung at start-up without a word (it happened to this suite: three tests waited 12-25 minutes). limo removes a
lock older than any build and says so; a younger one is said and waited for."""

from __future__ import annotations

import os
import time

from limo.training.distributed import SHM_OP, STALE_LOCK_S, clear_stale_build_lock


def test_a_stale_build_lock_is_removed_and_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert clear_stale_build_lock(SHM_OP) is None  # no lock: nothing said
    lock = tmp_path / SHM_OP / "lock"
    lock.write_bytes(b"")
    old = time.time() - STALE_LOCK_S - 60
    os.utime(lock, (old, old))
    said = clear_stale_build_lock(SHM_OP)
    assert said and said.startswith("removed a stale build lock") and not lock.exists()
    assert said in capsys.readouterr().err


def test_a_fresh_build_lock_is_left_to_its_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    (tmp_path / SHM_OP).mkdir()
    lock = tmp_path / SHM_OP / "lock"
    lock.write_bytes(b"")
    said = clear_stale_build_lock(SHM_OP)
    assert said and said.startswith("waiting for another process's build") and lock.exists()
    assert "delete it if none runs" in capsys.readouterr().err
