"""docs/options.md lists every option with the default the code gives it (`limo.cli.options_table`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from limo.cli.options_table import PAGE, render, rows


def test_the_options_page_matches_the_code():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/options.md is stale: a default changed in code; run python -m limo.cli.options_table --write"
    )


def test_the_page_shows_defaults_from_instances_optional_sections_and_descriptions():
    page = render()
    assert "| `curate.stages.select.n` | `int` | `100` |" in page
    assert "| `curate.stages.majority_gold.min_generators` | `int` | `1` | The fewest distinct generators" in page
    assert "| `curate.stages.decontam.semantic.judge.max_new_tokens` | `int` | `16` |" in page  # the instance's
    assert "| `curate.stages.difficulty.weak_rollouts` | `RolloutOptions \\| None` | `null` |" in page
    assert "| `executor.shard_rows` | `int` | `50000` |" in page and "## `train`" in page


@dataclass(frozen=True)
class Inner:
    """Inner.

    Attributes:
        k: How many. More words here.
    """

    k: int = 4


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=lambda: Inner(k=7))
    maybe: Inner | None = None
    names: tuple[str, ...] = ("a",)


def test_a_changed_default_changes_the_row():
    found = {key: (default, note) for key, _, default, note in rows("x", Outer, Outer())}
    assert found == {
        "x.inner.k": ("7", "How many."),
        "x.maybe": ("null", ""),
        "x.maybe.k": ("4", "How many."),
        "x.names": ('["a"]', ""),
    }
