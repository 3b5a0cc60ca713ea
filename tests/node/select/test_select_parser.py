"""The SQL parser: the dialect S3 Select documents parses into the expected tree, and every kind
of malformed statement fails with the AWS error code a client would see."""

from __future__ import annotations

import pytest

from anode.select import ast
from anode.select.errors import SELECT_ERRORS, SelectError
from anode.select.sql_parser import parse


def col(*names: str) -> ast.Path:
    return ast.Path(tuple(ast.PathStep(name=n) for n in names))


def test_select_star_from_s3object():
    q = parse("SELECT * FROM S3Object")
    assert q.items == () and q.where is None and q.limit is None and q.alias == "s3object"


def test_alias_is_stripped_from_column_paths_case_insensitively():
    q = parse("select S._1, s.name AS n from S3OBJECT s where s._2 = 'x' limit 5")
    assert q.alias == "s"
    assert q.items == (ast.SelectItem(col("_1")), ast.SelectItem(col("name"), "n"))
    assert q.where == ast.Binary("=", col("_2"), ast.Literal("x"))
    assert q.limit == 5


def test_precedence_of_and_or_not_and_arithmetic():
    q = parse("SELECT a FROM S3Object WHERE NOT a = 1 OR b + 2 * 3 > 4 AND c < 5")
    a_eq = ast.Unary("NOT", ast.Binary("=", col("a"), ast.Literal(1)))
    arith = ast.Binary("+", col("b"), ast.Binary("*", ast.Literal(2), ast.Literal(3)))
    right = ast.Binary(
        "AND", ast.Binary(">", arith, ast.Literal(4)), ast.Binary("<", col("c"), ast.Literal(5))
    )
    assert q.where == ast.Binary("OR", a_eq, right)


def test_predicates_between_in_like_is():
    q = parse(
        "SELECT * FROM S3Object s WHERE s.a NOT BETWEEN 1 AND 2 AND s.b IN ('x', 'y') "
        "AND s.c NOT LIKE 'a!%%' ESCAPE '!' AND s.d IS NOT NULL AND s.e IS MISSING"
    )
    nodes = list(ast.walk(q.where))
    assert ast.Between(col("a"), ast.Literal(1), ast.Literal(2), True) in nodes
    assert ast.InList(col("b"), (ast.Literal("x"), ast.Literal("y"))) in nodes
    assert ast.Like(col("c"), ast.Literal("a!%%"), ast.Literal("!"), True) in nodes
    assert ast.IsCheck(col("d"), "NULL", True) in nodes
    assert ast.IsCheck(col("e"), "MISSING", False) in nodes


def test_json_from_path_and_nested_column_paths():
    q = parse('SELECT d.name, d.tags[0], d."Mixed" FROM S3Object[*].data.items[*] d')
    assert [s.name for s in q.from_path[:2]] == ["data", "items"] and q.from_path[2].wildcard
    assert q.items[1].expr == ast.Path((ast.PathStep(name="tags"), ast.PathStep(index=0)))
    assert q.items[2].expr == ast.Path((ast.PathStep(name="Mixed", quoted=True),))


def test_special_function_syntax():
    q = parse(
        "SELECT CAST(a AS DECIMAL(10,2)), TRIM(LEADING 'x' FROM b), SUBSTRING(c FROM 2 FOR 3), "
        "EXTRACT(YEAR FROM `2020-01-02T`), DATE_ADD(day, 1, d), "
        "CASE WHEN a > 1 THEN 'big' ELSE 'small' END, CASE a WHEN 1 THEN 'one' END "
        "FROM S3Object"
    )
    exprs = [item.expr for item in q.items]
    assert exprs[0] == ast.Cast(col("a"), "DECIMAL")
    assert exprs[1] == ast.Call("TRIM", (col("b"), ast.Literal("LEADING"), ast.Literal("x")))
    assert exprs[2] == ast.Call("SUBSTRING", (col("c"), ast.Literal(2), ast.Literal(3)))
    assert isinstance(exprs[3], ast.Call) and exprs[3].args[0] == ast.Literal("YEAR")
    assert exprs[4].args[0] == ast.Literal("DAY")
    assert isinstance(exprs[5], ast.Case) and exprs[5].operand is None
    assert exprs[6].operand == col("a")


def test_aggregates_mark_the_query():
    q = parse("SELECT COUNT(*), SUM(CAST(s._2 AS INT)) + 1 FROM S3Object s")
    assert q.aggregate
    assert q.items[0].expr == ast.Aggregate("COUNT", None)


