"""datatrove pipeline steps for the MAmmoTH2 recall stage.

datatrove already streams JSONL and WARC, shards files over tasks, runs them locally, on Slurm or Ray, and
resumes at task granularity; we add only what it lacks for us:

- `AccountedJsonlReader`: datatrove's JSONL reader skips bad lines with a log warning; ours also writes
  each one (file, line, reason) to a bad-input file, so ``read = scored + bad`` reconciles.
- `FastTextRecallFilter`: scores each document with our fastText model on *normalised* text (the same
  normalisation as training, which datatrove's `FastTextClassifierFilter` cannot apply), records the score
  in the document's metadata, and keeps it when the score reaches the threshold. Batched predictions.
- `HtmlToText`: WARC response records hold HTML; a stdlib parser turns them into text (WET records are text
  already and pass through).

This module imports datatrove at import time; `recall` imports it lazily, so `curation` stays importable
without the ``mining`` extra.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import JsonlReader

SCORE_KEY = "recall_score"
_TOKENS = re.compile(r"\w+|[^\w\s]")


def normalize_for_fasttext(text: str, max_chars: int = 20_000) -> str:
    """Lower-case, one line, symbols split off as tokens (``x^2+1`` -> ``x ^ 2 + 1``): notation becomes features."""
    return " ".join(_TOKENS.findall(text[:max_chars].lower()))  # findall: twice as fast as sub + split


class AccountedJsonlReader(JsonlReader):
    """`JsonlReader` that records every unreadable line in ``bad_input_dir/<rank>.jsonl``."""

    name = "📖 Jsonl (accounted)"

    def __init__(self, data_folder: str, *, bad_input_dir: str, **kwargs: Any):
        super().__init__(data_folder, **kwargs)
        self.bad_input_dir = bad_input_dir
        self._rank = 0

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank = rank
        # A task that runs is run from its start (datatrove skips finished ones): drop a killed attempt's lines.
        (Path(self.bad_input_dir) / f"{rank:05d}.jsonl").unlink(missing_ok=True)
        yield from super().run(data, rank, world_size)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import orjson

        with self.data_folder.open(filepath, "r", compression=self.compression) as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    row = orjson.loads(line)
                    document = (
                        self.get_document_from_dict(row, filepath, line_number - 1) if type(row) is dict else None
                    )
                    reason = None if document else f"no non-empty '{self.text_key}' field"
                except orjson.JSONDecodeError as err:
                    document, reason = None, f"invalid JSON ({err})"
                if document is None:
                    self._bad(filepath, line_number, reason or "unreadable row")
                    continue
                yield document

    def _bad(self, filepath: str, line_number: int, reason: str) -> None:
        self.stat_update("bad_input")
        target = Path(self.bad_input_dir) / f"{self._rank:05d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        row = {"source": self.data_folder.resolve_paths(filepath), "row": line_number, "field": self.text_key}
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**row, "reason": reason, "stage": "recall_read"}) + "\n")


class FastTextRecallFilter(BaseFilter):
    """Keep documents whose fastText probability of ``label`` reaches ``threshold``; record the score."""

    name = "🧮 MAmmoTH2 recall"
    _requires_dependencies = [("fasttext", "fasttext-numpy2-wheel")]

    def __init__(self, model_path: str, *, threshold: float, label: str, exclusion_writer=None, batch_size: int = 256):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.model_path = model_path
        self.threshold = threshold
        self.label = f"__label__{label}"
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(self.model_path)
            if self.label not in self._model.labels:
                raise ValueError(f"{self.model_path}: model has no label {self.label} (has {self._model.labels})")
        return self._model

    def scores(self, texts: list[str]) -> np.ndarray:
        """Probability of the positive label for each text."""
        labels, probs = self.model.predict([normalize_for_fasttext(t) for t in texts], k=-1)
        return np.array(
            [dict(zip(ls, ps, strict=True)).get(self.label, 0.0) for ls, ps in zip(labels, probs, strict=True)]
        )

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        results: list[bool | tuple[bool, str]] = []
        for doc, score in zip(batch, self.scores([d.text for d in batch]), strict=True):
            doc.metadata[SCORE_KEY] = float(score)
            if not doc.text.strip():
                results.append((False, "empty_text"))
            else:
                results.append(True if score >= self.threshold else (False, "below_threshold"))
        return results

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]


class _TextCollector(HTMLParser):
    _SKIP = {"script", "style", "noscript", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skipping += tag in self._SKIP
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in self._SKIP and self._skipping > 0

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page, one block per line (stdlib only; good enough for recall features)."""
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    lines = (" ".join(line.split()) for line in html.unescape("".join(collector.parts)).splitlines())
    return "\n".join(line for line in lines if line)


class HtmlToText(PipelineStep):
    """Replace HTML document text by its visible text; plain-text documents pass through unchanged.

    A page with no visible text travels on empty and the scorer excludes it (reason ``empty_text``), so it is
    counted rather than lost.
    """

    name = "🧾 HTML to text"
    type = "🛢 - EXTRAC"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if "<" in doc.text[:2000] and re.search(r"<(html|body|p|div)\b", doc.text[:5000], re.IGNORECASE):
                doc.text = html_to_text(doc.text)
                self.stat_update("html_converted")
            yield doc  # even when empty: the scorer excludes it with a reason, so the counts still add up
