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

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

SIGNATURE = ("policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps")
MAX_CODE_CHARS = 20_000
MAX_DEPTH = 60  # nesting of syntax nodes; keeps parsing, checking and interpreting far from the C stack
MAX_LOOP_ITERATIONS = 1_000  # product of nested static loop bounds
MAX_STEPS = 200_000  # evaluated nodes per call
MAX_ELEMENTS = 1 << 20  # elements of any tensor the program creates
MAX_INT = 1 << 53  # Python integers beyond this are refused (no big-integer arithmetic bombs)
MAX_KEYWORD_STRING = 32

TORCH_FUNCTIONS = frozenset(
    """abs exp exp2 expm1 log log1p log2 log10 sigmoid tanh relu sqrt rsqrt square pow clamp clip minimum maximum
    min max where sign mean sum median quantile logsumexp logaddexp softmax log_softmax stack cat zeros_like
    ones_like full_like tensor as_tensor sin cos atan arctan sinh cosh erf erfc logit lerp nan_to_num reciprocal
    neg floor ceil round std var cumsum isnan isfinite isinf clamp_min clamp_max add sub mul div gt lt ge le eq ne
    logical_and logical_or logical_not""".split()
)
FUNCTIONAL_FUNCTIONS = frozenset(
    """logsigmoid softplus relu sigmoid tanh silu gelu elu leaky_relu softmax log_softmax
    binary_cross_entropy_with_logits mse_loss smooth_l1_loss huber_loss""".split()
)
MATH_FUNCTIONS = frozenset("log exp sqrt log1p tanh".split())
TORCH_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}
TENSOR_METHODS = frozenset(
    """mean sum exp log log1p expm1 sigmoid tanh relu abs clamp clip pow sqrt square detach float neg sign
    softmax log_softmax logsumexp min max median std var unsqueeze squeeze flatten size dim numel item
    reciprocal logaddexp lerp where masked_fill nan_to_num cumsum quantile chunk clone reshape view view_as
    contiguous type_as to bool long double int clamp_min clamp_max logit""".split()
)
TENSOR_ATTRIBUTES = frozenset({"shape", "ndim", "device", "dtype"})
TORCH_DTYPES = frozenset("float32 float64 float double bool long int64 int32".split())
KEYWORDS = frozenset(
    """dim keepdim min max beta threshold alpha exponent q reduction other input negative_slope approximate
    nan posinf neginf value interpolation unbiased correction weight pos_weight delta device dtype sep end""".split()
)
MODULE_PATHS = {"torch": "torch", "torch.nn": "torch.nn", "torch.nn.functional": "F", "math": "math"}
MODULE_ATTRIBUTES = {"nn": "torch.nn", "functional": "F"}
ALLOWED_ATTRIBUTES = (
    TORCH_FUNCTIONS
    | FUNCTIONAL_FUNCTIONS
    | MATH_FUNCTIONS
    | TENSOR_METHODS
    | TENSOR_ATTRIBUTES
    | TORCH_DTYPES
    | set(TORCH_CONSTANTS)
    | set(MODULE_ATTRIBUTES)
    | {"beta"}
)
BUILTINS = frozenset({"abs", "min", "max", "float", "int", "len", "sum", "bool", "round", "print"})
STATEMENTS = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Return,
    ast.If,
    ast.For,
    ast.Expr,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Import,
    ast.ImportFrom,
    ast.Assert,
)
EXPRESSIONS = (
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Attribute,
    ast.Name,
    ast.Constant,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.keyword,
)
OPERATORS = (
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
    ast.USub,
    ast.UAdd,
    ast.Not,
    ast.Invert,
    ast.And,
    ast.Or,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
    ast.Load,
    ast.Store,
)

ALLOWED_NODES = (*STATEMENTS, *EXPRESSIONS, *OPERATORS, ast.FunctionDef, ast.arguments, ast.arg, ast.alias)
ANNOTATION_NODES = (ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.Constant, ast.Load, ast.BinOp, ast.BitOr)


class ProgramError(Exception):
    """A proposal the loop does not train; ``status`` is its archive status."""

    status = "invalid"


