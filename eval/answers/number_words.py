"""The project's one table of English number words, and the views of it that readers use.

`VALUES` is the table: the words from zero to twenty, the tens and the scales, each with its value as a decimal
string. The grader reads only the words up to ten (`UP_TO_TEN`: "at most two of ...", "is zero"), a reading its
verdicts were measured with; curation's readers (`curation.similarity`, `curation.meaning`) use the whole table to
fold "twenty-five" and "one hundred and five" into numbers.
"""

from __future__ import annotations

_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
VALUES = (
    {word: str(value) for value, word in enumerate(_SMALL)}
    | {word: str(value) for word, value in TENS.items()}
    | {word: str(value) for word, value in SCALES.items()}
)
UNITS = {word: int(VALUES[word]) for word in _SMALL[1:10]}  # one .. nine, the second half of "twenty-five"
BELOW_TWENTY = {word: int(VALUES[word]) for word in _SMALL}
UP_TO_TEN = {word: value for word, value in VALUES.items() if int(value) <= 10}
