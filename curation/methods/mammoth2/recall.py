"""Recall: train a fastText classifier on seed pages against random negatives, then score a web dump with it.

Training follows MAmmoTH2 (seed documents as positives, an equal-sized random sample of other documents as
negatives, fastText with word n-grams); the recipe carries the paper's settings and the ones the small
embedded corpus needs. Training uses one thread and a fixed seed, so the model is reproducible.

Scoring is a datatrove pipeline (reader -> [HTML to text] -> `FastTextRecallFilter` -> writer): documents
stream through, memory stays flat whatever the corpus size, and input files are sharded over ``tasks``
datatrove tasks. The tasks are the shards of one job on the run's executor (`curation.executors`: local, Ray
or Slurm, like the run's pool stages), so a killed run resumes at task granularity (completion markers).
Kept documents go to ``recalled/`` with their score; every other document leaves one line (id, score, reason,
and ``gold_label`` when the corpus has one) in ``excluded/``, and unreadable input lines go to ``bad_input/``,
so ``read = kept + excluded + bad`` reconciles at any scale. ``top_k`` is applied afterwards over the kept
documents with a bounded heap.
"""

from __future__ import annotations

import gzip
import heapq
import json
import logging
import random
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.executors import ExecutorOptions, ShardJob, completed_shards, run_job

log = logging.getLogger(__name__)

POSITIVE, NEGATIVE = "math", "other"
INPUT_FORMATS = ("jsonl", "warc")


@dataclass(frozen=True)
class FastTextParams:
    """fastText supervised-training hyperparameters (``fasttext.train_supervised`` names, snake_case).

    The model file holds ``bucket * dim`` floats for the hashed n-grams: fastText's default 2M buckets at
    dim 256 is 2 GB, so small corpora want far fewer buckets. Defaults are the paper's (dim 256, 3 epochs).
    ``seed`` None means the run seed (the MAmmoTH2 method fills it in before training).
    """

    dim: int = 256
    lr: float = 0.1
    word_ngrams: int = 3
    min_count: int = 3
    epoch: int = 3
    bucket: int = 2_000_000
    thread: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class TrainedClassifier:
    path: Path
    positives: int
    negatives: int


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream rows of a JSONL file (``.gz`` too); a bad line raises naming the file and line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: line {number}: invalid JSON ({err.msg})") from None


def reservoir_sample(rows: Iterable[Any], size: int, rng: random.Random) -> list[Any]:
    """A uniform random sample of ``size`` rows from a stream of unknown length (memory: ``size`` rows)."""
    sample: list[Any] = []
    for seen, row in enumerate(rows):
        if seen < size:
            sample.append(row)
        elif (slot := rng.randint(0, seen)) < size:
            sample[slot] = row
    return sample


def _train_classifier_here(
    positive_path: str | Path,
    negative_path: str | Path,
    out_dir: str | Path,
    params: FastTextParams,
    *,
    negatives_per_positive: float = 1.0,
    text_key: str = "text",
) -> TrainedClassifier:
    """Train the recall classifier on every positive row and a random sample of negative rows.

    Args:
        positive_path: JSONL of seed documents (the positives).
        negative_path: JSONL pool of other documents; ``negatives_per_positive`` times as many are drawn.
        out_dir: Folder for the training file and ``recall.bin``.
        params: fastText hyperparameters.
        negatives_per_positive: Negative-to-positive ratio (MAmmoTH2: 1).
        text_key: Field holding the text.

    Returns:
        The model path and the example counts.
    """
    import fasttext

    from curation.methods.mammoth2 import steps  # deferred: imports datatrove (the mining extra)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(params.seed)
    positives = [row[text_key] for row in iter_jsonl(positive_path) if row.get(text_key)]
    size = round(len(positives) * negatives_per_positive)
    negatives = reservoir_sample((r[text_key] for r in iter_jsonl(negative_path) if r.get(text_key)), size, rng)
    lines = [f"__label__{POSITIVE} {steps.normalize_for_fasttext(t)}" for t in positives]
    lines += [f"__label__{NEGATIVE} {steps.normalize_for_fasttext(t)}" for t in negatives]
    rng.shuffle(lines)
    train_file = out / "recall_train.txt"
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(
        input=str(train_file),
        dim=params.dim,
        lr=params.lr,
        wordNgrams=params.word_ngrams,
        minCount=params.min_count,
        epoch=params.epoch,
        bucket=params.bucket,
        thread=params.thread,
        seed=params.seed,
        verbose=0,
    )
    model.save_model(str(out / "recall.bin"))
    log.info("recall classifier: %d positives, %d negatives -> %s", len(positives), len(negatives), out / "recall.bin")
    return TrainedClassifier(out / "recall.bin", len(positives), len(negatives))