class InvalidProgram(ProgramError):
    """Malformed, or failed while being evaluated (archive status ``invalid``)."""


class UnsafeProgram(ProgramError):
    """Outside the allowlist, or over a resource limit (archive status ``rejected_unsafe``)."""

    status = "rejected_unsafe"


class ResourceLimit(UnsafeProgram):
    """A run-time limit of the interpreter was hit (steps, tensor size, integer size)."""


def _where(node: ast.AST | None) -> str:
    line = getattr(node, "lineno", None)
    return f"line {line}: " if line else ""


# --- checking -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossProgram:
    """A checked loss function; call it with the four log-probability tensors and ``beta``."""

    name: str
    source: str
    function: ast.FunctionDef = field(repr=False, compare=False)
    aliases: tuple[tuple[str, str], ...] = ()
    has_self: bool = False

    def __call__(self, policy_chosen, policy_rejected, reference_chosen, reference_rejected, *, beta: float):
        """The loss; a returned tuple (TRL's old ``dpo_loss`` returned losses and rewards) counts by its first item."""
        result = Interpreter(self, beta).run((policy_chosen, policy_rejected, reference_chosen, reference_rejected))
        return result[0] if isinstance(result, (tuple, list)) and result else result


def check_program(source: str) -> LossProgram:
    """Parse and check ``source``; never executes it.

    Raises:
        UnsafeProgram: Anything outside the allowlist (the reason names the construct and its line).
        InvalidProgram: Not parseable, not exactly one function of the agreed signature, or no return.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidProgram("the code is empty")
    if len(source) > MAX_CODE_CHARS:
        raise InvalidProgram(f"the code is {len(source)} characters long; at most {MAX_CODE_CHARS} are accepted")
    tree = _parse(source)
    _check_depth(tree)
    aliases = _check_safety(tree)
    function = _check_structure(tree)
    has_self = bool(function.args.args) and function.args.args[0].arg == "self"
    return LossProgram(function.name, source, function, tuple(sorted(aliases.items())), has_self)


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source, mode="exec")
    except SyntaxError as err:
        raise InvalidProgram(f"line {err.lineno}: not valid Python: {err.msg}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as err:
        raise InvalidProgram(f"not valid Python: {type(err).__name__}") from None


def _check_depth(tree: ast.AST) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsafeProgram(f"{_where(node)}expressions nest deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_safety(tree: ast.Module) -> dict[str, str]:
    """Walk every node against the allowlist; returns the module aliases the import lines bind.

    The whole tree is walked before deciding, so a proposal that is both malformed and hostile is reported
    as hostile.

    Raises:
        UnsafeProgram: A name, attribute, call, keyword or import outside the allowlist, a ``_``-name, a loop
            without a static bound (the first such finding is the reason).
        InvalidProgram: Otherwise, syntax the language does not support (classes, lambdas, ``try``, ...).
    """
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            try:
                aliases.update(_import_aliases(node))
            except UnsafeProgram:
                pass  # reported by the walk below
    # Names the program defines itself (assigned names, arguments, function names) are its own business: using
    # one wrongly is a structural error or fails at run time. Every other name must come from the allowlist.
    defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    known = set(SIGNATURE) | {"self", "beta", "torch", "F", "math"} | BUILTINS | set(aliases) | defined
    checker = _SafetyChecker(known, set(aliases) | {"torch", "F", "math"})
    for statement in tree.body:
        checker.visit(statement)
    if checker.unsafe:
        raise UnsafeProgram(checker.unsafe[0])
    if checker.unsupported:
        raise InvalidProgram(checker.unsupported[0])
    return aliases


def _import_aliases(node: ast.Import | ast.ImportFrom) -> dict[str, str]:
    """Names bound by an allowed import line (``import torch``, ``import torch.nn.functional as F``,
    ``from torch.nn import functional as F``, ``import math``); nothing is imported.

    Raises:
        UnsafeProgram: Any other module, a relative import, or an alias that would shadow an argument.
    """
    if isinstance(node, ast.ImportFrom):
        if node.level or (node.module or "") not in MODULE_PATHS:
            raise UnsafeProgram(f"{_where(node)}import from {'.' * node.level}{node.module or ''!r} is not allowed")
        pairs = [(f"{node.module}.{a.name}", a.asname or a.name) for a in node.names]
    else:
        bad = [a.name for a in node.names if a.name not in MODULE_PATHS]
        if bad:
            raise UnsafeProgram(
                f"{_where(node)}import of {bad[0]!r} is not allowed (torch, torch.nn.functional "
                "and math need no import)"
            )
        # `import torch.nn.functional` binds `torch`; `import torch.nn.functional as F` binds `F`
        pairs = [(a.name, a.asname) if a.asname else ((top := a.name.split(".")[0]), top) for a in node.names]
    bound = {}
    for path, name in pairs:
        if path not in MODULE_PATHS:
            raise UnsafeProgram(f"{_where(node)}import of {path!r} is not allowed")
        if name.startswith("_") or name in {*SIGNATURE, "self", "beta"}:
            raise UnsafeProgram(f"{_where(node)}import alias {name!r} is not allowed")
        bound[name] = MODULE_PATHS[path]
    return bound


class _SafetyChecker(ast.NodeVisitor):
    """Collects findings over the whole tree: ``unsafe`` (outside the allowlist: what could reach beyond the
    language or run unbounded) and ``unsupported`` (harmless syntax the language does not have)."""

    def __init__(self, known: set[str], modules: set[str]) -> None:
        self.known, self.modules = known, modules
        self.unsafe: list[str] = []
        self.unsupported: list[str] = []

    def _flag(self, node: ast.AST, message: str, *, unsafe: bool = True) -> None:
        (self.unsafe if unsafe else self.unsupported).append(f"{_where(node)}{message}")

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.While):
            self._flag(node, "while loops are not allowed (loops need a static bound: for ... in range(<literal>))")
        elif not isinstance(node, ALLOWED_NODES):
            self._flag(node, f"{type(node).__name__} is not supported in the loss language", unsafe=False)
        super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Any function, nested or not, is checked here; how many there may be is `_check_structure`'s call."""
        self._check_identifier(node.name, node)
        args = node.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                self._check_identifier(arg.arg, arg)
                if arg.annotation is not None:
                    self._check_annotation(arg.annotation)
        if node.returns is not None:
            self._check_annotation(node.returns)
        for expression in (*node.decorator_list, *args.defaults, *args.kw_defaults):
            if expression is not None:
                self.visit(expression)
        for statement in node.body:
            self.visit(statement)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self._check_target(node.target)
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if node.orelse or not isinstance(node.target, ast.Name):
            self._flag(node, "a for loop needs one name as target and no else clause", unsafe=False)
        try:
            _static_iterations(node.iter)
            if _loop_iterations(node) > MAX_LOOP_ITERATIONS:
                self._flag(node, f"loops run more than {MAX_LOOP_ITERATIONS} iterations in total")
        except ProgramError as err:
            self._flag(node, str(err).removeprefix(_where(node)), unsafe=err.status == "rejected_unsafe")
        if isinstance(node.iter, (ast.Tuple, ast.List)):
            self.visit(node.iter)
        self.visit(node.target)
        for statement in node.body:
            self.visit(statement)

    def visit_Name(self, node: ast.Name) -> None:
        self._check_identifier(node.id, node)
        if isinstance(node.ctx, ast.Store) and node.id in self.modules:
            self._flag(node, f"cannot assign to the module name {node.id!r}", unsafe=False)
        if isinstance(node.ctx, ast.Load) and node.id not in self.known:
            self._flag(node, f"name {node.id!r} is not available in the loss language")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_identifier(node.attr, node)
        if node.attr not in ALLOWED_ATTRIBUTES:
            self._flag(node, f"attribute {node.attr!r} is not in the allowlist")
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            self._flag(node, "range() is only allowed as the bound of a for loop")
        elif not isinstance(node.func, (ast.Name, ast.Attribute)):
            self._flag(node, "only named functions can be called", unsafe=False)
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in KEYWORDS:
                self._flag(node, f"keyword argument {keyword.arg or '**'!r} is not allowed")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and len(value) > MAX_KEYWORD_STRING:
            self._flag(
                node,
                f"string constants longer than {MAX_KEYWORD_STRING} characters are only allowed as the docstring",
                unsafe=False,
            )
        if not isinstance(value, (int, float, bool, str)) and value is not None and value is not Ellipsis:
            self._flag(node, f"constants of type {type(value).__name__} are not supported", unsafe=False)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring or a bare string: never evaluated
        self.visit(node.value)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        try:
            _import_aliases(node)
        except UnsafeProgram as err:
            self.unsafe.append(str(err))

    visit_ImportFrom = visit_Import  # noqa: N815 - NodeVisitor naming

    def _check_identifier(self, name: str, node: ast.AST) -> None:
        if name.startswith("_"):
            self._flag(node, f"names starting with '_' are not allowed ({name!r})")

    def _check_annotation(self, node: ast.AST) -> None:
        """Annotations are never evaluated; they may still only spell names (``torch.FloatTensor``)."""
        for child in ast.walk(node):
            name = getattr(child, "id", None) or getattr(child, "attr", None) or ""
            if name.startswith("_"):
                self._flag(node, f"names starting with '_' are not allowed ({name!r})")
            elif not isinstance(child, ANNOTATION_NODES):
                self._flag(node, f"annotation contains {type(child).__name__}", unsafe=False)

    def _check_target(self, target: ast.AST) -> None:
        """Plain names, or tuples / lists of them (nested), as in ``a, (b, c) = ...``."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for item in target.elts:
                self._check_target(item)
        elif not isinstance(target, ast.Name):
            self._flag(target, "only plain names can be assigned (no attribute or item assignment)", unsafe=False)


def _literal_int(node: ast.AST) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal_int(node.operand)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise UnsafeProgram(f"{_where(node)}range() bounds must be integer literals (a static bound)")


def _static_iterations(node: ast.AST) -> int:
    """Iterations of a loop over ``range(<literals>)`` or over a literal tuple / list."""
    if isinstance(node, (ast.Tuple, ast.List)):
        return len(node.elts)
    is_range = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
    if not is_range or node.keywords or not 1 <= len(node.args) <= 3:  # type: ignore[attr-defined]
        raise UnsafeProgram(f"{_where(node)}a for loop must run over range(<integer literals>)")
    bounds = [_literal_int(a) for a in node.args]  # type: ignore[attr-defined]
    if len(bounds) == 3 and bounds[2] == 0:
        raise InvalidProgram(f"{_where(node)}range() step must not be zero")
    if any(abs(b) > MAX_INT for b in bounds):
        raise UnsafeProgram(f"{_where(node)}range() bound is too large")
    return len(range(*bounds))


def _loop_iterations(loop: ast.For) -> int:
    """Iterations of ``loop`` times the most iterations of the loops nested in its body."""
    inner = [_loop_iterations(n) for n in _direct_loops(loop.body)]
    return _static_iterations(loop.iter) * max(inner, default=1)


def _direct_loops(body: Sequence[ast.stmt]) -> Iterator[ast.For]:
    for statement in body:
        if isinstance(statement, ast.For):
            yield statement
        elif isinstance(statement, ast.If):
            yield from _direct_loops(statement.body)
            yield from _direct_loops(statement.orelse)


def _check_structure(tree: ast.Module) -> ast.FunctionDef:
    """Exactly one function of the agreed signature, at most a docstring and import lines beside it."""
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(functions) != 1:
        raise InvalidProgram(f"the code must define exactly one function, found {len(functions)}")
    extra = [
        n
        for n in tree.body
        if not isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))
        and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    if extra:
        raise InvalidProgram(f"{_where(extra[0])}only the function (and import lines) may be at the top level")
    function = functions[0]
    nested = [n for n in ast.walk(function) if isinstance(n, ast.FunctionDef) and n is not function]
    if nested:
        raise InvalidProgram(f"{_where(nested[0])}the code must be one function: nested functions are not supported")
    if function.decorator_list:
        raise InvalidProgram(f"{_where(function)}decorators are not supported")
    args = function.args
    names = [a.arg for a in args.args]
    names = names[1:] if names[:1] == ["self"] else names
    trailing_beta = names[-1:] == ["beta"] and len(args.defaults) == 1 and _is_number(args.defaults[0])
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or (args.defaults and not trailing_beta):
        raise InvalidProgram(
            f"{_where(function)}the function takes exactly ({', '.join(SIGNATURE)}): no defaults "
            "(but beta=<number>), *args, keyword-only arguments or **kwargs"
        )
    if tuple(names[:-1] if trailing_beta else names) != SIGNATURE:
        raise InvalidProgram(f"the function must take ({', '.join(SIGNATURE)}), got ({', '.join(names)})")
    if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(function)):
        raise InvalidProgram("the function never returns a value")
    return function


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


# --- interpreting ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Module:
    path: str  # "torch", "torch.nn", "F" or "math"


@dataclass(frozen=True)
class _Self:
    beta: float


@dataclass(frozen=True)
class _Callable:
    label: str
    function: Callable[..., Any]


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class Interpreter:
    """Evaluates one checked `LossProgram` call; every value it produces is bounded (`_bounded`)."""

    def __init__(self, program: LossProgram, beta: float) -> None:
        import torch

        self.torch = torch
        self.program, self.beta, self.steps = program, float(beta), 0
        self.env: dict[str, Any] = {
            "torch": _Module("torch"),
            "F": _Module("F"),
            "math": _Module("math"),
            "beta": self.beta,
        }
        self.env.update({name: _Module(path) for name, path in program.aliases})

    def run(self, inputs: Sequence[Any]) -> Any:
        params = [a.arg for a in self.program.function.args.args]
        values = [_Self(self.beta), *inputs] if self.program.has_self else list(inputs)
        values += [self.beta] * (len(params) - len(values))  # a trailing `beta=<default>` gets the run's beta
        self.env.update(zip(params, values, strict=True))
        try:
            self._block(self.program.function.body)
        except _Return as done:
            return done.value
        except (_Break, _Continue):
            raise InvalidProgram("break / continue outside a loop") from None
        raise InvalidProgram("the function ended without returning a value")

    # statements

    def _block(self, body: Sequence[ast.stmt]) -> None:
        for statement in body:
            self._statement(statement)

    def _statement(self, node: ast.stmt) -> None:
        self._tick(node)
        handler = getattr(self, f"_stmt_{type(node).__name__}", None)
        if handler is None:
            raise UnsafeProgram(f"{_where(node)}{type(node).__name__} is not allowed")
        _guarded(handler, node)

    def _stmt_Assign(self, node: ast.Assign) -> None:  # noqa: N802
        value = self._expr(node.value)
        for target in node.targets:
            self._assign(target, value)

    def _stmt_AnnAssign(self, node: ast.AnnAssign) -> None:  # noqa: N802
        if node.value is not None:
            self._assign(node.target, self._expr(node.value))

    def _stmt_AugAssign(self, node: ast.AugAssign) -> None:  # noqa: N802
        name = node.target.id  # type: ignore[attr-defined]
        self.env[name] = self._binary(node.op, self._name(name, node), self._expr(node.value), node)

    def _stmt_Return(self, node: ast.Return) -> None:  # noqa: N802
        raise _Return(None if node.value is None else self._expr(node.value))

    def _stmt_If(self, node: ast.If) -> None:  # noqa: N802
        self._block(node.body if self._truth(self._expr(node.test), node) else node.orelse)

    def _stmt_For(self, node: ast.For) -> None:  # noqa: N802
        items = self._loop_items(node.iter)
        for item in items:
            self.env[node.target.id] = item  # type: ignore[attr-defined]
            try:
                self._block(node.body)
            except _Break:
                break
            except _Continue:
                continue

    def _stmt_Expr(self, node: ast.Expr) -> None:  # noqa: N802
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self._expr(node.value)

    def _stmt_Pass(self, node: ast.Pass) -> None:  # noqa: N802
        return

    def _stmt_Assert(self, node: ast.Assert) -> None:  # noqa: N802
        if not self._truth(self._expr(node.test), node):  # the message is never evaluated
            raise InvalidProgram(f"{_where(node)}assertion failed")

    def _stmt_Break(self, node: ast.Break) -> None:  # noqa: N802
        raise _Break

    def _stmt_Continue(self, node: ast.Continue) -> None:  # noqa: N802
        raise _Continue

    def _stmt_Import(self, node: ast.stmt) -> None:  # noqa: N802
        self.env.update({name: _Module(path) for name, path in _import_aliases(node).items()})  # type: ignore[arg-type]

    _stmt_ImportFrom = _stmt_Import  # noqa: N815

    def _loop_items(self, node: ast.expr) -> list[Any]:
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self._expr(e) for e in node.elts]
        return list(range(*[_literal_int(a) for a in node.args]))  # type: ignore[attr-defined]

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            return
        names = target.elts  # type: ignore[attr-defined]
        try:
            values = list(value)
        except TypeError:
            raise InvalidProgram(f"{_where(target)}cannot unpack {type(value).__name__}") from None
        if len(values) != len(names):
            raise InvalidProgram(f"{_where(target)}cannot unpack {len(values)} values into {len(names)} names")
        for name, item in zip(names, values, strict=True):
            self._assign(name, _bounded(item, target))

    # expressions

    def _expr(self, node: ast.expr) -> Any:
        self._tick(node)
        handler = getattr(self, f"_expr_{type(node).__name__}", None)
        if handler is None:
            raise UnsafeProgram(f"{_where(node)}{type(node).__name__} is not allowed")
        return _bounded(_guarded(handler, node), node)

    def _expr_Constant(self, node: ast.Constant) -> Any:  # noqa: N802
        return node.value

    def _expr_Name(self, node: ast.Name) -> Any:  # noqa: N802
        return self._name(node.id, node)

    def _expr_Tuple(self, node: ast.Tuple) -> Any:  # noqa: N802
        return tuple(self._expr(e) for e in node.elts)

    def _expr_List(self, node: ast.List) -> Any:  # noqa: N802
        return [self._expr(e) for e in node.elts]

    def _expr_BinOp(self, node: ast.BinOp) -> Any:  # noqa: N802
        return self._binary(node.op, self._expr(node.left), self._expr(node.right), node)

    def _expr_UnaryOp(self, node: ast.UnaryOp) -> Any:  # noqa: N802
        value = self._expr(node.operand)
        if isinstance(node.op, ast.Not):
            return not self._truth(value, node)
        _check_numeric(value, node)
        return UNARY[type(node.op)](value)

    def _expr_BoolOp(self, node: ast.BoolOp) -> Any:  # noqa: N802
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for operand in node.values:
            value = self._expr(operand)
            if self._truth(value, node) != is_and:
                return value
        return value

    def _expr_Compare(self, node: ast.Compare) -> Any:  # noqa: N802
        left, result = self._expr(node.left), True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._expr(comparator)
            if not isinstance(op, (ast.Eq, ast.NotEq)):  # equality of any allowed values (shapes, dtypes) is fine
                _check_numeric(left, node), _check_numeric(right, node)
            value = COMPARE[type(op)](left, right)
            if len(node.ops) == 1:
                return value
            result = result and self._truth(value, node)
            left = right
        return result

    def _expr_IfExp(self, node: ast.IfExp) -> Any:  # noqa: N802
        return self._expr(node.body if self._truth(self._expr(node.test), node) else node.orelse)

    def _expr_Subscript(self, node: ast.Subscript) -> Any:  # noqa: N802
        value = self._expr(node.value)
        if not isinstance(value, (self.torch.Tensor, tuple, list)):
            raise InvalidProgram(f"{_where(node)}cannot index {type(value).__name__}")
        index = self._index(node.slice)
        if isinstance(value, self.torch.Tensor):
            _check_index_size(value, index, node)
        return value[index]

    def _index(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self._expr(p) for p in (node.lower, node.upper, node.step)]
            return slice(*parts)
        if isinstance(node, ast.Tuple):
            return tuple(self._index(e) for e in node.elts)
        return self._expr(node)

    def _expr_Attribute(self, node: ast.Attribute) -> Any:  # noqa: N802
        return self._attribute(self._expr(node.value), node.attr, node)

    def _expr_Call(self, node: ast.Call) -> Any:  # noqa: N802
        function = self._expr(node.func)
        if not isinstance(function, _Callable):
            raise InvalidProgram(f"{_where(node)}{type(function).__name__} is not callable")
        args = [self._expr(a) for a in node.args]
        kwargs = {k.arg: self._expr(k.value) for k in node.keywords}
        _check_output_size([*args, *kwargs.values()], node)
        return function.function(*args, **kwargs)

    # helpers

    def _tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ResourceLimit(f"{_where(node)}evaluation took more than {MAX_STEPS} steps")

    def _name(self, name: str, node: ast.AST) -> Any:
        if name in self.env:
            return self.env[name]
        if name in BUILTINS:
            return _Callable(name, _builtin(name))
        raise InvalidProgram(f"{_where(node)}name {name!r} is used before it is assigned")

    def _attribute(self, value: Any, attr: str, node: ast.AST) -> Any:
        torch = self.torch
        if isinstance(value, _Module):
            return self._module_attribute(value.path, attr, node)
        if isinstance(value, _Self) and attr == "beta":
            return value.beta
        if isinstance(value, torch.Tensor) and attr in TENSOR_METHODS:
            return _Callable(f"Tensor.{attr}", getattr(value, attr))
        if isinstance(value, torch.Tensor) and attr in TENSOR_ATTRIBUTES:
            return getattr(value, attr)
        raise InvalidProgram(f"{_where(node)}{type(value).__name__} has no allowed attribute {attr!r}")

    def _module_attribute(self, path: str, attr: str, node: ast.AST) -> Any:
        torch = self.torch
        if path in ("torch", "torch.nn") and attr in MODULE_ATTRIBUTES and (path == "torch") == (attr == "nn"):
            return _Module(MODULE_ATTRIBUTES[attr])
        if path == "torch" and attr in TORCH_FUNCTIONS:
            return _Callable(f"torch.{attr}", _torch_function(torch, attr))
        if path == "torch" and attr in TORCH_CONSTANTS:
            return TORCH_CONSTANTS[attr]
        if path == "torch" and attr in TORCH_DTYPES:
            return getattr(torch, attr)
        if path == "F" and attr in FUNCTIONAL_FUNCTIONS:
            return _Callable(f"F.{attr}", getattr(torch.nn.functional, attr))
        if path == "math" and attr in MATH_FUNCTIONS:
            return _Callable(f"math.{attr}", getattr(math, attr))
        if path == "math" and attr in MATH_CONSTANTS:
            return MATH_CONSTANTS[attr]
        raise InvalidProgram(f"{_where(node)}{path}.{attr} is not in the allowlist")

    def _binary(self, op: ast.operator, left: Any, right: Any, node: ast.AST) -> Any:
        _check_numeric(left, node), _check_numeric(right, node)
        if type(op) not in BINARY:
            raise UnsafeProgram(f"{_where(node)}operator {type(op).__name__} is not allowed")
        if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
            exact = 0 <= right <= 64 and abs(float(left)) ** right <= MAX_INT
            left = left if exact else float(left)  # large integer powers in floating point: no big-integer bombs
        _check_output_size([left, right], node)
        return BINARY[type(op)](left, right)

    def _truth(self, value: Any, node: ast.AST) -> bool:
        if isinstance(value, self.torch.Tensor) and value.numel() != 1:
            raise InvalidProgram(
                f"{_where(node)}the truth value of a tensor with {value.numel()} elements is "
                "ambiguous (use torch.where)"
            )
        return bool(value)


def _guarded(handler: Callable[[Any], Any], node: ast.AST) -> Any:
    """Run one statement or expression; any error in it becomes the program's error, never the loop's."""
    try:
        return handler(node)
    except (ProgramError, _Return, _Break, _Continue):
        raise
    except MemoryError:
        raise ResourceLimit(f"{_where(node)}out of memory") from None
    except RuntimeError as err:
        if "allocate" in str(err):  # torch's allocator failing under the sandbox's address-space limit
            raise ResourceLimit(f"{_where(node)}out of memory: {_first_line(err)}") from None
        raise InvalidProgram(f"{_where(node)}{type(err).__name__}: {_first_line(err)}") from None
    except Exception as err:  # torch and arithmetic errors: the program is wrong, not the loop
        raise InvalidProgram(f"{_where(node)}{type(err).__name__}: {_first_line(err)}") from None


def _check_numeric(value: Any, node: ast.AST) -> None:
    import torch

    if isinstance(value, (int, float, torch.Tensor)):
        return
    raise InvalidProgram(f"{_where(node)}arithmetic on {type(value).__name__} is not supported")


def _bounded(value: Any, node: ast.AST) -> Any:
    """Refuse values over the resource limits (the interpreter checks every value it produces)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_ELEMENTS:
            raise ResourceLimit(
                f"{_where(node)}a tensor of {value.numel()} elements exceeds the limit of {MAX_ELEMENTS}"
            )
        if value.is_complex():
            raise InvalidProgram(f"{_where(node)}complex tensors are not supported")
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int) and abs(value) > MAX_INT:
        raise ResourceLimit(f"{_where(node)}an integer beyond 2**53 exceeds the limit")
    elif isinstance(value, (tuple, list)):
        if len(value) > MAX_ELEMENTS:
            raise ResourceLimit(f"{_where(node)}a sequence of {len(value)} items exceeds the limit")
        for item in value:
            _bounded(item, node)
    elif not isinstance(
        value, (int, float, str, _Module, _Self, _Callable, type(Ellipsis), torch.dtype, torch.device)
    ):
        raise InvalidProgram(f"{_where(node)}values of type {type(value).__name__} are not supported")
    return value


