"""Test configuration: offline by construction, one thread per process, tiny models built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/limo/torch_extensions"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.shared_data import REPO_ROOT, shared_data_dir  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip without CUDA (checked lazily so collecting never imports torch)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


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
    from limo.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def overfit_model_dir(tmp_path_factory) -> Path:
    """The tiny model trained to reproduce `limo.tiny_models.DEFAULT_OVERFIT_PAIRS` under greedy decoding."""
    from limo.tiny_models import build_overfit_model

    return build_overfit_model(tmp_path_factory.mktemp("overfit") / "model", seed=0)
