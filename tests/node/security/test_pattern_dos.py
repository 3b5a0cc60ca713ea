"""Wildcard patterns cannot freeze a node (issue 12, item 4; the matcher of item 3).

Policy `*`/`?`, CORS `*` and S3 Select `LIKE` share `anode.wildcard`, which never backtracks:
checked against a regex reference on short inputs, timed on the inputs that made `re` take
seconds, and end to end: a hostile bucket policy no longer blocks the node's event loop.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from anode_procs import NodeProcess
from health_probe import HealthProbe
from hypothesis import given, settings
from hypothesis import strategies as st

from anode.wildcard import compile_wildcard, wildcard_match

ALPHABET = "ab?*"


def reference(pattern: str, text: str, *, many="*", one="?", escape=None, ignore_case=False):
    """The backtracking regex the matcher replaces: fine on short inputs."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == many else "." if ch == one else re.escape(ch))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(out), text, flags) is not None


@settings(max_examples=500, deadline=None)
@given(st.text(ALPHABET, max_size=10), st.text("abAB", max_size=12))
def test_policy_wildcards_match_like_the_regex_reference(pattern, text):
    assert compile_wildcard(pattern).matches(text) == reference(pattern, text)


@settings(max_examples=500, deadline=None)
@given(st.text("aAbB?*", max_size=8), st.text("aAbB", max_size=10))
def test_case_insensitive_matching(pattern, text):
    got = compile_wildcard(pattern, ignore_case=True).matches(text)
    assert got == reference(pattern, text, ignore_case=True)


like_patterns = st.lists(
    st.sampled_from(["a", "b", "%", "_", "!%", "!_", "!!", "\n"]), max_size=8
).map("".join)


@settings(max_examples=500, deadline=None)
@given(like_patterns, st.text("ab%_!\n", max_size=12))
def test_like_with_escape_matches_the_regex_reference(pattern, text):
    got = compile_wildcard(pattern, many="%", one="_", escape="!").matches(text)
    assert got == reference(pattern, text, many="%", one="_", escape="!")


@pytest.mark.parametrize("pattern", ["ab!", "a!b", "!"])
def test_a_bad_escape_is_refused(pattern):
    with pytest.raises(ValueError):
        compile_wildcard(pattern, many="%", one="_", escape="!")


def test_unicode_question_mark_counts_characters():
    assert wildcard_match("a?c", "aéc")
    assert wildcard_match("İ?", "i̇x", ignore_case=True) is False  # folding keeps lengths
    assert wildcard_match("S3:GET*", "s3:GetObject", ignore_case=True)


HOSTILE = [  # (pattern, text): seconds for a backtracking regex, microseconds here
    ("*a" * 10 + "b", "a" * 40),
    ("*a" * 16 + "b", "a" * 64),
    ("*a?" * 16 + "b", "a" * 5000),
    ("*" + "a?" * 2000 + "b*", "a" * 100_000),
]


@pytest.mark.parametrize("pattern, text", HOSTILE, ids=["10-stars", "16-stars", "with-?", "long"])
def test_hostile_patterns_finish_quickly(pattern, text):
    started = time.process_time()
    assert not compile_wildcard(pattern).matches(text)
    assert not compile_wildcard(pattern + "*").matches(text + "c")
    assert time.process_time() - started < 2  # a backtracking regex: minutes to forever


def test_a_long_match_calls_its_check():
    calls = []
    pattern = compile_wildcard("*" + "a?" * 2000 + "b*")
    assert not pattern.matches("a" * 100_000, lambda: calls.append(1))
    assert calls  # the Select budget hooks in here


def test_long_matches_still_match():
    text = "x" * 50_000 + "needle" + "y" * 50_000 + "end"
    assert compile_wildcard("*n?e?le*e?d").matches(text)
    assert compile_wildcard("x*needle*end").matches(text)
    assert not compile_wildcard("x*needle*x*end").matches(text)


# ---- end to end: a hostile bucket policy against a real node ---------------------------------

HOSTILE_GLOB = "*a" * 10 + "b"  # against 40 `a`: ~9 s of regex backtracking per request before


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = NodeProcess(tmp_path_factory.mktemp("pattern-dos") / "data").start()
    yield proc
    proc.stop()


def anonymous_get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("where", ["resource", "user-agent"])
def test_a_hostile_policy_wildcard_does_not_block_the_node(node, where):
    s3 = node.client()
    bucket = f"pattern-dos-{where}"
    s3.create_bucket(Bucket=bucket)
    key = "a" * 40
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    if where == "resource":
        statement["Resource"] = f"arn:aws:s3:::{bucket}/{HOSTILE_GLOB}"
    else:
        statement["Resource"] = f"arn:aws:s3:::{bucket}/*"
        statement["Condition"] = {"StringLike": {"aws:UserAgent": HOSTILE_GLOB}}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    with HealthProbe(node) as probe:
        started = time.monotonic()
        status = anonymous_get(f"{node.s3_url}/{bucket}/{key}", {"User-Agent": key})
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # a few more probes after the request
    assert status == 403  # the pattern does not match: no access, and quickly
    assert elapsed < 3, f"the anonymous GET took {elapsed:.1f} s"
    assert probe.failures == 0 and probe.worst < 1.0, probe.latencies