# ------------------------------------------------------------------------------------------------- scoring


def in_fresh_process(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``function(*args, **kwargs)`` in a newly spawned interpreter and return its result.

    fastText's C++ trainer and predictor raised "Encountered NaN" in processes that had already run other
    native numeric code (the test suite after in-process curation runs; a process training several
    classifiers after scoring), for learning rates 0.1 to 0.5 and several seeds — and never in a fresh
    interpreter, where the same (corpus, lr, seed) all trained and scored. Spawning costs about a second, once
    for training and once per recall shard (on every executor: a Ray worker or a pool process may have run other
    stages' native code before).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def train_classifier(
    positive_path: str | Path,
    negative_path: str | Path,
    out_dir: str | Path,
    params: FastTextParams,
    *,
    negatives_per_positive: float = 1.0,
    text_key: str = "text",
) -> TrainedClassifier:
    """Train the recall classifier in a fresh process (see `in_fresh_process`); arguments as below."""
    return in_fresh_process(
        _train_classifier_here,
        positive_path,
        negative_path,
        out_dir,
        params,
        negatives_per_positive=negatives_per_positive,
        text_key=text_key,
    )


@dataclass(frozen=True)
class RecallSettings:
    """How to read and score a corpus.

    Attributes:
        threshold: Keep documents whose positive-label probability is at least this.
        top_k: Then keep only the ``top_k`` best-scored (None: all above threshold).
        input_format: ``jsonl`` (``.jsonl`` / ``.jsonl.gz``) or ``warc`` (``.warc`` / ``.warc.gz``, WET too).
        glob_pattern: Which files under the input folder to read (None: every file of the format).
        text_key: JSONL field holding the text.
        id_key: JSONL field holding the document id.
        tasks: Shards (datatrove tasks) the input files are split into: one shard of the run's executor each.
        workers: Shards scored at once on the run's executor (None: ``executor.workers``).
        batch_size: Documents per fastText prediction call.
        label: The positive label's name.
        output_compression: ``gzip`` or None for the kept / excluded files (gzip at datatrove's level 9 cost
            about an eighth of the stage's time on 2 cores; the kept files are read once, by extraction).
    """

    threshold: float = 0.5
    top_k: int | None = None
    input_format: str = "jsonl"
    glob_pattern: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    tasks: int = 1
    workers: int | None = None
    batch_size: int = 256
    label: str = POSITIVE
    output_compression: str | None = None

    def __post_init__(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(f"recall: input_format {self.input_format!r} is not one of {INPUT_FORMATS}")


@dataclass(frozen=True)
class RecallResult:
    """Where the scored corpus went, and its accounting."""

    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def recalled_dir(self) -> Path:
        return self.out_dir / "recalled"

    @property
    def excluded_dir(self) -> Path:
        return self.out_dir / "excluded"


def _recalled_row(self: Any, document: Any) -> dict[str, Any]:
    return {"id": document.id, "text": document.text, **document.metadata}


def _excluded_row(self: Any, document: Any) -> dict[str, Any]:
    meta = document.metadata
    row = {"id": document.id, "recall_score": meta.get("recall_score"), "reason": meta.get("filter_reason")}
    return row | ({"gold_label": meta["gold_label"]} if "gold_label" in meta else {})


def build_recall_pipeline(
    input_path: str | Path, model_path: str | Path, out_dir: Path, settings: RecallSettings
) -> list[Any]:
    """The datatrove steps: read, (HTML to text), score and filter, write kept and excluded documents."""
    from datatrove.pipeline.writers import JsonlWriter

    from curation.methods.mammoth2.steps import (  # deferred: imports datatrove (the mining extra)
        AccountedJsonlReader,
        FastTextRecallFilter,
        HtmlToText,
    )

    reader_kwargs = {"glob_pattern": settings.glob_pattern, "text_key": settings.text_key, "id_key": settings.id_key}
    if settings.input_format == "warc":
        from datatrove.pipeline.readers import WarcReader

        glob = settings.glob_pattern or "**/*.warc*"
        readers = [WarcReader(str(input_path), glob_pattern=glob), HtmlToText()]
    else:
        reader_kwargs["glob_pattern"] = settings.glob_pattern or "**/*.jsonl*"
        readers = [AccountedJsonlReader(str(input_path), bad_input_dir=str(out_dir / "bad_input"), **reader_kwargs)]
    compression = settings.output_compression
    excluded = JsonlWriter(str(out_dir / "excluded"), adapter=_excluded_row, compression=compression)
    scorer = FastTextRecallFilter(
        str(model_path),
        threshold=settings.threshold,
        label=settings.label,
        exclusion_writer=excluded,
        batch_size=settings.batch_size,
    )
    return [*readers, scorer, JsonlWriter(str(out_dir / "recalled"), adapter=_recalled_row, compression=compression)]


def run_recall(
    input_path: str | Path,
    model_path: str | Path,
    out_dir: str | Path,
    settings: RecallSettings,
    executor: ExecutorOptions | None = None,
) -> RecallResult:
    """Score every document under ``input_path`` and keep those at or above the threshold.

    One shard job (`curation.executors`) of ``settings.tasks`` shards on ``executor``, the run's (the one its pool
    stages use): shard ``i`` is datatrove's pipeline for task ``i`` (`score_shard`), which reads its share of the
    input files. A rerun after a kill runs only the shards without a completion marker; a new job (other tasks,
    model, settings or code) first clears the outputs an earlier one left.

    Args:
        input_path: A folder (or single file) of JSONL or WARC files.
        model_path: The fastText model from `train_classifier`.
        out_dir: Stage folder: ``recalled/``, ``excluded/``, ``bad_input/``, ``jobs/`` (the shard job).
        settings: Format, threshold, sharding.
        executor: Where the shards run (None: locally, in this process); ``settings.workers`` shards at a time
            when set, else ``executor.workers``.

    Returns:
        The result with counts ``read``, ``bad_input``, ``scored``, ``kept``, ``excluded``.

    Raises:
        FileNotFoundError: ``input_path`` or ``model_path`` does not exist.
        ExecutorError: A shard did not finish (the message names it and its logs).
    """
    source = Path(input_path)
    if not source.exists():
        raise FileNotFoundError(f"recall input {source}: no such file or folder")
    folder, glob = (source.parent, source.name) if source.is_file() else (source, settings.glob_pattern)
    out = Path(out_dir)
    job = recall_job(folder, Path(model_path), out, replace(settings, glob_pattern=glob))
    if not completed_shards(job):
        for name in ("recalled", "excluded", "bad_input"):
            shutil.rmtree(out / name, ignore_errors=True)
    runner = executor or ExecutorOptions()
    workers = runner.workers if settings.workers is None else settings.workers
    run_job(job, replace(runner, workers=workers, gpus_per_task=0))
    return RecallResult(out, recall_counts(out))


def recall_job(folder: Path, model: Path, out: Path, settings: RecallSettings) -> ShardJob:
    """The shard job: one item per datatrove task. Its folder (under ``out/jobs``) is named from the items: the
    model's size and time stamp make a retrained model a new job; ``workers`` is left out, so a rerun with more
    or fewer at a time keeps the finished shards."""
    stamp = model.stat()
    item = {
        "input": str(folder),
        "model": str(model),
        "model_stamp": [stamp.st_size, stamp.st_mtime_ns],
        "out": str(out),
        "settings": {key: value for key, value in asdict(settings).items() if key != "workers"},
    }
    return ShardJob("recall", score_shard, (item,) * settings.tasks, str(out / "jobs"))


def score_shard(rank: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    """Recall shard ``rank``: datatrove's pipeline for task ``rank`` of ``settings.tasks``, in a fresh process
    (`in_fresh_process`); returns each step's counters (the shard's rows; the documents go to ``item['out']``)."""
    return in_fresh_process(_score_shard_here, rank, item)


def _score_shard_here(rank: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    settings = RecallSettings(**item["settings"])
    pipeline = build_recall_pipeline(item["input"], item["model"], Path(item["out"]), settings)
    documents: Any = None
    for step in pipeline:  # each step's public call (data, rank, world_size), chained as datatrove's executors do
        documents = step(documents, rank, settings.tasks)
    deque(documents, maxlen=0)
    return [{"step": step.name, "stats": step.stats.stats.to_dict()} for step in pipeline]


def recall_counts(out_dir: Path) -> dict[str, int]:
    """Counts from the stage's files: one line per kept, excluded and bad-input document."""
    kept = sum(1 for _ in iter_folder(out_dir / "recalled"))
    excluded = sum(1 for _ in iter_folder(out_dir / "excluded"))
    bad = sum(1 for _ in iter_folder(out_dir / "bad_input"))
    scored = kept + excluded
    return {"read": scored + bad, "bad_input": bad, "scored": scored, "kept": kept, "excluded": excluded}


def iter_folder(folder: Path) -> Iterator[dict[str, Any]]:
    """Rows of every ``*.jsonl`` / ``*.jsonl.gz`` file in ``folder``, files in name order."""
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz"))):
        yield from iter_jsonl(path)


def top_k(rows: Iterable[dict[str, Any]], k: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``k`` best-scored rows (ties broken by id) and one reject row for each of the others.

    Memory holds ``k`` rows plus the rejected ids, never the whole stream.
    """
    heap: list[tuple[float, str, dict[str, Any]]] = []
    rejects = []
    for row in rows:
        item = (row["recall_score"], _reverse(row["id"]), row)
        if len(heap) < k:
            heapq.heappush(heap, item)
            continue
        dropped = heapq.heappushpop(heap, item)
        rejects.append({"id": dropped[2]["id"], "recall_score": dropped[0], "reason": f"rank > top_k={k}"})
    kept = [row for _, _, row in sorted(heap, key=lambda t: (-t[0], t[2]["id"]))]
    return kept, rejects


class _reverse(str):
    """Orders ids descending inside the min-heap, so equal scores keep the smaller id."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


def precision_recall(kept: Iterable[dict[str, Any]], excluded: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Precision and recall of the positive label against ``gold_label`` (None when the corpus has none)."""
    tp = fp = fn = tn = 0
    for row in kept:
        if "gold_label" not in row:
            return None
        tp, fp = tp + (row["gold_label"] == POSITIVE), fp + (row["gold_label"] != POSITIVE)
    for row in excluded:
        if "gold_label" not in row:
            return None
        fn, tn = fn + (row["gold_label"] == POSITIVE), tn + (row["gold_label"] != POSITIVE)
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "true_positive": tp,
        "false_positive": fp,
        "false_negative": fn,
        "true_negative": tn,
    }
