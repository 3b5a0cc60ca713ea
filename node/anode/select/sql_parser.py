"""Recursive-descent (Pratt) parser for the S3 Select SQL dialect, producing `ast.Query`.

A hand-written parser rather than a grammar library: the dialect is small, no dependency is
needed, and each failure point can name the precise AWS error code (``ParseExpectedExpression``,
``ParseUnexpectedToken``, ...), which clients and tests rely on.
"""

from __future__ import annotations

import dataclasses

from . import ast
from .errors import SelectError
from .sql_lexer import Token, tokenize

MAX_EXPRESSION_BYTES = 256 * 1024  # AWS: the SQL expression may be at most 256 KB
# Parsing, compiling and evaluating recurse once per level of an expression, so its depth must
# stay well inside Python's recursion limit (1000 frames): at most MAX_NESTING levels of
# parentheses, calls, CASE, NOT and signs, and MAX_DEPTH levels in all (chains like
# `a OR b OR c ...` add a level per operator). Deeper: 400 UnsupportedSqlStructure, not a 500.
MAX_NESTING = 100
MAX_DEPTH = 250

AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})
# name -> (min args, max args); None = unbounded
SCALAR_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "CHAR_LENGTH": (1, 1),
    "CHARACTER_LENGTH": (1, 1),
    "SUBSTRING": (2, 3),
    "TRIM": (3, 3),  # (target, mode, chars) after parsing
    "COALESCE": (1, None),
    "NULLIF": (2, 2),
    "UTCNOW": (0, 0),
    "TO_STRING": (2, 2),
    "TO_TIMESTAMP": (1, 1),
    "DATE_ADD": (3, 3),
    "DATE_DIFF": (3, 3),
}
DATE_PARTS = frozenset({"YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"})
EXTRACT_PARTS = DATE_PARTS | {"TIMEZONE_HOUR", "TIMEZONE_MINUTE"}
CAST_TYPES = {
    "BOOL": "BOOL", "BOOLEAN": "BOOL", "INT": "INT", "INTEGER": "INT", "BIGINT": "INT",
    "SMALLINT": "INT", "STRING": "STRING", "VARCHAR": "STRING", "CHAR": "STRING",
    "FLOAT": "FLOAT", "REAL": "FLOAT", "DOUBLE": "FLOAT", "DECIMAL": "DECIMAL",
    "NUMERIC": "DECIMAL", "TIMESTAMP": "TIMESTAMP",
}  # fmt: skip
_UNSUPPORTED_CLAUSES = frozenset({"GROUP", "ORDER", "HAVING", "JOIN", "UNION", "OFFSET"})
_UNSUPPORTED_STATEMENTS = frozenset({"INSERT", "UPDATE", "DELETE", "CREATE", "DROP"})

# binding powers
_BP_OR, _BP_AND, _BP_NOT, _BP_CMP, _BP_CONCAT, _BP_ADD, _BP_MUL, _BP_UNARY = range(1, 9)
_BINARY_OPS = {
    "OR": _BP_OR, "AND": _BP_AND,
    "=": _BP_CMP, "<>": _BP_CMP, "<": _BP_CMP, "<=": _BP_CMP, ">": _BP_CMP, ">=": _BP_CMP,
    "||": _BP_CONCAT, "+": _BP_ADD, "-": _BP_ADD, "*": _BP_MUL, "/": _BP_MUL, "%": _BP_MUL,
}  # fmt: skip


