"""The loss language's grammar: its allowlists, limits and errors, and the two syntax readings the checker and the
interpreter share (import lines, integer literals). See `limo.training.loss_language` for the language."""

from __future__ import annotations

import ast
import math

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


def at_line(node: ast.AST | None) -> str:
    line = getattr(node, "lineno", None)
    return f"line {line}: " if line else ""


def import_aliases(node: ast.Import | ast.ImportFrom) -> dict[str, str]:
    """Names bound by an allowed import line (``import torch``, ``import torch.nn.functional as F``,
    ``from torch.nn import functional as F``, ``import math``); nothing is imported.

    Raises:
        UnsafeProgram: Any other module, a relative import, or an alias that would shadow an argument.
    """
    if isinstance(node, ast.ImportFrom):
        if node.level or (node.module or "") not in MODULE_PATHS:
            raise UnsafeProgram(f"{at_line(node)}import from {'.' * node.level}{node.module or ''!r} is not allowed")
        pairs = [(f"{node.module}.{a.name}", a.asname or a.name) for a in node.names]
    else:
        bad = [a.name for a in node.names if a.name not in MODULE_PATHS]
        if bad:
            raise UnsafeProgram(
                f"{at_line(node)}import of {bad[0]!r} is not allowed (torch, torch.nn.functional "
                "and math need no import)"
            )
        # `import torch.nn.functional` binds `torch`; `import torch.nn.functional as F` binds `F`
        pairs = [(a.name, a.asname) if a.asname else ((top := a.name.split(".")[0]), top) for a in node.names]
    bound = {}
    for path, name in pairs:
        if path not in MODULE_PATHS:
            raise UnsafeProgram(f"{at_line(node)}import of {path!r} is not allowed")
        if name.startswith("_") or name in {*SIGNATURE, "self", "beta"}:
            raise UnsafeProgram(f"{at_line(node)}import alias {name!r} is not allowed")
        bound[name] = MODULE_PATHS[path]
    return bound


def literal_int(node: ast.AST) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -literal_int(node.operand)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise UnsafeProgram(f"{at_line(node)}range() bounds must be integer literals (a static bound)")
