"""Tokenizer for the S3 Select SQL dialect: turns the Expression text into a list of tokens.

Kept apart from `sql_parser` so that lexical errors (bad characters, unterminated strings) map to
the AWS ``Lexer*`` codes while grammar errors map to the ``Parse*`` codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SelectError

KEYWORDS = frozenset(
    {
        "SELECT", "FROM", "WHERE", "LIMIT", "AS", "AND", "OR", "NOT", "IN", "BETWEEN", "LIKE",
        "ESCAPE", "IS", "NULL", "MISSING", "TRUE", "FALSE", "CASE", "WHEN", "THEN", "ELSE",
        "END", "CAST",
    }
)  # fmt: skip

_OPERATORS = ("<>", "!=", "<=", ">=", "||", "=", "<", ">", "+", "-", "*", "/", "%")
_PUNCT = "(),.[]"


@dataclass(frozen=True)
class Token:
    """``kind`` is one of IDENT, QIDENT, KEYWORD, NUMBER, STRING, ION, OP, PUNCT, EOF."""

    kind: str
    value: object
    pos: int

    def is_(self, kind: str, value: object = None) -> bool:
        return self.kind == kind and (value is None or self.value == value)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "-" and text.startswith("--", i):  # line comment
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            word = text[i:j]
            if word.upper() in KEYWORDS:
                tokens.append(Token("KEYWORD", word.upper(), i))
            else:
                tokens.append(Token("IDENT", word, i))
            i = j
        elif _digit(ch) or (ch == "." and i + 1 < n and _digit(text[i + 1])):
            i = _number(text, i, tokens)
        elif ch == "'":
            value, i = _quoted(text, i, "'")
            tokens.append(Token("STRING", value, i))
        elif ch == '"':
            value, i = _quoted(text, i, '"')
            tokens.append(Token("QIDENT", value, i))
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise SelectError("LexerInvalidIONLiteral", f"unterminated ION literal at {i}")
            tokens.append(Token("ION", text[i + 1 : end], i))
            i = end + 1
        elif ch in _PUNCT:
            tokens.append(Token("PUNCT", ch, i))
            i += 1
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("OP", "<>" if op == "!=" else op, i))
                    i += len(op)
                    break
            else:
                if ch in "!&|^~":
                    raise SelectError("LexerInvalidOperator", f"invalid operator {ch!r} at {i}")
                raise SelectError("LexerInvalidChar", f"invalid character {ch!r} at {i}")
    tokens.append(Token("EOF", None, n))
    return tokens


def _number(text: str, i: int, tokens: list[Token]) -> int:
    j, n = i, len(text)
    while j < n and _digit(text[j]):
        j += 1
    is_float = False
    if j < n and text[j] == ".":
        is_float = True
        j += 1
        while j < n and _digit(text[j]):
            j += 1
    if j < n and text[j] in "eE":
        k = j + 1
        if k < n and text[k] in "+-":
            k += 1
        if k < n and _digit(text[k]):
            is_float = True
            j = k
            while j < n and _digit(text[j]):
                j += 1
    if j < n and (text[j].isalpha() or text[j] == "_"):
        raise SelectError("LexerInvalidLiteral", f"invalid number literal at {i}")
    raw = text[i:j]
    try:
        tokens.append(Token("NUMBER", float(raw) if is_float else int(raw), i))
    except ValueError:  # over Python's 4300-digit conversion limit
        raise SelectError("LexerInvalidLiteral", f"number literal too long at {i}") from None
    return j


def _digit(ch: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and other scripts' digits."""
    return "0" <= ch <= "9"


def _quoted(text: str, i: int, quote: str) -> tuple[str, int]:
    """Read a quoted string/identifier where a doubled quote stands for one quote."""
    out: list[str] = []
    j = i + 1
    while True:
        end = text.find(quote, j)
        if end < 0:
            raise SelectError("LexerInvalidLiteral", f"unterminated literal at {i}")
        out.append(text[j:end])
        if text.startswith(quote * 2, end):
            out.append(quote)
            j = end + 2
        else:
            return "".join(out), end + 1