def parse(expression: str) -> ast.Query:
    """Parse a complete S3 Select statement, raising `SelectError` with the AWS code on failure."""
    if len(expression.encode()) > MAX_EXPRESSION_BYTES:
        raise SelectError("ExpressionTooLong")
    query = _Parser(tokenize(expression)).query()
    return _resolve_alias(query)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.nesting = 0

    # -- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def accept(self, kind: str, value: object = None) -> Token | None:
        if self.tok.is_(kind, value):
            return self.advance()
        return None

    def expect(self, kind: str, value: object, code: str) -> Token:
        tok = self.accept(kind, value)
        if tok is None:
            raise self.error(code, f"expected {value or kind}")
        return tok

    def error(self, code: str, what: str) -> SelectError:
        tok = self.tok
        found = "end of expression" if tok.kind == "EOF" else repr(tok.value)
        return SelectError(code, f"{what}, found {found} at position {tok.pos}")

    def accept_word(self, *words: str) -> str | None:
        """Accept a non-reserved word (an IDENT) case-insensitively, e.g. FOR, LEADING."""
        tok = self.tok
        if tok.kind == "IDENT" and str(tok.value).upper() in words:
            self.advance()
            return str(tok.value).upper()
        return None

    # -- statement -----------------------------------------------------------------------------
    def query(self) -> ast.Query:
        if self.tok.kind == "IDENT" and str(self.tok.value).upper() in _UNSUPPORTED_STATEMENTS:
            raise SelectError("UnsupportedSqlOperation", f"{self.tok.value} is not supported")
        self.expect("KEYWORD", "SELECT", "ParseUnexpectedToken")
        if self.tok.is_("KEYWORD", "FROM") or self.tok.kind == "EOF":
            raise self.error("ParseEmptySelect", "empty SELECT list")
        items, star = self.select_list()
        if not self.accept("KEYWORD", "FROM"):
            if self.tok.kind == "EOF":
                raise self.error("ParseSelectMissingFrom", "expected FROM")
            raise self.error("ParseUnexpectedToken", "expected FROM")
        from_path = self.from_source()
        alias = "s3object"
        if self.accept("KEYWORD", "AS") or (
            self.tok.kind in ("IDENT", "QIDENT") and not self._at_unsupported_clause()
        ):
            alias = self.alias_name()
        where = None
        if self.accept("KEYWORD", "WHERE"):
            where = self.expr(0)
        limit = None
        if self.accept("KEYWORD", "LIMIT"):
            negative = bool(self.accept("OP", "-"))
            tok = self.tok
            if tok.kind != "NUMBER" or not isinstance(tok.value, int):
                raise self.error("ParseExpectedNumber", "expected an integer after LIMIT")
            self.advance()
            if negative:
                raise SelectError("EvaluatorNegativeLimit")
            limit = int(tok.value)
        if self._at_unsupported_clause():
            raise SelectError("UnsupportedSqlOperation", f"{self.tok.value} is not supported")
        if self.tok.kind != "EOF":
            raise self.error("ParseUnexpectedToken", "unexpected token")
        for root in [*(item.expr for item in items), where]:
            if root is not None and _depth(root) > MAX_DEPTH:
                raise SelectError(
                    "UnsupportedSqlStructure", f"expressions nest at most {MAX_DEPTH} levels"
                )
        return _check_aggregates(
            ast.Query(
                items=() if star else tuple(items),
                from_path=from_path,
                alias=alias,
                where=where,
                limit=limit,
            )
        )

    def _at_unsupported_clause(self) -> bool:
        tok = self.tok
        return tok.kind == "IDENT" and str(tok.value).upper() in _UNSUPPORTED_CLAUSES

    def alias_name(self) -> str:
        tok = self.tok
        if tok.kind == "IDENT":
            self.advance()
            return str(tok.value).lower()
        if tok.kind == "QIDENT":
            self.advance()
            return str(tok.value)
        raise self.error("ParseExpectedIdentForAlias", "expected an alias")

    def select_list(self) -> tuple[list[ast.SelectItem], bool]:
        items: list[ast.SelectItem] = []
        star = False
        while True:
            if self.tok.is_("OP", "*") or self._at_alias_star():
                if items or star:
                    raise self.error("ParseAsteriskIsNotAloneInSelectList", "* must be alone")
                self.i += 3 if not self.tok.is_("OP", "*") else 1
                star = True
            else:
                if star:
                    raise self.error("ParseAsteriskIsNotAloneInSelectList", "* must be alone")
                expr = self.expr(0)
                alias = None
                if self.accept("KEYWORD", "AS") or self.tok.kind in ("IDENT", "QIDENT"):
                    alias = self._item_alias()
                items.append(ast.SelectItem(expr, alias))
            if not self.accept("PUNCT", ","):
                return items, star

    def _item_alias(self) -> str:
        tok = self.tok
        if tok.kind in ("IDENT", "QIDENT"):
            self.advance()
            return str(tok.value)
        raise self.error("ParseExpectedIdentForAlias", "expected an alias")

    def _at_alias_star(self) -> bool:
        t = self.tokens
        return (
            t[self.i].kind in ("IDENT", "QIDENT")
            and t[self.i + 1].is_("PUNCT", ".")
            and t[self.i + 2].is_("OP", "*")
        )

    def from_source(self) -> tuple[ast.PathStep, ...]:
        tok = self.tok
        if tok.kind == "EOF":
            raise self.error("ParseExpectedExpression", "expected S3Object after FROM")
        if tok.kind not in ("IDENT", "QIDENT") or str(tok.value).lower() != "s3object":
            if tok.kind == "KEYWORD":
                raise self.error("ParseUnexpectedKeyword", "expected S3Object")
            raise self.error("ParseUnexpectedTerm", "the data source must be S3Object")
        self.advance()
        steps = self.path_steps(allow_wildcard=True)
        if steps and steps[0].wildcard:  # S3Object[*] means each top-level record
            steps = steps[1:]
        if self.accept("PUNCT", ","):
            raise SelectError("MultipleDataSourcesUnsupported")
        return steps

    def path_steps(self, *, allow_wildcard: bool) -> tuple[ast.PathStep, ...]:
        steps: list[ast.PathStep] = []
        while True:
            if self.accept("PUNCT", "."):
                tok = self.advance()
                if tok.kind == "IDENT":
                    steps.append(ast.PathStep(name=str(tok.value)))
                elif tok.kind == "QIDENT":
                    steps.append(ast.PathStep(name=str(tok.value), quoted=True))
                elif tok.kind == "KEYWORD":
                    steps.append(ast.PathStep(name=str(tok.value)))
                else:
                    self.i -= 1
                    raise self.error("ParseInvalidPathComponent", "expected a field name")
            elif self.accept("PUNCT", "["):
                tok = self.advance()
                if tok.is_("OP", "*"):
                    if not allow_wildcard:
                        self.i -= 1
                        raise self.error("ParseInvalidPathComponent", "[*] not allowed here")
                    steps.append(ast.PathStep(wildcard=True))
                elif tok.kind == "NUMBER" and isinstance(tok.value, int):
                    steps.append(ast.PathStep(index=tok.value))
                elif tok.kind == "STRING":
                    steps.append(ast.PathStep(name=str(tok.value), quoted=True))
                else:
                    self.i -= 1
                    raise self.error("ParseInvalidPathComponent", "invalid path component")
                self.expect("PUNCT", "]", "ParseExpectedTokenType")
            else:
                return tuple(steps)

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, min_bp: int) -> ast.Node:
        if self.nesting >= MAX_NESTING:
            raise self.error(
                "UnsupportedSqlStructure", f"expressions nest at most {MAX_NESTING} levels"
            )
        self.nesting += 1
        try:
            return self._expr(min_bp)
        finally:
            self.nesting -= 1

    def _expr(self, min_bp: int) -> ast.Node:
        left = self.prefix()
        while True:
            tok = self.tok
            negated = False
            if tok.is_("KEYWORD", "NOT") and min_bp < _BP_CMP:
                nxt = self.tokens[self.i + 1]
                if nxt.kind == "KEYWORD" and nxt.value in ("IN", "BETWEEN", "LIKE"):
                    self.advance()
                    negated = True
                    tok = self.tok
            if tok.kind == "KEYWORD" and tok.value in ("IN", "BETWEEN", "LIKE", "IS"):
                if min_bp >= _BP_CMP:
                    return left
                self.advance()
                left = self.postfix_predicate(str(tok.value), left, negated)
                continue
            op = tok.value if tok.kind in ("OP", "KEYWORD") else None
            bp = _BINARY_OPS.get(op) if isinstance(op, str) else None
            if bp is None or bp <= min_bp:
                return left
            self.advance()
            right = self.expr(bp)
            left = ast.Binary(str(op), left, right)

    def postfix_predicate(self, word: str, left: ast.Node, negated: bool) -> ast.Node:
        if word == "IS":
            neg = bool(self.accept("KEYWORD", "NOT"))
            if self.accept("KEYWORD", "NULL"):
                return ast.IsCheck(left, "NULL", neg)
            if self.accept("KEYWORD", "MISSING"):
                return ast.IsCheck(left, "MISSING", neg)
            raise self.error("ParseExpected2TokenTypes", "expected NULL or MISSING after IS")
        if word == "BETWEEN":
            low = self.expr(_BP_CMP)
            self.expect("KEYWORD", "AND", "ParseExpectedKeyword")
            high = self.expr(_BP_CMP)
            return ast.Between(left, low, high, negated)
        if word == "LIKE":
            pattern = self.expr(_BP_CMP)
            escape = self.expr(_BP_CMP) if self.accept("KEYWORD", "ESCAPE") else None
            return ast.Like(left, pattern, escape, negated)
        # IN
        self.expect("PUNCT", "(", "ParseExpectedTokenType")
        items = [self.expr(0)]
        while self.accept("PUNCT", ","):
            items.append(self.expr(0))
        self.expect("PUNCT", ")", "ParseExpectedTokenType")
        return ast.InList(left, tuple(items), negated)

    def prefix(self) -> ast.Node:
        tok = self.tok
        kind, value = tok.kind, tok.value
        if kind == "NUMBER" or kind == "STRING":
            self.advance()
            return ast.Literal(value)
        if kind == "ION":
            self.advance()
            from .values import parse_timestamp

            try:
                return ast.Literal(parse_timestamp(str(value)))
            except ValueError as exc:
                raise SelectError("LexerInvalidIONLiteral", f"invalid ION {value!r}") from exc
        if kind == "OP" and value in ("-", "+"):
            self.advance()
            operand = self.expr(_BP_UNARY)
            if value == "-" and isinstance(operand, ast.Literal) and _is_number(operand.value):
                return ast.Literal(-operand.value)
            return ast.Unary(str(value), operand)
        if kind == "PUNCT" and value == "(":
            self.advance()
            inner = self.expr(0)
            self.expect("PUNCT", ")", "ParseExpectedTokenType")
            return inner
        if kind == "KEYWORD":
            return self.keyword_prefix(str(value))
        if kind == "IDENT":
            nxt = self.tokens[self.i + 1]
            if nxt.is_("PUNCT", "("):
                return self.call(str(value).upper())
            self.advance()
            first = ast.PathStep(name=str(value))
            return ast.Path((first, *self.path_steps(allow_wildcard=False)))
        if kind == "QIDENT":
            self.advance()
            first = ast.PathStep(name=str(value), quoted=True)
            return ast.Path((first, *self.path_steps(allow_wildcard=False)))
        if kind == "EOF":
            raise self.error("ParseExpectedExpression", "expected an expression")
        if kind == "OP":
            raise self.error("ParseUnexpectedOperator", "unexpected operator")
        raise self.error("ParseUnexpectedToken", "unexpected token")

    def keyword_prefix(self, word: str) -> ast.Node:
        if word == "NOT":
            self.advance()
            return ast.Unary("NOT", self.expr(_BP_NOT))
        if word in ("NULL", "MISSING", "TRUE", "FALSE"):
            self.advance()
            constants = {"NULL": None, "MISSING": ast.MISSING, "TRUE": True, "FALSE": False}
            return ast.Literal(constants[word])
        if word == "CASE":
            self.advance()
            return self.case()
        if word == "CAST":
            self.advance()
            return self.cast()
        raise self.error("ParseUnexpectedKeyword", "unexpected keyword")

    def case(self) -> ast.Node:
        at_clause = self.tok.kind == "KEYWORD" and self.tok.value in ("WHEN", "END", "ELSE")
        operand = None if at_clause else self.expr(0)
        whens: list[tuple[ast.Node, ast.Node]] = []
        while self.accept("KEYWORD", "WHEN"):
            cond = self.expr(0)
            self.expect("KEYWORD", "THEN", "ParseExpectedKeyword")
            whens.append((cond, self.expr(0)))
        if not whens:
            raise self.error("ParseExpectedWhenClause", "expected WHEN")
        default = self.expr(0) if self.accept("KEYWORD", "ELSE") else None
        self.expect("KEYWORD", "END", "ParseExpectedKeyword")
        return ast.Case(operand, tuple(whens), default)

    def cast(self) -> ast.Node:
        self.expect("PUNCT", "(", "ParseExpectedLeftParenAfterCast")
        operand = self.expr(0)
        if not self.accept("KEYWORD", "AS"):
            raise self.error("ParseCastArity", "expected AS in CAST")
        tok = self.tok
        type_name = CAST_TYPES.get(str(tok.value).upper()) if tok.kind == "IDENT" else None
        if type_name is None:
            raise self.error("ParseExpectedTypeName", "expected a type name")
        self.advance()
        if self.accept("PUNCT", "("):  # e.g. DECIMAL(10, 2), VARCHAR(20): accepted, ignored
            while not self.accept("PUNCT", ")"):
                if self.advance().kind == "EOF":
                    raise self.error("ParseInvalidTypeParam", "unterminated type parameters")
        self.expect("PUNCT", ")", "ParseExpectedRightParenBuiltinFunctionCall")
        return ast.Cast(operand, type_name)

    def call(self, name: str) -> ast.Node:
        self.advance()  # name
        self.advance()  # (
        if name in AGGREGATES:
            return self.aggregate(name)
        if name == "EXTRACT":
            part = self.date_part(EXTRACT_PARTS)
            self.expect("KEYWORD", "FROM", "ParseExpectedKeyword")
            args: list[ast.Node] = [part, self.expr(0)]
        elif name == "TRIM":
            args = self.trim_args()
        elif name == "SUBSTRING":
            args = [self.expr(0)]
            if self.accept("KEYWORD", "FROM"):
                args.append(self.expr(0))
                if self.accept_word("FOR"):
                    args.append(self.expr(0))
            else:
                while self.accept("PUNCT", ","):
                    args.append(self.expr(0))
        elif name in ("DATE_ADD", "DATE_DIFF"):
            args = [self.date_part(DATE_PARTS)]
            while self.accept("PUNCT", ","):
                args.append(self.expr(0))
        elif name in SCALAR_FUNCTIONS:
            args = []
            if not self.tok.is_("PUNCT", ")"):
                args.append(self.expr(0))
                while self.accept("PUNCT", ","):
                    args.append(self.expr(0))
        else:
            raise SelectError("UnsupportedFunction", f"function {name} is not supported")
        if not self.accept("PUNCT", ")"):
            if self.tok.kind == "EOF" or self.tok.kind != "PUNCT":
                raise self.error("ParseExpectedRightParenBuiltinFunctionCall", "expected )")
            raise self.error("ParseExpectedArgumentDelimiter", "expected , or )")
        low, high = SCALAR_FUNCTIONS.get(name, (2, 2))
        if len(args) < low or (high is not None and len(args) > high):
            raise SelectError(
                "EvaluatorInvalidArguments",
                f"{name} takes {low}..{high} arguments, got {len(args)}",
            )
        return ast.Call(name, tuple(args))

    def date_part(self, allowed: frozenset[str]) -> ast.Node:
        tok = self.tok
        if tok.kind == "IDENT" and str(tok.value).upper() in allowed:
            self.advance()
            return ast.Literal(str(tok.value).upper())
        raise self.error("ParseExpectedDatePart", "expected a date part")

    def trim_args(self) -> list[ast.Node]:
        mode = self.accept_word("LEADING", "TRAILING", "BOTH")
        chars: ast.Node | None = None
        if self.accept("KEYWORD", "FROM"):
            target = self.expr(0)
        else:
            first = self.expr(0)
            if self.accept("KEYWORD", "FROM"):
                chars, target = first, self.expr(0)
            else:
                if mode is not None:
                    raise self.error("ParseExpectedKeyword", "expected FROM in TRIM")
                target = first
        return [target, ast.Literal(mode or "BOTH"), chars or ast.Literal(None)]

    def aggregate(self, name: str) -> ast.Node:
        if self.tok.is_("OP", "*"):
            if name != "COUNT":
                raise self.error("ParseUnsupportedCallWithStar", "only COUNT takes *")
            self.advance()
            arg = None
        else:
            if self.tok.is_("PUNCT", ")"):
                raise self.error("ParseNonUnaryAgregateFunctionCall", "expected one argument")
            arg = self.expr(0)
            if self.tok.is_("PUNCT", ","):
                raise self.error("ParseNonUnaryAgregateFunctionCall", "expected one argument")
        if not self.accept("PUNCT", ")"):
            raise self.error("ParseExpectedRightParenBuiltinFunctionCall", "expected )")
        return ast.Aggregate(name, arg)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_aggregates(query: ast.Query) -> ast.Query:
    """Aggregates may not nest, appear in WHERE, or be mixed with per-record columns."""
    if query.where is not None and any(isinstance(n, ast.Aggregate) for n in ast.walk(query.where)):
        raise SelectError("UnsupportedSqlOperation", "aggregates are not allowed in WHERE")
    flags = []
    for item in query.items:
        has_agg = False
        for node in ast.walk(item.expr):
            if isinstance(node, ast.Aggregate):
                has_agg = True
                if node.arg is not None and any(
                    isinstance(n, ast.Aggregate) for n in ast.walk(node.arg)
                ):
                    raise SelectError("UnsupportedSqlStructure", "aggregates cannot be nested")
        flags.append(has_agg)
    if any(flags):
        for item, has_agg in zip(query.items, flags, strict=True):
            if not has_agg or _path_outside_aggregate(item.expr):
                raise SelectError(
                    "UnsupportedSqlStructure",
                    "aggregate and non-aggregate expressions cannot be mixed (no GROUP BY)",
                )
        return dataclasses.replace(query, aggregate=True)
    return query