def _tensors(values: Sequence[Any]) -> Iterator[Any]:
    import torch

    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (tuple, list)):
            yield from _tensors(value)


def _check_output_size(arguments: Sequence[Any], node: ast.AST) -> None:
    """Refuse an operation *before* it allocates more than `MAX_ELEMENTS`: broadcasting the arguments (or
    concatenating them, when they do not broadcast) bounds the size of every allowlisted operation's output."""
    import torch

    shapes = [t.shape for t in _tensors(arguments)]
    if len(shapes) < 2:
        return
    try:
        size = math.prod(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        size = sum(math.prod(s) for s in shapes)
    if size > MAX_ELEMENTS:
        raise ResourceLimit(f"{_where(node)}the result would have {size} elements, over the limit of {MAX_ELEMENTS}")


def _check_index_size(value: Any, index: Any, node: ast.AST) -> None:
    """Indexing with a tensor gathers at most (index elements) x (value elements)."""
    parts = index if isinstance(index, tuple) else (index,)
    gathered = sum(t.numel() for t in _tensors(parts))
    if gathered and gathered * value.numel() > MAX_ELEMENTS:
        raise ResourceLimit(
            f"{_where(node)}indexing would gather up to {gathered * value.numel()} elements, over "
            f"the limit of {MAX_ELEMENTS}"
        )


def _torch_function(torch: Any, name: str) -> Callable[..., Any]:
    if name not in ("tensor", "as_tensor"):
        return getattr(torch, name)

    def tensor(data: Any, **kwargs: Any) -> Any:  # no dtype / device / requires_grad keywords reach torch
        return torch.tensor(data, dtype=torch.float32)

    return tensor


def _builtin(name: str) -> Callable[..., Any]:
    functions: dict[str, Callable[..., Any]] = {
        "abs": abs,
        "min": min,
        "max": max,
        "float": float,
        "int": int,
        "len": len,
        "sum": sum,
        "bool": bool,
        "round": round,
        "print": lambda *args, **kwargs: None,
    }
    return functions[name]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
