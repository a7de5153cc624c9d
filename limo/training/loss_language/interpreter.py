"""The loss language's interpreter: a checked program (`LossProgram`, what the checker returns) is evaluated on tensors
by a small tree walker; every value it produces is bounded, and every operation is checked before it allocates."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from limo.training.loss_language.grammar import (
    BUILTINS,
    FUNCTIONAL_FUNCTIONS,
    MATH_CONSTANTS,
    MATH_FUNCTIONS,
    MAX_ELEMENTS,
    MAX_INT,
    MAX_STEPS,
    MODULE_ATTRIBUTES,
    TENSOR_ATTRIBUTES,
    TENSOR_METHODS,
    TORCH_CONSTANTS,
    TORCH_DTYPES,
    TORCH_FUNCTIONS,
    InvalidProgram,
    ProgramError,
    ResourceLimit,
    UnsafeProgram,
    at_line,
    import_aliases,
    literal_int,
)


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
            raise UnsafeProgram(f"{at_line(node)}{type(node).__name__} is not allowed")
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
            raise InvalidProgram(f"{at_line(node)}assertion failed")

    def _stmt_Break(self, node: ast.Break) -> None:  # noqa: N802
        raise _Break

    def _stmt_Continue(self, node: ast.Continue) -> None:  # noqa: N802
        raise _Continue

    def _stmt_Import(self, node: ast.stmt) -> None:  # noqa: N802
        self.env.update({name: _Module(path) for name, path in import_aliases(node).items()})  # type: ignore[arg-type]

    _stmt_ImportFrom = _stmt_Import  # noqa: N815

    def _loop_items(self, node: ast.expr) -> list[Any]:
        if isinstance(node, (ast.Tuple, ast.List)):
            return [self._expr(e) for e in node.elts]
        return list(range(*[literal_int(a) for a in node.args]))  # type: ignore[attr-defined]

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            return
        names = target.elts  # type: ignore[attr-defined]
        try:
            values = list(value)
        except TypeError:
            raise InvalidProgram(f"{at_line(target)}cannot unpack {type(value).__name__}") from None
        if len(values) != len(names):
            raise InvalidProgram(f"{at_line(target)}cannot unpack {len(values)} values into {len(names)} names")
        for name, item in zip(names, values, strict=True):
            self._assign(name, _bounded(item, target))

    # expressions

    def _expr(self, node: ast.expr) -> Any:
        self._tick(node)
        handler = getattr(self, f"_expr_{type(node).__name__}", None)
        if handler is None:
            raise UnsafeProgram(f"{at_line(node)}{type(node).__name__} is not allowed")
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
            raise InvalidProgram(f"{at_line(node)}cannot index {type(value).__name__}")
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
            raise InvalidProgram(f"{at_line(node)}{type(function).__name__} is not callable")
        args = [self._expr(a) for a in node.args]
        kwargs = {k.arg: self._expr(k.value) for k in node.keywords}
        _check_output_size([*args, *kwargs.values()], node)
        return function.function(*args, **kwargs)

    # helpers

    def _tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ResourceLimit(f"{at_line(node)}evaluation took more than {MAX_STEPS} steps")

    def _name(self, name: str, node: ast.AST) -> Any:
        if name in self.env:
            return self.env[name]
        if name in BUILTINS:
            return _Callable(name, _builtin(name))
        raise InvalidProgram(f"{at_line(node)}name {name!r} is used before it is assigned")

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
        raise InvalidProgram(f"{at_line(node)}{type(value).__name__} has no allowed attribute {attr!r}")

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
        raise InvalidProgram(f"{at_line(node)}{path}.{attr} is not in the allowlist")

    def _binary(self, op: ast.operator, left: Any, right: Any, node: ast.AST) -> Any:
        _check_numeric(left, node), _check_numeric(right, node)
        if type(op) not in BINARY:
            raise UnsafeProgram(f"{at_line(node)}operator {type(op).__name__} is not allowed")
        if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int):
            exact = 0 <= right <= 64 and abs(float(left)) ** right <= MAX_INT
            left = left if exact else float(left)  # large integer powers in floating point: no big-integer bombs
        _check_output_size([left, right], node)
        return BINARY[type(op)](left, right)

    def _truth(self, value: Any, node: ast.AST) -> bool:
        if isinstance(value, self.torch.Tensor) and value.numel() != 1:
            raise InvalidProgram(
                f"{at_line(node)}the truth value of a tensor with {value.numel()} elements is "
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
        raise ResourceLimit(f"{at_line(node)}out of memory") from None
    except RuntimeError as err:
        if "allocate" in str(err):  # torch's allocator failing under the sandbox's address-space limit
            raise ResourceLimit(f"{at_line(node)}out of memory: {_first_line(err)}") from None
        raise InvalidProgram(f"{at_line(node)}{type(err).__name__}: {_first_line(err)}") from None
    except Exception as err:  # torch and arithmetic errors: the program is wrong, not the loop
        raise InvalidProgram(f"{at_line(node)}{type(err).__name__}: {_first_line(err)}") from None


def _check_numeric(value: Any, node: ast.AST) -> None:
    import torch

    if isinstance(value, (int, float, torch.Tensor)):
        return
    raise InvalidProgram(f"{at_line(node)}arithmetic on {type(value).__name__} is not supported")


def _bounded(value: Any, node: ast.AST) -> Any:
    """Refuse values over the resource limits (the interpreter checks every value it produces)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_ELEMENTS:
            raise ResourceLimit(
                f"{at_line(node)}a tensor of {value.numel()} elements exceeds the limit of {MAX_ELEMENTS}"
            )
        if value.is_complex():
            raise InvalidProgram(f"{at_line(node)}complex tensors are not supported")
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int) and abs(value) > MAX_INT:
        raise ResourceLimit(f"{at_line(node)}an integer beyond 2**53 exceeds the limit")
    elif isinstance(value, (tuple, list)):
        if len(value) > MAX_ELEMENTS:
            raise ResourceLimit(f"{at_line(node)}a sequence of {len(value)} items exceeds the limit")
        for item in value:
            _bounded(item, node)
    elif not isinstance(
        value, (int, float, str, _Module, _Self, _Callable, type(Ellipsis), torch.dtype, torch.device)
    ):
        raise InvalidProgram(f"{at_line(node)}values of type {type(value).__name__} are not supported")
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
        raise ResourceLimit(f"{at_line(node)}the result would have {size} elements, over the limit of {MAX_ELEMENTS}")


def _check_index_size(value: Any, index: Any, node: ast.AST) -> None:
    """Indexing with a tensor gathers at most (index elements) x (value elements)."""
    parts = index if isinstance(index, tuple) else (index,)
    gathered = sum(t.numel() for t in _tensors(parts))
    if gathered and gathered * value.numel() > MAX_ELEMENTS:
        raise ResourceLimit(
            f"{at_line(node)}indexing would gather up to {gathered * value.numel()} elements, over "
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