def _path_outside_aggregate(node: ast.Node) -> bool:
    if isinstance(node, ast.Aggregate):
        return False
    if isinstance(node, ast.Path):
        return True
    return any(_path_outside_aggregate(child) for child in _children(node))


def _depth(root: ast.Node) -> int:
    """Levels of the tree under ``root``, counted without recursing."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: ast.Node) -> list[ast.Node]:
    out: list[ast.Node] = []
    for value in vars(node).values():
        if isinstance(value, ast.Node):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, ast.Node):
                    out.append(item)
                elif isinstance(item, tuple):
                    out.extend(sub for sub in item if isinstance(sub, ast.Node))
    return out


def _resolve_alias(query: ast.Query) -> ast.Query:
    """Strip the table alias (or ``S3Object``) from the head of every path in the query."""
    names = {query.alias, "s3object"}

    def fix(node: object) -> object:
        if isinstance(node, ast.Path):
            head = node.steps[0]
            if head.name is not None and (
                head.name in names if head.quoted else head.name.lower() in names
            ):
                return ast.Path(node.steps[1:])
            return node
        if isinstance(node, ast.Node):
            changes = {}
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                new = fix(value)
                if new is not value:
                    changes[f.name] = new
            return dataclasses.replace(node, **changes) if changes else node
        if isinstance(node, tuple):
            new_items = tuple(fix(item) for item in node)
            return (
                new_items if any(a is not b for a, b in zip(new_items, node, strict=True)) else node
            )
        return node

    items = tuple(ast.SelectItem(fix(it.expr), it.alias) for it in query.items)  # type: ignore[arg-type]
    where = fix(query.where) if query.where is not None else None
    return dataclasses.replace(query, items=items, where=where)  # type: ignore[arg-type]
