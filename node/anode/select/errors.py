"""S3 Select's own error table: every SelectObjectContent failure code and its HTTP status.

S3 Select errors are a separate family from the generic S3 errors in `anode.s3.errors` (AWS lists
them apart, "List of SELECT Object Content Error Codes"). Before the response has started, the
handler turns a `SelectError` into a normal XML error document with `.status`; once the event
stream has started, `run_select` sends it as an event-stream error message instead.
"""

from __future__ import annotations

# code -> (HTTP status, default message)
SELECT_ERRORS: dict[str, tuple[int, str]] = {
    "AmbiguousFieldName": (400, "Field name matches to multiple fields in the file."),
    "BusyResources": (503, "Failed to process the request because of lack of resources."),
    "CastFailed": (400, "Attempt to convert from one data type to another failed."),
    "CSVEscapingRecordDelimiter": (400, "The CSV file contains an invalid record delimiter."),
    "CSVParsingError": (400, "Encountered an error parsing the CSV file."),
    "CSVUnescapedQuote": (400, "A CSV file contains a quote that is not properly escaped."),
    "EmptyRequestBody": (400, "The request body cannot be empty."),
    "EvaluatorBindingDoesNotExist": (400, "A column name or a path provided does not exist."),
    "EvaluatorInvalidArguments": (400, "Incorrect number of arguments in the function call."),
    "EvaluatorInvalidTimestampFormatPattern": (400, "Invalid time stamp format string."),
    "EvaluatorInvalidTimestampFormatPatternSymbol": (
        400,
        "Time stamp format pattern contains an invalid symbol.",
    ),
    "EvaluatorLikePatternInvalidEscapeSequence": (
        400,
        "An argument given to the LIKE expression was not valid.",
    ),
    "EvaluatorNegativeLimit": (400, "LIMIT clause cannot have a negative value."),
    "ExpressionTooLong": (400, "The SQL expression is too long."),
    "IllegalSqlFunctionArgument": (400, "Illegal argument was used in the SQL function."),
    "IncorrectSqlFunctionArgumentType": (400, "Incorrect type of arguments in function call."),
    "IntegerOverflow": (400, "Integer overflow or underflow in the SQL expression."),
    "InternalError": (500, "Encountered an internal error."),
    "InvalidCast": (400, "Attempt to convert from one data type to another using CAST failed."),
    "InvalidColumnIndex": (400, "The column index is invalid."),
    "InvalidCompressionFormat": (400, "The file is not in a supported compression format."),
    "InvalidDataSource": (
        400,
        "Invalid data source type: only CSV, JSON and Parquet.",
    ),
    "InvalidDataType": (400, "The SQL expression contains an invalid data type."),
    "InvalidExpressionType": (400, "The ExpressionType is not valid. Only SQL is supported."),
    "InvalidFileHeaderInfo": (400, "The FileHeaderInfo is invalid. Only NONE, USE, IGNORE."),
    "InvalidJsonType": (400, "The JsonType is invalid. Only DOCUMENT and LINES are supported."),
    "InvalidKeyPath": (400, "The key path in the SQL expression is invalid."),
    "InvalidQuoteFields": (400, "The QuoteFields is invalid. Only ALWAYS and ASNEEDED."),
    "InvalidRequestParameter": (400, "The value of a parameter in the request is invalid."),
    "InvalidScanRange": (400, "The provided scan range is invalid."),
    "InvalidTableAlias": (400, "The SQL expression contains an invalid table alias."),
    "InvalidTextEncoding": (400, "Invalid encoding type. Only UTF-8 encoding is supported."),
    "JSONParsingError": (400, "Encountered an error parsing the JSON file."),
    "LexerInvalidChar": (400, "The SQL expression contains an invalid character."),
    "LexerInvalidIONLiteral": (400, "The SQL expression contains an invalid operator."),
    "LexerInvalidLiteral": (400, "The SQL expression contains an invalid literal."),
    "LexerInvalidOperator": (400, "The SQL expression contains an invalid operator."),
    "LikeInvalidInputs": (400, "Invalid argument given to the LIKE clause in the SQL expression."),
    "MalformedXML": (400, "The XML provided was not well formed or did not validate."),
    "MissingRequiredParameter": (400, "The SelectRequest entity is missing a required parameter."),
    "MultipleDataSourcesUnsupported": (400, "Multiple data sources are not supported."),
    "ObjectSerializationConflict": (400, "InputSerialization specifies more than one format."),
    "OverMaxColumn": (400, "The number of columns in the result is greater than the maximum."),
    "OverMaxRecordSize": (400, "The length of a record exceeds the maximum of 1 MB."),
    "ParquetParsingError": (400, "Encountered an error parsing the Parquet file."),
    "ParquetUnsupportedCompressionCodec": (400, "The Parquet compression codec is unsupported."),
    "ParseAsteriskIsNotAloneInSelectList": (
        400,
        "Other expressions are not allowed in the SELECT list when * is used.",
    ),
    "ParseCastArity": (400, "The SQL expression CAST has incorrect arity."),
    "ParseEmptySelect": (400, "The SQL expression contains an empty SELECT."),
    "ParseExpected2TokenTypes": (400, "Did not find the expected token in the SQL expression."),
    "ParseExpectedArgumentDelimiter": (400, "Did not find the expected argument delimiter."),
    "ParseExpectedDatePart": (400, "Did not find the expected date part in the SQL expression."),
    "ParseExpectedExpression": (400, "Did not find the expected SQL expression."),
    "ParseExpectedIdentForAlias": (400, "Did not find the expected identifier for the alias."),
    "ParseExpectedKeyword": (400, "Did not find the expected keyword in the SQL expression."),
    "ParseExpectedLeftParenAfterCast": (400, "Did not find expected the left parenthesis."),
    "ParseExpectedLeftParenBuiltinFunctionCall": (
        400,
        "Did not find the expected left parenthesis in the SQL expression.",
    ),
    "ParseExpectedMember": (400, "The SQL expression contains an unsupported use of MEMBER."),
    "ParseExpectedNumber": (400, "Did not find the expected number in the SQL expression."),
    "ParseExpectedRightParenBuiltinFunctionCall": (
        400,
        "Did not find the expected right parenthesis character in the SQL expression.",
    ),
    "ParseExpectedTokenType": (400, "Did not find the expected token in the SQL expression."),
    "ParseExpectedTypeName": (400, "Did not find the expected type name in the SQL expression."),
    "ParseExpectedWhenClause": (400, "Did not find the expected WHEN clause in the CASE."),
    "ParseInvalidContextForWildcardInSelectList": (400, "Invalid use of * in SELECT list."),
    "ParseInvalidPathComponent": (400, "Invalid path component in the SQL expression."),
    "ParseInvalidTypeParam": (400, "The SQL expression contains an invalid parameter value."),
    "ParseNonUnaryAgregateFunctionCall": (400, "Only one argument is supported for aggregates."),
    "ParseSelectMissingFrom": (400, "The SQL expression contains a missing FROM after SELECT."),
    "ParseUnexpectedKeyword": (400, "The SQL expression contains an unexpected keyword."),
    "ParseUnexpectedOperator": (400, "The SQL expression contains an unexpected operator."),
    "ParseUnexpectedTerm": (400, "The SQL expression contains an unexpected term."),
    "ParseUnexpectedToken": (400, "The SQL expression contains an unexpected token."),
    "ParseUnknownOperator": (400, "The SQL expression contains an invalid operator."),
    "ParseUnsupportedCallWithStar": (400, "Only COUNT may be called with (*)."),
    "ParseUnsupportedSyntax": (400, "The SQL expression contains unsupported syntax."),
    "TruncatedInput": (400, "Object decompression failed. Check the compression type."),
    "UnrecognizedFormatException": (400, "Encountered an invalid record type."),
    "UnsupportedFunction": (400, "Encountered an unsupported SQL function."),
    "UnsupportedParquetType": (400, "The specified Parquet type is not supported."),
    "UnsupportedScanRangeInput": (400, "Scan range queries are not supported on this type."),
    "UnsupportedSqlOperation": (400, "Encountered an unsupported SQL operation."),
    "UnsupportedSqlStructure": (400, "Encountered an unsupported SQL structure."),
    "UnsupportedSyntax": (400, "Encountered invalid syntax."),
    "ValueParseFailure": (400, "Time stamp parse failure in the SQL expression."),
}


class SelectError(Exception):
    """An S3 Select failure with its AWS code, HTTP status and a human-readable message."""

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in SELECT_ERRORS:
            raise ValueError(f"unknown S3 Select error code {code!r}")
        status, default = SELECT_ERRORS[code]
        self.code = code
        self.status = status
        self.message = message or default
        super().__init__(f"{code}: {self.message}")
