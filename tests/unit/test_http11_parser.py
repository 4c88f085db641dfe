"""HTTP/1.1 framing, sans I/O (aiosls._http11): any split of the bytes, every edge, no sockets."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiosls import _http11
from aiosls._http11 import (
    MAX_HEAD_BYTES,
    BodyTooLarge,
    Headers,
    ProtocolError,
    ResponseParser,
    serialize_request,
)

# RFC 9110 §5.6.2 tchar.
TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FRAMING = {"content-length", "transfer-encoding", "content-encoding", "connection"}
CAP = 1 << 20

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
latin1 = st.characters(codec="latin-1", exclude_characters="\r\n\x00")
field_values = st.text(alphabet=latin1, max_size=20)
ows = st.sampled_from(["", " ", "\t", "  ", " \t"])


# --- helpers ------------------------------------------------------------------------------------


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` into non-empty pieces, in order."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(
    chunks: list[bytes], *, eof: bool = False, method: str = "GET", max_body: int = CAP
) -> tuple[ResponseParser, list[bool]]:
    """A parser fed ``chunks`` one by one (then EOF if asked), and what each feed() returned."""
    parser = ResponseParser(method=method, max_body=max_body)
    assert not parser.started
    flags = []
    for chunk in chunks:
        flags.append(parser.feed(chunk))
        assert parser.started
    if eof:
        assert not parser.done
        parser.feed_eof()
    assert parser.done
    return parser, flags


def parse(data: bytes, **kwargs: Any) -> ResponseParser:
    """A whole response in one feed."""
    return run([data], **kwargs)[0]


def outcome(parser: ResponseParser) -> tuple[int, dict[str, str], bytes, bool]:
    return parser.status, dict(parser.headers), parser.body, parser.keep_alive


def error(data: bytes, *, eof: bool = False, method: str = "GET", max_body: int = CAP) -> ProtocolError:
    """The ProtocolError feeding ``data`` (then EOF if asked) raises."""
    parser = ResponseParser(method=method, max_body=max_body)
    with pytest.raises(ProtocolError) as info:  # noqa: PT012
        parser.feed(data)
        if eof:
            parser.feed_eof()
    return info.value


def head(*lines: str, status: str = "HTTP/1.1 200 OK") -> bytes:
    return "".join(f"{line}\r\n" for line in (status, *lines)).encode("latin-1") + b"\r\n"


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"


# --- property: any split gives the same answer as one feed --------------------------------------


@dataclass
class Built:
    data: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    eof: bool


def encode(body: bytes, encoding: str, level: int) -> tuple[str | None, bytes]:
    if encoding == "identity":
        return None, body
    if encoding in ("gzip", "x-gzip"):
        return encoding, gzip.compress(body, level, mtime=0)
    if encoding == "deflate":
        return "deflate", zlib.compress(body, level)
    raw = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)  # "deflate" as some servers send it
    return "deflate", raw.compress(body) + raw.flush()


@st.composite
def chunk_exts(draw: st.DrawFn) -> str:
    """Zero or more ``;name[=token|"quoted"]``, with optional BWS (RFC 9112 §7.1.1)."""
    out = ""
    for name in draw(st.lists(tokens, max_size=2)):
        value = draw(
            st.one_of(
                st.just(""),
                tokens.map(lambda t: "=" + t),
                st.text(alphabet=st.characters(codec="latin-1", exclude_characters='\r\n\x00"\\')).map(
                    lambda t: f'="{t}"'
                ),
            )
        )
        out += draw(st.sampled_from(["", " ", "\t"])) + ";" + name + value
    return out


@st.composite
def chunked_body(draw: st.DrawFn, payload: bytes) -> bytes:
    cuts = draw(st.lists(st.integers(1, max(1, len(payload) - 1)), max_size=6))
    out = b""
    for piece in pieces(payload, cuts) if payload else []:
        digits = draw(st.sampled_from(["%x", "%X"])) % len(piece)
        digits = "0" * draw(st.integers(0, 16 - len(digits))) + digits
        out += f"{digits}{draw(chunk_exts())}\r\n".encode("latin-1") + piece + b"\r\n"
    out += f"{'0' * draw(st.integers(1, 16))}{draw(chunk_exts())}\r\n".encode("latin-1")
    trailers = draw(st.lists(st.tuples(tokens, field_values), max_size=3))
    out += "".join(f"{n}: {v}\r\n" for n, v in trailers).encode("latin-1")
    return out + b"\r\n"


@st.composite
def interim_heads(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from([100, 102, 103]))
    fields = draw(st.lists(st.tuples(tokens, field_values), max_size=2))
    return head(*(f"{n}: {v}" for n, v in fields), status=f"HTTP/1.1 {code} Informational")


@st.composite
def responses(draw: st.DrawFn, framings: tuple[str, ...] = ("length", "chunked", "eof")) -> Built:
    """A valid response, and what the parser must make of it (computed here, not by the parser)."""
    version = draw(st.sampled_from(["1.1", "1.0"]))
    status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    reason = draw(st.one_of(st.just(""), st.text(alphabet=latin1, max_size=12).map(lambda r: " " + r)))
    framing = draw(st.sampled_from(framings))
    encoding = draw(st.sampled_from(["identity", "gzip", "x-gzip", "deflate", "raw-deflate"]))
    body = draw(st.binary(max_size=600))
    coding, payload = encode(body, encoding, draw(st.integers(0, 9)))
    connection = draw(st.sampled_from([None, "close", "keep-alive", "Keep-Alive", "TE, close"]))

    fields = draw(
        st.lists(st.tuples(tokens.filter(lambda n: n.lower() not in FRAMING), field_values), max_size=5)
    )
    fields = [(n, draw(ows) + v + draw(ows)) for n, v in fields]
    if coding is not None:
        fields.append((draw(st.sampled_from(["Content-Encoding", "content-encoding"])), coding))
    if connection is not None:
        fields.append(("Connection", connection))
    if framing == "length":
        fields.append(("Content-Length", str(len(payload))))
        wire = payload
    elif framing == "chunked":
        fields.append(
            ("Transfer-Encoding", draw(st.sampled_from(["chunked", "Chunked", "identity, chunked"])))
        )
        wire = draw(chunked_body(payload))
    else:
        if draw(st.booleans()):
            fields.append(("Transfer-Encoding", "identity"))
        wire = payload
    fields = draw(st.permutations(fields))

    expected: dict[str, str] = {}
    for name, value in fields:
        key, value = name.lower(), value.strip(" \t")
        expected[key] = value if key not in expected else f"{expected[key]}, {value}"
    conn = (connection or "").lower()
    if framing == "eof" or (framing == "chunked" and version == "1.0"):
        keep_alive = False
    else:
        keep_alive = "close" not in conn if version == "1.1" else "keep-alive" in conn

    interim = b"".join(draw(st.lists(interim_heads(), max_size=3)))
    sep = draw(st.sampled_from([":", ": ", ":\t"]))
    final = head(*(f"{n}{sep}{v}" for n, v in fields), status=f"HTTP/{version} {status}{reason}")
    return Built(interim + final + wire, status, expected, body, keep_alive, framing == "eof")


@given(responses(), st.data())
def test_any_split_gives_the_whole_feeds_answer(response: Built, data: st.DataObject) -> None:
    whole, flags = run([response.data], eof=response.eof)
    assert flags == [not response.eof]
    cuts = data.draw(st.lists(st.integers(1, len(response.data) - 1), max_size=12))
    chunks = pieces(response.data, cuts)
    split, flags = run(chunks, eof=response.eof)
    # Done with the last byte, never before.
    assert flags == [False] * (len(chunks) - 1) + [not response.eof]
    expected = (response.status, response.headers, response.body, response.keep_alive)
    assert outcome(whole) == expected
    assert outcome(split) == expected


@given(responses())
def test_one_byte_at_a_time_gives_the_whole_feeds_answer(response: Built) -> None:
    chunks = [response.data[i : i + 1] for i in range(len(response.data))]
    parser, flags = run(chunks, eof=response.eof)
    assert flags == [False] * (len(chunks) - 1) + [not response.eof]
    assert outcome(parser) == (response.status, response.headers, response.body, response.keep_alive)


@given(responses(framings=("chunked",)), st.data())
def test_chunked_any_split_including_inside_crlf_and_sizes(response: Built, data: st.DataObject) -> None:
    # Many cuts: most fall inside size lines, extensions, CRLFs and trailers.
    cuts = data.draw(st.lists(st.integers(1, len(response.data) - 1), min_size=10, max_size=60))
    parser, _ = run(pieces(response.data, cuts))
    assert outcome(parser) == (response.status, response.headers, response.body, response.keep_alive)
    assert isinstance(parser.headers, Headers)


# --- property: serialize_request round-trips; control characters never get through ---------------

methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]), tokens)
# An encoded target is printable ASCII without spaces (aiosls percent-encodes everything else).
targets = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
    lambda t: "/" + t
)
request_headers = st.dictionaries(
    tokens.filter(lambda n: n.lower() not in ("content-length", "transfer-encoding")),
    field_values,
    max_size=8,
)


def read_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """A tiny reader, independent of the module: request line, fields as written, body."""
    head_bytes, sep, rest = data.partition(b"\r\n\r\n")
    assert sep
    lines = head_bytes.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    assert version == "HTTP/1.1"
    fields = []
    for line in lines[1:]:
        name, colon_space, value = line.partition(": ")
        assert colon_space
        fields.append((name, value))
    lengths = [int(v) for n, v in fields if n == "Content-Length"]
    assert len(lengths) <= 1
    assert len(rest) == (lengths[0] if lengths else 0)
    return method, target, fields, rest


@given(methods, targets, request_headers, st.binary(max_size=64))
def test_serialize_request_round_trips(
    method: str, target: str, headers: dict[str, str], body: bytes
) -> None:
    data = serialize_request(method, target, headers, body)
    expected_fields = list(headers.items())
    if body or method in ("POST", "PUT", "PATCH"):
        expected_fields.append(("Content-Length", str(len(body))))
    assert read_request(data) == (method, target, expected_fields, body)


@given(
    methods, targets, request_headers.filter(bool), st.sampled_from(["\r", "\n", "\x00", "\r\n"]), st.data()
)
def test_a_cr_lf_or_nul_anywhere_in_a_value_is_refused(
    method: str, target: str, headers: dict[str, str], bad: str, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(headers)))
    at = data.draw(st.integers(0, len(headers[name])))
    headers[name] = headers[name][:at] + bad + headers[name][at:]
    with pytest.raises(ValueError, match="control character"):
        serialize_request(method, target, headers, b"")


@given(targets, st.sampled_from(["\r", "\n", "\x00", "\r\nX-Injected:1\r\n"]), st.data())
def test_a_cr_lf_or_nul_in_the_target_is_refused(target: str, bad: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(1, len(target)))
    with pytest.raises(ValueError, match="encoded absolute path"):
        serialize_request("GET", target[:at] + bad + target[at:], {"Host": "h"}, b"")


@given(tokens, st.sampled_from(["\r", "\n", "\x00", " ", ":", "\t", "é", "("]), st.data())
def test_a_header_name_that_is_not_a_token_is_refused(name: str, bad: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(name)))
    with pytest.raises(ValueError, match="invalid header name"):
        serialize_request("GET", "/", {"Host": "h", name[:at] + bad + name[at:]: "v"}, b"")


# --- serialize_request: exact bytes and refusals --------------------------------------------------


def test_serialize_request_exact_bytes() -> None:
    data = serialize_request(
        "GET", "/logstores?offset=0", {"Host": "p.example", "x-log-bodyrawsize": "0"}, b""
    )
    assert data == b"GET /logstores?offset=0 HTTP/1.1\r\nHost: p.example\r\nx-log-bodyrawsize: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [("GET", b"", None), ("HEAD", b"", None), ("POST", b"", "0"), ("PUT", b"", "0"), ("PATCH", b"", "0"),
     ("DELETE", b"", None), ("DELETE", b"{}", "2"), ("GET", b"abc", "3"), ("POST", b"\x00\r\n", "3")],
)  # fmt: skip
def test_content_length_only_when_a_body_or_a_body_method(
    method: str, body: bytes, length: str | None
) -> None:
    data = serialize_request(method, "/", {"Host": "h"}, body)
    fields = read_request(data)[2]
    assert fields == [("Host", "h")] + ([("Content-Length", length)] if length else [])
    assert data.endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("target", ["", "logstores", "http://h/x", "/a b", "/a ", " /a"])
def test_target_must_be_an_encoded_absolute_path(target: str) -> None:
    with pytest.raises(ValueError, match="request target"):
        serialize_request("GET", target, {"Host": "h"}, b"")


@pytest.mark.parametrize("method", ["", "GE T", "GET\r\n", "G/T", "GÉT"])
def test_method_must_be_a_token(method: str) -> None:
    with pytest.raises(ValueError, match="invalid header name"):
        serialize_request(method, "/", {"Host": "h"}, b"")


def test_latin1_values_pass_and_others_are_value_errors() -> None:
    assert serialize_request("GET", "/", {"X": "café"}, b"").endswith(b"X: caf\xe9\r\n\r\n")
    with pytest.raises(ValueError, match="latin-1"):  # UnicodeEncodeError is a ValueError
        serialize_request("GET", "/", {"X": "€"}, b"")
    with pytest.raises(ValueError, match="encoded absolute path"):  # a target is ASCII
        serialize_request("GET", "/€", {"X": "v"}, b"")


# --- the head: status line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 9999 x",
        b"HTTP/2 200",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"HTTP/1.2 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 200\tOK",
        b"HTTP/1.1-200 OK",
        b"HTTP/1.1 +20 OK",
        b"HTTP/1.1 2 0 OK",
        b"http/1.1 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1",
        b"",
        "HTTP/1.1 ٢٠٠ OK".encode(),  # Arabic-Indic digits, as UTF-8
        "HTTP/1.1 2²0 OK".encode("latin-1"),  # a digit to str.isdigit(), not to HTTP
    ],
)
def test_status_line_garbage_is_refused(status_line: bytes) -> None:
    exc = error(status_line + b"\r\nContent-Length: 0\r\n\r\n")
    assert "invalid status line" in str(exc)


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 099 Low", b"HTTP/1.1 000"])
def test_status_below_100_is_refused(status_line: bytes) -> None:
    assert "invalid status code" in str(error(status_line + b"\r\n\r\n"))


@pytest.mark.parametrize(
    ("status_line", "status"),
    [
        ("HTTP/1.1 200", 200),
        ("HTTP/1.1 200 ", 200),
        ("HTTP/1.0 404 Not Found", 404),
        ("HTTP/1.1 503 x y z", 503),
    ],
)
def test_reason_phrase_is_optional(status_line: str, status: int) -> None:
    parser = parse(head("Content-Length: 2", status=status_line) + b"ok")
    assert (parser.status, parser.body) == (status, b"ok")


# --- the head: fields ----------------------------------------------------------------------------


def test_names_are_lower_cased_and_values_stripped_of_ows_only() -> None:
    parser = parse(head("X-Log-RequestId: \t RID-1 \t", "X-Inner:a  b\tc", "X-Empty:", "Content-Length: 0"))
    assert parser.headers == {
        "x-log-requestid": "RID-1",
        "x-inner": "a  b\tc",
        "x-empty": "",
        "content-length": "0",
    }
    assert isinstance(parser.headers, Headers)


def test_repeated_names_are_joined_with_comma_space() -> None:
    parser = parse(head("Vary: a", "X-Other: 1", "vary: b", "VARY:c ", "Content-Length: 0"))
    assert parser.headers["vary"] == "a, b, c"
    assert parser.headers["x-other"] == "1"


@pytest.mark.parametrize(
    "line",
    [
        b"No-Colon",
        b"X : space before colon",
        b": no name",
        b" obs-fold: continuation",
        b"\tobs-fold: continuation",
        b"X(y): not a token",
        b"\xc4: latin-1 name",
    ],
)
def test_invalid_field_lines_are_refused(line: bytes) -> None:
    exc = error(b"HTTP/1.1 200 OK\r\nX-First: 1\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n")
    assert "invalid header line" in str(exc)


@pytest.mark.parametrize("fold", [b" more", b"\tmore", b"  "])
def test_obs_fold_continuation_line_is_refused(fold: bytes) -> None:
    exc = error(b"HTTP/1.1 200 OK\r\nX-Folded: start\r\n" + fold + b"\r\nContent-Length: 0\r\n\r\n")
    assert "invalid header line" in str(exc)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rY: b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\x00\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_bare_lf_bare_cr_or_nul_in_the_head_is_refused(raw: bytes) -> None:
    assert "bare CR, LF or NUL" in str(error(raw))


def test_a_head_ended_by_bare_lfs_never_completes() -> None:
    parser = ResponseParser(max_body=CAP)
    assert parser.feed(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n") is False
    with pytest.raises(ProtocolError, match="connection closed"):
        parser.feed_eof()


def _head_of(size: int) -> bytes:
    """A head (terminator excluded) of exactly ``size`` bytes."""
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
    return start + b"a" * (size - len(start))


def test_a_head_of_exactly_the_limit_is_accepted_whole_or_split() -> None:
    data = _head_of(MAX_HEAD_BYTES) + b"\r\n\r\n"
    assert parse(data).headers["x-pad"] == "a" * (MAX_HEAD_BYTES - 43)
    # Regression: with the terminator split across reads, the same head was "too large".
    for at in (1, 2, 3, 4):
        parser, _ = run([data[:-at], data[-at:]])
        assert parser.status == 200


def test_a_head_over_the_limit_is_refused_with_its_terminator() -> None:
    assert "head too large" in str(error(_head_of(MAX_HEAD_BYTES + 1) + b"\r\n\r\n"))


def test_a_head_over_the_limit_is_refused_without_its_terminator() -> None:
    parser = ResponseParser(max_body=CAP)
    # Three bytes of slack: they may be the start of the terminator.
    assert parser.feed(_head_of(MAX_HEAD_BYTES) + b"\r\n\r") is False
    with pytest.raises(ProtocolError, match="head too large"):
        parser.feed(b"x")
    assert "head too large" in str(error(b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD_BYTES))


def test_a_head_trickling_past_the_limit_is_refused() -> None:
    parser = ResponseParser(max_body=CAP)
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match="head too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // 1024 + 1):
            assert parser.feed(b"X-Pad: " + b"a" * 1015 + b"\r\n") is False


# --- interim answers ------------------------------------------------------------------------------


def test_interim_answers_are_skipped_and_their_fields_dropped() -> None:
    data = (
        head("X-Interim: 1", status="HTTP/1.1 100 Continue")
        + head("Link: </a>; rel=preload", status="HTTP/1.1 103 Early Hints")
        + head("Content-Length: 2", "X-Final: 1")
        + b"ok"
    )
    for chunks in ([data], pieces(data, [5, 26, 27, 60, len(data) - 1])):
        parser, flags = run(chunks)
        assert flags[-1] is True
        assert not any(flags[:-1])
        assert outcome(parser) == (200, {"content-length": "2", "x-final": "1"}, b"ok", True)


def test_thousands_of_interim_answers_in_one_read() -> None:
    # Regression: each interim answer was one level of recursion (RecursionError, not a ProtocolError).
    data = b"HTTP/1.1 100 Continue\r\n\r\n" * 3000 + head("Content-Length: 1") + b"!"
    assert parse(data).body == b"!"


def test_started_after_an_interim_answer_alone() -> None:
    parser = ResponseParser(max_body=CAP)
    assert not parser.started
    assert parser.feed(b"") is False
    assert not parser.started
    # Regression: a complete 100 Continue left nothing buffered and the state at the head,
    # so the response looked never started (the transport would resend the request).
    assert parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n") is False
    assert (parser.started, parser.done, parser.status) == (True, False, 100)
    with pytest.raises(ProtocolError, match="closed before"):
        parser.feed_eof()


def test_started_once_any_byte_arrived() -> None:
    parser = ResponseParser(max_body=CAP)
    assert not parser.started
    parser.feed(b"H")
    assert (parser.started, parser.done) == (True, False)
    parser.feed(b"TTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
    assert (parser.started, parser.done) == (True, False)
    assert parser.feed(b"abc") is True
    assert (parser.started, parser.done) == (True, True)


def test_101_is_refused() -> None:
    assert "101" in str(error(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))


def test_interim_answer_fields_are_validated_too() -> None:
    assert "invalid header line" in str(error(b"HTTP/1.1 100 Continue\r\nbad line\r\n\r\n"))


# --- body framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status_line"),
    [("HEAD", "HTTP/1.1 200 OK"), ("HEAD", "HTTP/1.1 404 Not Found"), ("GET", "HTTP/1.1 204 No Content"),
     ("GET", "HTTP/1.1 304 Not Modified"), ("POST", "HTTP/1.1 204 No Content")],
)  # fmt: skip
@pytest.mark.parametrize(
    "framing", ["Content-Length: 100", "Transfer-Encoding: chunked", "Content-Encoding: gzip", "X-None: 1"]
)
def test_head_204_and_304_have_no_body(method: str, status_line: str, framing: str) -> None:
    parser = ResponseParser(method=method, max_body=10)  # a Content-Length over the cap is no body
    assert parser.feed(head(framing, status=status_line)) is True
    assert parser.body == b""
    assert parser.keep_alive is True
    # Bytes after it are not a body but a broken stream: never reuse the connection.
    parser = ResponseParser(method=method, max_body=10)
    assert parser.feed(head(framing, status=status_line) + b"body") is True
    assert (parser.body, parser.keep_alive) == (b"", False)


def test_content_length_zero_is_done_at_the_head() -> None:
    parser = ResponseParser(max_body=0)
    assert parser.feed(head("Content-Length: 0")) is True
    assert (parser.body, parser.keep_alive) == (b"", True)


def test_content_length_body_over_several_reads() -> None:
    parser, flags = run([head("Content-Length: 6"), b"ab", b"cd", b"ef"])
    assert flags == [False, False, False, True]
    assert (parser.body, parser.keep_alive) == (b"abcdef", True)


@pytest.mark.parametrize(
    "chunks",
    [
        [head("Content-Length: 2") + b"okEXTRA"],
        [head("Content-Length: 2") + b"ok\r"],  # one byte is enough
        [head("Content-Length: 2") + b"o", b"kEXTRA"],
        [head("Content-Length: 2"), b"o", b"k!"],
        [head("Transfer-Encoding: chunked") + chunked(b"ok") + b"EXTRA"],
        [head("Transfer-Encoding: chunked") + chunked(b"ok")[:-1], b"\nEXTRA"],
        [head("Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\nEXTRA"],
    ],
)
def test_bytes_after_a_complete_response_forbid_reuse(chunks: list[bytes]) -> None:
    parser, flags = run(chunks)
    assert flags[-1] is True
    assert (parser.body, parser.keep_alive) == (b"ok", False)


def test_bytes_fed_after_done_forbid_reuse() -> None:
    parser = parse(head("Content-Length: 2") + b"ok")
    assert parser.feed(b"") is True
    assert parser.keep_alive is True
    assert parser.feed(b"HTTP/1.1 408 Request Timeout\r\n") is True
    assert (parser.body, parser.keep_alive) == (b"ok", False)
    parser.feed_eof()  # done: nothing to complete, no error
    assert parser.body == b"ok"


@pytest.mark.parametrize(
    ("status_line", "connection", "keep_alive"),
    [
        ("HTTP/1.1 200 OK", None, True),
        ("HTTP/1.1 200 OK", "keep-alive", True),
        ("HTTP/1.1 200 OK", "close", False),
        ("HTTP/1.1 200 OK", "Close", False),
        ("HTTP/1.1 200 OK", "Upgrade, close", False),
        ("HTTP/1.0 200 OK", None, False),
        ("HTTP/1.0 200 OK", "keep-alive", True),
        ("HTTP/1.0 200 OK", "Keep-Alive", True),
        ("HTTP/1.0 200 OK", "close", False),
    ],
)
def test_keep_alive_rules_of_http_1_0_and_1_1(
    status_line: str, connection: str | None, keep_alive: bool
) -> None:
    fields = ["Content-Length: 1"] + ([f"Connection: {connection}"] if connection else [])
    parser = parse(head(*fields, status=status_line) + b"x")
    assert (parser.body, parser.keep_alive) == (b"x", keep_alive)


def test_connection_close_on_a_chunked_response() -> None:
    parser = parse(head("Connection: close", "Transfer-Encoding: chunked") + chunked(b"abc"))
    assert (parser.body, parser.keep_alive) == (b"abc", False)


def test_transfer_encoding_in_http_1_0_forbids_reuse() -> None:
    # Regression: RFC 9112 §6.1 makes TE in an HTTP/1.0 message faulty framing: close after it.
    data = head("Connection: keep-alive", "Transfer-Encoding: chunked", status="HTTP/1.0 200 OK") + chunked(
        b"ab"
    )
    parser = parse(data)
    assert (parser.body, parser.keep_alive) == (b"ab", False)


def test_transfer_encoding_wins_over_content_length_and_forbids_reuse() -> None:
    for fields in (
        ("Content-Length: 3", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 99"),
    ):
        parser = parse(head(*fields) + chunked(b"hello", b" world"))
        assert (parser.body, parser.keep_alive) == (b"hello world", False)


@pytest.mark.parametrize("transfer", ["identity", "Identity", "identity, identity"])
def test_transfer_encoding_without_chunked_last_reads_to_eof(transfer: str) -> None:
    parser, flags = run(
        [head(f"Transfer-Encoding: {transfer}", "Content-Length: 3"), b"abc", b"def"], eof=True
    )
    assert flags == [False, False, False]
    assert (parser.body, parser.keep_alive) == (b"abcdef", False)


@pytest.mark.parametrize(
    "transfer", ["chunked", "Chunked", " chunked ", "identity, chunked", "identity,chunked"]
)
def test_chunked_last_is_chunked(transfer: str) -> None:
    assert parse(head(f"Transfer-Encoding: {transfer}") + chunked(b"abc")).body == b"abc"


@pytest.mark.parametrize(
    "transfer",
    [
        "gzip",  # regression: was read to EOF and handed over still compressed
        "deflate",
        "chunked, identity",  # regression: was read to EOF, chunk framing and all
        "chunked,",
        "",
        "gzip, chunked",
        "chunked, chunked",
        "br",
    ],
)
def test_transfer_codings_we_cannot_undo_are_refused(transfer: str) -> None:
    data = head(f"Transfer-Encoding: {transfer}") + chunked(b"abc")
    assert "unsupported Transfer-Encoding" in str(error(data, eof=True))


def test_body_until_eof() -> None:
    parser = ResponseParser(max_body=CAP)
    assert parser.feed(head("X: 1")) is False
    assert parser.feed(b"") is False
    assert parser.feed(b"abc") is False
    assert parser.feed(b"def") is False
    assert parser.done is False
    parser.feed_eof()
    assert (parser.done, parser.started) == (True, True)
    assert (parser.body, parser.keep_alive) == (b"abcdef", False)
    parser.feed_eof()  # once done, EOF again changes nothing
    assert parser.body == b"abcdef"


def test_body_until_eof_may_be_empty() -> None:
    parser = ResponseParser(max_body=0)
    parser.feed(head("X: 1", status="HTTP/1.1 500 Oops"))
    parser.feed_eof()
    assert (parser.status, parser.body) == (500, b"")


@pytest.mark.parametrize(
    "partial",
    [
        b"",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n",
    ],
)
def test_eof_before_the_response_is_complete(partial: bytes) -> None:
    parser = ResponseParser(max_body=CAP)
    assert parser.feed(partial) is False
    with pytest.raises(ProtocolError, match="connection closed before the response was complete"):
        parser.feed_eof()
    assert not parser.done


# --- Content-Length ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [("Content-Length: 3", "Content-Length: 3"), ("Content-Length: 3, 3",), ("Content-Length:  3 ,3 , 3",),
     ("Content-Length: 003",)],
)  # fmt: skip
def test_equal_content_lengths_are_one(fields: tuple[str, ...]) -> None:
    parser = parse(head(*fields) + b"abc")
    assert (parser.body, parser.keep_alive) == (b"abc", True)


@pytest.mark.parametrize(
    "value",
    [
        b"3, 4",
        b"3,",
        b"",
        b"abc",
        b"-1",
        b"+3",
        b"0x3",
        b"3 3",
        b"1e3",
        b"3;",
        "٣".encode(),  # Arabic-Indic three, as UTF-8
        "³".encode("latin-1"),  # superscript three: str.isdigit() says yes
        "1²".encode("latin-1"),
    ],
)
def test_invalid_content_length_is_refused(value: bytes) -> None:
    exc = error(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nabc")
    assert "invalid Content-Length" in str(exc)
    assert not isinstance(exc, BodyTooLarge)


def test_differing_repeated_content_lengths_are_refused() -> None:
    assert "invalid Content-Length" in str(error(head("Content-Length: 3", "Content-Length: 4") + b"abcd"))


def test_content_length_over_the_cap_raises_body_too_large_with_the_head() -> None:
    data = head("X-Log-RequestId: RID-42", "Content-Length: 1001", status="HTTP/1.1 200 OK")
    parser = ResponseParser(max_body=1000)
    with pytest.raises(BodyTooLarge, match="Content-Length 1001") as info:
        parser.feed(data)  # at the head: not a byte of the body need arrive
    assert isinstance(info.value, ProtocolError)
    assert info.value.status == 200
    assert info.value.headers == {"x-log-requestid": "RID-42", "content-length": "1001"}
    assert parse(head("Content-Length: 1000") + b"x" * 1000, max_body=1000).body == b"x" * 1000


def test_a_content_length_of_thousands_of_digits() -> None:
    # Regression: int() refuses over 4300 digits with a ValueError, not a ProtocolError.
    with pytest.raises(BodyTooLarge, match="5000 digits") as info:
        ResponseParser(max_body=CAP).feed(head("Content-Length: " + "9" * 5000))
    assert info.value.status == 200
    # Leading zeros are only zeros.
    assert parse(head("Content-Length: " + "0" * 5000 + "5") + b"12345").body == b"12345"
    assert parse(head("Content-Length: " + "0" * 30)).body == b""
    with pytest.raises(BodyTooLarge, match=r"Content-Length 100000000000000000$"):
        ResponseParser(max_body=CAP).feed(head("Content-Length: " + "0" * 20 + "1" + "0" * 17))


# --- chunked ------------------------------------------------------------------------------------


def test_chunked_with_extensions_and_trailers() -> None:
    data = head("Transfer-Encoding: chunked", "X-Log-RequestId: R") + (
        b'5;name=value;q="a;b"\r\nhello\r\n'
        b"1 ; bws \r\n \r\n"
        b"00000000000000A\r\nabcdefghij\r\n"
        b"0;last\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n"
    )
    parser = parse(data)
    assert parser.body == b"hello abcdefghij"
    assert parser.headers == {"transfer-encoding": "chunked", "x-log-requestid": "R"}  # trailers ignored
    assert parser.keep_alive is True


def test_chunked_body_split_inside_the_data_and_its_crlf() -> None:
    base = head("Transfer-Encoding: chunked")
    parser, flags = run([base + b"a\r\n01234", b"56789\r", b"\n", b"3\r\nabc", b"\r\n0\r\n", b"\r", b"\n"])
    assert flags == [False] * 6 + [True]
    assert parser.body == b"0123456789abc"


@pytest.mark.parametrize(
    "line", [b"", b"g", b"-1", b"0x1", b"1 1", b"1" * 17, b";ext", b" ", b"1_0", "\u0661".encode()]
)
def test_invalid_chunk_sizes_are_refused(line: bytes) -> None:
    exc = error(head("Transfer-Encoding: chunked") + line + b"\r\nx\r\n0\r\n\r\n")
    assert "invalid chunk size" in str(exc)


def test_a_chunk_size_of_sixteen_hex_digits_is_valid_but_capped() -> None:
    parser = ResponseParser(max_body=10)
    assert parser.feed(head("Transfer-Encoding: chunked") + b"ffffffffffffffff\r\n0123456789") is False
    with pytest.raises(BodyTooLarge, match="more than 10 bytes"):
        parser.feed(b"a")


@pytest.mark.parametrize(
    "chunks",
    [[b"3\r\nabcX\r\n0\r\n\r\n"], [b"3\r\nabc", b"\rX"], [b"3\r\nabc\n\r\n0\r\n\r\n"], [b"3\r\nabc\r\r\n"]],
)
def test_a_chunk_must_end_in_crlf(chunks: list[bytes]) -> None:
    parser = ResponseParser(max_body=CAP)
    parser.feed(head("Transfer-Encoding: chunked"))
    with pytest.raises(ProtocolError, match="chunk not terminated by CRLF"):  # noqa: PT012
        for chunk in chunks:
            parser.feed(chunk)


def test_chunk_size_line_limit_whole_or_split() -> None:
    start = head("Transfer-Encoding: chunked")
    line = b"1;" + b"x" * 1022  # 1024 bytes: the limit
    data = start + line + b"\r\na\r\n0\r\n\r\n"
    assert parse(data).body == b"a"
    # Regression: with its CRLF split across reads, a line at the limit was "too long".
    parser, _ = run([start + line + b"\r", b"\na\r\n0\r\n\r\n"])
    assert parser.body == b"a"
    # Regression: a longer line was refused only when its CRLF had not arrived yet.
    assert "chunk size line too long" in str(error(start + line + b"x\r\na\r\n0\r\n\r\n"))
    parser = ResponseParser(max_body=CAP)
    assert parser.feed(start + line + b"x") is False  # it might be the CR
    with pytest.raises(ProtocolError, match="chunk size line too long"):
        parser.feed(b"x")


def test_trailer_section_limit_whole_or_split() -> None:
    start = head("Transfer-Encoding: chunked") + b"1\r\na\r\n0\r\n"
    trailers = b"X-T: " + b"t" * (MAX_HEAD_BYTES - 5)  # the limit, CRLFs aside
    assert parse(start + trailers + b"\r\n\r\n").body == b"a"
    for at in (1, 2, 3, 4):
        parser, _ = run([start + trailers + b"\r\n\r\n"[:-at], b"\r\n\r\n"[-at:]])
        assert parser.body == b"a"
    # Regression: a long trailer line was refused only when its CRLF had not arrived yet.
    assert "trailers too large" in str(error(start + trailers + b"t\r\n\r\n"))
    assert "trailers too large" in str(error(start + b"X: 1\r\n" + trailers + b"\r\n\r\n"))
    parser = ResponseParser(max_body=CAP)
    assert parser.feed(start + trailers + b"\r\n\r") is False
    with pytest.raises(ProtocolError, match="trailers too large"):
        parser.feed(b"x")


def test_chunked_body_over_the_cap() -> None:
    base = head("Transfer-Encoding: chunked", "X-Log-RequestId: RID-7", status="HTTP/1.1 500 Oops")
    assert parse(base + chunked(b"x" * 6, b"y" * 4), max_body=10).body == b"x" * 6 + b"y" * 4
    for chunks in (
        [base + chunked(b"x" * 6, b"y" * 5)],
        [base + b"b\r\n" + b"x" * 10, b"x"],
        [base + b"b\r\n", b"x" * 11],
    ):
        parser = ResponseParser(max_body=10)
        with pytest.raises(BodyTooLarge, match="more than 10 bytes") as info:  # noqa: PT012
            for chunk in chunks:
                parser.feed(chunk)
        assert info.value.status == 500
        assert info.value.headers["x-log-requestid"] == "RID-7"


SIZE = 128 * 1024


@pytest.mark.parametrize(
    ("start", "piece", "end"),
    [
        (head("Transfer-Encoding: chunked"), b"2\r\nxy\r\n" * 1024, b"0\r\n\r\n"),  # tiny chunks
        (head("Transfer-Encoding: chunked") + b"%x\r\n" % SIZE, b"xy", b"\r\n0\r\n\r\n"),
        (head(f"Content-Length: {SIZE}"), b"xy", b""),
        (head("X: until EOF"), b"xy", None),
    ],
    ids=["tiny-chunks", "trickled-chunk", "trickled-length", "trickled-eof"],
)
def test_a_body_in_many_small_pieces_costs_about_its_size_in_memory(
    start: bytes, piece: bytes, end: bytes | None
) -> None:
    """Regression: every piece of the body was kept as its own bytes object (~40 bytes each)
    until the end: under its 16 MiB cap, a body of 2-byte chunks held ~450 MiB."""
    parser = ResponseParser(max_body=SIZE)
    parser.feed(start)
    template = bytearray(piece)
    tracemalloc.start()
    try:
        for _ in range(SIZE // piece.count(b"xy") // 2):
            parser.feed(bytes(template))  # a new object each time, as from a socket
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if end is None:
        parser.feed_eof()
    elif end:
        assert parser.feed(end)
    assert parser.body == b"xy" * (SIZE // 2)
    assert peak < 4 * SIZE


def test_eof_body_over_the_cap() -> None:
    parser = ResponseParser(max_body=10)
    parser.feed(head("X-Log-RequestId: RID-8") + b"x" * 6)
    parser.feed(b"x" * 4)
    with pytest.raises(BodyTooLarge, match="more than 10 bytes") as info:
        parser.feed(b"x")
    assert (info.value.status, info.value.headers) == (200, {"x-log-requestid": "RID-8"})
    assert parse(head("X: 1") + b"x" * 10, eof=True, max_body=10).body == b"x" * 10


# --- Content-Encoding ----------------------------------------------------------------------------

TEXT = b'{"shards": [' + b", ".join(b'{"shardID": %d}' % i for i in range(200)) + b"]}"


def _deflate_raw(data: bytes) -> bytes:
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(data) + raw.flush()


@pytest.mark.parametrize(
    ("coding", "payload"),
    [("gzip", gzip.compress(TEXT)), ("x-gzip", gzip.compress(TEXT)), ("GZIP", gzip.compress(TEXT)),
     ("deflate", zlib.compress(TEXT)), ("Deflate", _deflate_raw(TEXT)), ("identity", TEXT)],
)  # fmt: skip
def test_content_encodings(coding: str, payload: bytes) -> None:
    assert len(payload) < len(TEXT) or coding == "identity"
    parser = parse(head(f"Content-Encoding: {coding}", f"Content-Length: {len(payload)}") + payload)
    assert parser.body == TEXT
    assert parser.headers["content-encoding"] == coding  # left as sent
    chunks = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    assert (
        parse(head(f"Content-Encoding: {coding}", "Transfer-Encoding: chunked") + chunked(*chunks)).body
        == TEXT
    )


def test_an_empty_encoded_body_is_empty() -> None:
    assert parse(head("Content-Encoding: gzip", "Content-Length: 0")).body == b""
    assert parse(head("Content-Encoding: deflate", "Transfer-Encoding: chunked") + b"0\r\n\r\n").body == b""


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, gzip", "gzip, br", ""])
def test_unsupported_content_encoding_is_refused(coding: str) -> None:
    exc = error(head(f"Content-Encoding: {coding}", "Content-Length: 0"))
    assert "unsupported Content-Encoding" in str(exc)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", _deflate_raw)],
)
def test_a_compression_bomb_is_body_too_large(coding: str, compress: Callable[[bytes], bytes]) -> None:
    bomb = compress(b"\x00" * (4 << 20))
    assert len(bomb) < 8 << 10  # 4 MiB in under 8 KiB
    data = (
        head("X-Log-RequestId: RID-9", f"Content-Encoding: {coding}", f"Content-Length: {len(bomb)}") + bomb
    )
    with pytest.raises(BodyTooLarge, match="more than 65536 bytes decoded") as info:
        ResponseParser(max_body=64 << 10).feed(data)
    assert info.value.status == 200
    assert info.value.headers["x-log-requestid"] == "RID-9"


def test_decoded_body_at_the_cap_is_accepted() -> None:
    payload = gzip.compress(b"z" * 1000)
    data = head("Content-Encoding: gzip", f"Content-Length: {len(payload)}") + payload
    assert parse(data, max_body=1000).body == b"z" * 1000
    with pytest.raises(BodyTooLarge, match="decoded"):
        ResponseParser(max_body=999).feed(data)


GZ = gzip.compress(TEXT)


@pytest.mark.parametrize(
    ("coding", "payload", "message"),
    [
        ("gzip", b"not gzip at all", "does not decode"),
        ("gzip", GZ[:3] + b"\xff" + GZ[4:], "does not decode"),  # reserved flag bits
        ("gzip", GZ[:20] + bytes(b ^ 0x55 for b in GZ[20:40]) + GZ[40:], "does not decode"),
        ("gzip", GZ[:-4] + b"\x00\x00\x00\x00", "does not decode"),  # wrong ISIZE
        ("gzip", GZ[:-1], "truncated"),
        ("gzip", GZ[: len(GZ) // 2], "truncated"),
        ("deflate", zlib.compress(TEXT)[:-1], "truncated"),
        ("deflate", b"x", "truncated"),
        ("deflate", b"\x78\x9c\xff\xff", "does not decode"),
        # Regression: bytes after the end were silently dropped (a second member: its data).
        ("gzip", GZ + b"junk", "bytes after its end"),
        ("gzip", GZ + gzip.compress(b"more"), "bytes after its end"),
        ("deflate", zlib.compress(TEXT) + b"junk", "bytes after its end"),
    ],
)
def test_corrupt_or_truncated_encoded_bodies_are_protocol_errors(
    coding: str, payload: bytes, message: str
) -> None:
    exc = error(head(f"Content-Encoding: {coding}", f"Content-Length: {len(payload)}") + payload)
    assert message in str(exc)
    assert not isinstance(exc, BodyTooLarge)


def test_encoded_body_until_eof() -> None:
    parser, _ = run([head("Content-Encoding: gzip"), GZ[:10], GZ[10:]], eof=True)
    assert parser.body == TEXT


# --- the name cache -------------------------------------------------------------------------------


def test_the_header_name_caches_are_bounded_and_never_skip_validation() -> None:
    saved = dict(_http11._known_names), set(_http11._request_names)
    _http11._known_names.clear()
    _http11._request_names.clear()
    try:
        for i in range(1100):
            serialize_request("GET", "/", {f"X-Request-{i}": "v"}, b"")
        assert len(_http11._request_names) == 1024
        assert "X-Request-0" in _http11._request_names
        assert "X-Request-1099" not in _http11._request_names
        # Full: names still validated, still accepted, the cache does not grow.
        with pytest.raises(ValueError, match="invalid header name"):
            serialize_request("GET", "/", {"X Bad": "v"}, b"")
        with pytest.raises(ValueError, match="set by the transport"):
            serialize_request("GET", "/", {"Content-Length": "0"}, b"")
        for i in range(1100):
            parse(head(f"X-Response-{i}: {i}", "Content-Length: 0"))
        assert len(_http11._known_names) == 1024
        fields = [f"X-Late-{i}: {i}" for i in range(50)]
        parser = parse(head(*fields, "Content-Length: 0"))
        assert parser.headers["x-late-49"] == "49"
        assert "X-Late-0" not in _http11._known_names
        assert "invalid header line" in str(error(head("X Bad: 1", "Content-Length: 0")))
    finally:
        _http11._known_names.clear()
        _http11._known_names.update(saved[0])
        _http11._request_names.clear()
        _http11._request_names.update(saved[1])
    assert isinstance(parser.headers, Headers)


@pytest.mark.parametrize(
    "name", ["Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING"]
)
def test_a_request_never_states_its_own_framing(name: str) -> None:
    # A second Content-Length or a Transfer-Encoding next to ours would be request smuggling.
    with pytest.raises(ValueError, match="set by the transport"):
        serialize_request("POST", "/", {"Host": "h", name: "5"}, b"hello")


@pytest.mark.parametrize("target", ["/a\tb", "/\x7f", "/caf\xe9", "/a b", "a/b", ""])
def test_a_request_target_is_printable_ascii_without_spaces(target: str) -> None:
    with pytest.raises(ValueError, match="encoded absolute path"):
        serialize_request("GET", target, {"Host": "h"}, b"")