def test_negative_number_literal_and_comments():
    q = parse("SELECT * FROM S3Object WHERE a > -5.5 -- trailing comment")
    assert q.where == ast.Binary(">", col("a"), ast.Literal(-5.5))


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT FROM S3Object", "ParseEmptySelect"),
        ("SELECT a", "ParseSelectMissingFrom"),
        ("SELECT a S3Object", "ParseSelectMissingFrom"),
        ("SELECT a FROM S3Object WHERE", "ParseExpectedExpression"),
        ("SELECT a FROM S3Object WHERE a = 1 b", "ParseUnexpectedToken"),
        ("SELECT a FROM S3Object WHERE a +", "ParseExpectedExpression"),
        ("SELECT a, * FROM S3Object", "ParseAsteriskIsNotAloneInSelectList"),
        ("SELECT *, a FROM S3Object", "ParseAsteriskIsNotAloneInSelectList"),
        ("SELECT SUM(*) FROM S3Object", "ParseUnsupportedCallWithStar"),
        ("SELECT COUNT(a, b) FROM S3Object", "ParseNonUnaryAgregateFunctionCall"),
        ("SELECT CAST a AS INT FROM S3Object", "ParseExpectedLeftParenAfterCast"),
        ("SELECT CAST(a AS WIDGET) FROM S3Object", "ParseExpectedTypeName"),
        ("SELECT CAST(a) FROM S3Object", "ParseCastArity"),
        ("SELECT LOWER(a FROM S3Object", "ParseExpectedRightParenBuiltinFunctionCall"),
        ("SELECT FOO(a) FROM S3Object", "UnsupportedFunction"),
        ("SELECT LOWER(a, b) FROM S3Object", "EvaluatorInvalidArguments"),
        ("SELECT CASE END FROM S3Object", "ParseExpectedWhenClause"),
        ("SELECT EXTRACT(WEEK FROM a) FROM S3Object", "ParseExpectedDatePart"),
        ("SELECT a FROM S3Object LIMIT x", "ParseExpectedNumber"),
        ("SELECT a FROM S3Object LIMIT -1", "EvaluatorNegativeLimit"),
        ("SELECT a FROM S3Object ORDER BY a", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object s GROUP BY a", "UnsupportedSqlOperation"),
        ("DELETE FROM S3Object", "UnsupportedSqlOperation"),
        ("SELECT a FROM S3Object WHERE COUNT(*) > 1", "UnsupportedSqlOperation"),
        ("SELECT a, COUNT(*) FROM S3Object", "UnsupportedSqlStructure"),
        ("SELECT SUM(COUNT(a)) FROM S3Object", "UnsupportedSqlStructure"),
        ("SELECT a FROM S3Object WHERE a = 'open", "LexerInvalidLiteral"),
        ("SELECT a FROM S3Object WHERE a = #1", "LexerInvalidChar"),
        ("SELECT a FROM S3Object WHERE a = `2020-13-45T`", "LexerInvalidIONLiteral"),
        ("SELECT a FROM S3Object WHERE a = 12abc", "LexerInvalidLiteral"),
        ("SELECT a FROM S3Object WHERE a IS 5", "ParseExpected2TokenTypes"),
        ("SELECT a FROM S3Object WHERE a BETWEEN 1 OR 2", "ParseExpectedKeyword"),
        ("SELECT a FROM S3Object WHERE a = FROM", "ParseUnexpectedKeyword"),
        ("SELECT a FROM S3Object, S3Object", "MultipleDataSourcesUnsupported"),
        ("SELECT a FROM mytable", "ParseUnexpectedTerm"),
        ("SELECT a.[x] FROM S3Object", "ParseInvalidPathComponent"),
        ("SELECT a FROM S3Object AS", "ParseExpectedIdentForAlias"),
    ],
)
def test_malformed_sql_fails_with_the_aws_error_code(sql: str, code: str):
    with pytest.raises(SelectError) as info:
        parse(sql)
    assert info.value.code == code
    assert info.value.status == SELECT_ERRORS[code][0] == 400


def test_expression_too_long():
    with pytest.raises(SelectError) as info:
        parse("SELECT a FROM S3Object WHERE a IN (" + ", ".join(["1"] * 100_000) + ")")
    assert info.value.code == "ExpressionTooLong"
