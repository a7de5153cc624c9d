"""Chinese answers (Gaokao, Kaoyan, GradeSchool): full-width punctuation, "或" alternatives, free text.

Golds in these files mix LaTeX with Chinese punctuation (``$x^{2}-x+y^{2}=0$．``, ``23 ,57.5``), give
alternatives joined by 或 ("or"), and some are Chinese phrases (``必要不充分条件``, "necessary but not
sufficient"). `normalize_cjk` maps full-width punctuation to ASCII and drops a final full stop;
`alternatives` splits a gold on 或 / 或者 so either form is accepted; `is_free_text` says whether a gold
is words the symbolic grader cannot compare beyond exact equality (it holds CJK characters outside
``\\text{}``), which `eval.grading.kinds` reports as undecided rather than incorrect.
"""

from __future__ import annotations

import re

_FULL_WIDTH = str.maketrans(
    {
        "，": ",",
        "．": ".",
        "。": ".",
        "：": ":",
        "；": ";",
        "（": "(",
        "）": ")",
        "【": "[",
        "】": "]",
        "－": "-",
        "＋": "+",
        "＝": "=",
        "＜": "<",
        "＞": ">",
        "　": " ",
        "、": ",",
    }
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_OR = re.compile(r"\s*(?:或者|或)\s*")


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def normalize_cjk(text: str) -> str:
    """Full-width punctuation as ASCII, no final full stop, no surrounding ``$``."""
    text = text.translate(_FULL_WIDTH).strip()
    text = re.sub(r"[.\s]+$", "", text)
    return text.strip()


def alternatives(gold: str) -> list[str]:
    """The gold's accepted forms: split on 或 when every part is mathematics (no other CJK text)."""
    parts = [p.strip() for p in _OR.split(normalize_cjk(gold)) if p.strip()]
    if len(parts) > 1 and not any(has_cjk(p) for p in parts):
        return [normalize_cjk(p) for p in parts]
    return [normalize_cjk(gold)]


def is_free_text(gold: str) -> bool:
    """A gold in words (CJK outside ``\\text{}``): symbolic grading can only confirm an exact match."""
    return has_cjk(re.sub(r"\\text\{[^{}]*\}", "", gold))
