"""The loss language: what a proposed preference objective may be written in, its checker and its interpreter.

It lives under training because both objective discovery (which checks proposals) and ``train.discovered_loss``
(`limo.training.program_loss`, which trains one) use it; training imports nothing from `limo.discovery`.

A proposal is Python *syntax* for one function of ``(policy_chosen_logps, policy_rejected_logps,
reference_chosen_logps, reference_rejected_logps)``, optionally with ``self`` first (the DiscoPOP paper's
method form; ``self.beta`` is the only attribute of ``self``) and a trailing ``beta=<number>`` (the run's beta
is passed). The text is parsed with `ast` and never handed to ``exec``, ``eval`` or ``compile``: a small
tree-walking interpreter evaluates the checked tree on tensors, so a proposal can only do what the interpreter
implements, whatever it spells.

The checker is an allowlist, not a list of known bad strings. Accepted: assignments to local names (plain,
or tuples and lists of them, nested; as in Python, a local may shadow ``beta`` or a builtin, and the
interpreter then uses the local value; only the module names ``torch``, ``F``, ``math`` and import aliases
cannot be rebound),
arithmetic, comparisons, ``if`` / conditional expressions, ``assert``, ``for`` over ``range`` of integer
literals (the product of nested bounds is capped statically), ``return``, and calls to the functions named in
`TORCH_FUNCTIONS`, `FUNCTIONAL_FUNCTIONS`, `MATH_FUNCTIONS`, `TENSOR_METHODS` and `BUILTINS`, with keyword
names from `KEYWORDS`. Import lines that only bind ``torch``, ``torch.nn.functional`` or ``math`` are
accepted as aliases (nothing is imported). The whole tree is checked before deciding, in two classes:

- `UnsafeProgram` (archive status ``rejected_unsafe``): anything that could reach beyond the language or run
  unbounded — a name, attribute, call, keyword or import outside the allowlist (so ``getattr``, ``open``,
  ``__import__``, ``os``, ``importlib`` are unknown names), any identifier starting with ``_`` (dunders,
  privates: ``().__class__.__bases__``), ``while``, loops without a static bound, deep nesting; at run time,
  a resource limit of the interpreter (evaluation steps, elements per tensor — checked *before* an operation
  allocates — and Python integer size).
- `InvalidProgram` (``invalid``): not one function of the agreed signature, syntax the language does not
  have (classes, lambdas, comprehensions, ``try``, ``with``, ``del``, decorators, item or attribute
  assignment), or an error while evaluating (a NaN, a shape mismatch, ...). A hostile proposal that is also
  malformed is reported as unsafe.

The confined worker process adds CPU, memory and wall-clock limits on top (`limo.discovery.sandbox`).
"""

from limo.training.loss_language.checker import LossProgram, check_program
from limo.training.loss_language.grammar import (
    MAX_ELEMENTS,
    SIGNATURE,
    InvalidProgram,
    ProgramError,
    ResourceLimit,
    UnsafeProgram,
)
from limo.training.loss_language.interpreter import Interpreter

__all__ = [
    "MAX_ELEMENTS",
    "SIGNATURE",
    "Interpreter",
    "InvalidProgram",
    "LossProgram",
    "ProgramError",
    "ResourceLimit",
    "UnsafeProgram",
    "check_program",
]
