"""The loss language's checker: a proposal's text parsed with `ast` and walked against the allowlist, never
executed; the result is a `LossProgram`, which the interpreter evaluates."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from limo.training.loss_language.grammar import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_NODES,
    ANNOTATION_NODES,
    BUILTINS,
    KEYWORDS,
    MAX_CODE_CHARS,
    MAX_DEPTH,
    MAX_INT,
    MAX_KEYWORD_STRING,
    MAX_LOOP_ITERATIONS,
    SIGNATURE,
    InvalidProgram,
    ProgramError,
    UnsafeProgram,
    at_line,
    import_aliases,
    literal_int,
)
from limo.training.loss_language.interpreter import LossProgram


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
            raise UnsafeProgram(f"{at_line(node)}expressions nest deeper than {MAX_DEPTH} levels")
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
                aliases.update(import_aliases(node))
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


class _SafetyChecker(ast.NodeVisitor):
    """Collects findings over the whole tree: ``unsafe`` (outside the allowlist: what could reach beyond the
    language or run unbounded) and ``unsupported`` (harmless syntax the language does not have)."""

    def __init__(self, known: set[str], modules: set[str]) -> None:
        self.known, self.modules = known, modules
        self.unsafe: list[str] = []
        self.unsupported: list[str] = []

    def _flag(self, node: ast.AST, message: str, *, unsafe: bool = True) -> None:
        (self.unsafe if unsafe else self.unsupported).append(f"{at_line(node)}{message}")

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
            self._flag(node, str(err).removeprefix(at_line(node)), unsafe=err.status == "rejected_unsafe")
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
            import_aliases(node)
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


def _static_iterations(node: ast.AST) -> int:
    """Iterations of a loop over ``range(<literals>)`` or over a literal tuple / list."""
    if isinstance(node, (ast.Tuple, ast.List)):
        return len(node.elts)
    is_range = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
    if not is_range or node.keywords or not 1 <= len(node.args) <= 3:  # type: ignore[attr-defined]
        raise UnsafeProgram(f"{at_line(node)}a for loop must run over range(<integer literals>)")
    bounds = [literal_int(a) for a in node.args]  # type: ignore[attr-defined]
    if len(bounds) == 3 and bounds[2] == 0:
        raise InvalidProgram(f"{at_line(node)}range() step must not be zero")
    if any(abs(b) > MAX_INT for b in bounds):
        raise UnsafeProgram(f"{at_line(node)}range() bound is too large")
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
        raise InvalidProgram(f"{at_line(extra[0])}only the function (and import lines) may be at the top level")
    function = functions[0]
    nested = [n for n in ast.walk(function) if isinstance(n, ast.FunctionDef) and n is not function]
    if nested:
        raise InvalidProgram(f"{at_line(nested[0])}the code must be one function: nested functions are not supported")
    if function.decorator_list:
        raise InvalidProgram(f"{at_line(function)}decorators are not supported")
    args = function.args
    names = [a.arg for a in args.args]
    names = names[1:] if names[:1] == ["self"] else names
    trailing_beta = names[-1:] == ["beta"] and len(args.defaults) == 1 and _is_number(args.defaults[0])
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or (args.defaults and not trailing_beta):
        raise InvalidProgram(
            f"{at_line(function)}the function takes exactly ({', '.join(SIGNATURE)}): no defaults "
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
