"""Http11Transport's framing, sans I/O: request bytes out (``_request``), response bytes in
(``_response``, httptools/llhttp) under every split of the bytes and every edge; no sockets."""

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

from aiosls._http import LowerCaseHeaders
from aiosls.transport.http11 import _request, _response
from aiosls.transport.http11._request import serialize_request
from aiosls.transport.http11._response import (
    MAX_HEAD_BYTES,
    MAX_INTERIM_RESPONSES,
    BodyTooLarge,
    ProtocolError,
    ResponseReader,
)

# RFC 9110 §5.6.2 tchar.
TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Fields llhttp gives a meaning to (framing, connection management): the strategies set them.
SPECIAL = {
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "proxy-connection",
    "upgrade",
}
CAP = 1 << 20

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
# RFC 9110 §5.5 field-content: VCHAR, obs-text, SP and HTAB inside.
field_chars = st.characters(codec="latin-1", exclude_categories=["Cc"]) | st.sampled_from(" \t")
field_values = st.text(alphabet=field_chars, max_size=20)
ows = st.sampled_from(["", " ", "\t", "  ", " \t"])


# --- helpers ------------------------------------------------------------------------------------


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` into non-empty pieces, in order."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(
    chunks: list[bytes], *, eof: bool = False, method: str = "GET", max_body: int = CAP
) -> tuple[ResponseReader, list[bool]]:
    """A reader fed ``chunks`` one by one (then EOF if asked), and what each feed() returned."""
    reader = ResponseReader(method=method, max_body=max_body)
    assert not reader.started
    flags = []
    for chunk in chunks:
        flags.append(reader.feed(chunk))
        assert reader.started
    if eof:
        assert not reader.done
        reader.feed_eof()
    assert reader.done
    return reader, flags


def parse(data: bytes, **kwargs: Any) -> ResponseReader:
    """A whole response in one feed."""
    return run([data], **kwargs)[0]


def outcome(reader: ResponseReader) -> tuple[int, dict[str, str], bytes, bool]:
    return reader.status, dict(reader.headers), reader.body, reader.keep_alive


def error(data: bytes, *, eof: bool = False, method: str = "GET", max_body: int = CAP) -> ProtocolError:
    """The ProtocolError feeding ``data`` (then EOF if asked) raises."""
    reader = ResponseReader(method=method, max_body=max_body)
    with pytest.raises(ProtocolError) as info:  # noqa: PT012
        reader.feed(data)
        if eof:
            reader.feed_eof()
    assert info.value.__cause__ is None
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
    """Zero or more ``;name[=token|"quoted"]`` (RFC 9112 §7.1.1; llhttp refuses BWS around ``;``)."""
    out = ""
    quoted = st.characters(codec="latin-1", exclude_categories=["Cc"], exclude_characters='"\\') | st.just(
        " "
    )
    for name in draw(st.lists(tokens, max_size=2)):
        value = draw(
            st.one_of(
                st.just(""),
                tokens.map(lambda t: "=" + t),
                st.text(alphabet=quoted).map(lambda t: f'="{t}"'),
            )
        )
        out += ";" + name + value
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
    """A valid response, and what the reader must make of it (computed here, not by the reader)."""
    version = draw(st.sampled_from(["1.1", "1.0"]))
    status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    reason = draw(st.one_of(st.just(""), st.text(alphabet=field_chars, max_size=12).map(lambda r: " " + r)))
    framing = draw(st.sampled_from(framings))
    encoding = draw(st.sampled_from(["identity", "gzip", "x-gzip", "deflate", "raw-deflate"]))
    body = draw(st.binary(max_size=600))
    coding, payload = encode(body, encoding, draw(st.integers(0, 9)))
    connection = draw(st.sampled_from([None, "close", "keep-alive", "Keep-Alive", "TE, close"]))

    fields = draw(
        st.lists(st.tuples(tokens.filter(lambda n: n.lower() not in SPECIAL), field_values), max_size=5)
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
    reader, flags = run(chunks, eof=response.eof)
    assert flags == [False] * (len(chunks) - 1) + [not response.eof]
    assert outcome(reader) == (response.status, response.headers, response.body, response.keep_alive)


@given(responses(framings=("chunked",)), st.data())
def test_chunked_any_split_including_inside_crlf_and_sizes(response: Built, data: st.DataObject) -> None:
    # Many cuts: most fall inside size lines, extensions, CRLFs and trailers.
    cuts = data.draw(st.lists(st.integers(1, len(response.data) - 1), min_size=10, max_size=60))
    reader, _ = run(pieces(response.data, cuts))
    assert outcome(reader) == (response.status, response.headers, response.body, response.keep_alive)
    assert isinstance(reader.headers, LowerCaseHeaders)


# --- property: serialize_request round-trips; control characters never get through ---------------

methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]), tokens)
# An encoded target is printable ASCII without spaces (aiosls percent-encodes everything else).
targets = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
    lambda t: "/" + t
)
# Any text without C0 controls (HTAB aside), DEL or lone surrogates: what aiohttp writes too.
request_values = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"], exclude_characters="".join(map(chr, range(32))) + "\x7f"
    )
    | st.just("\t"),
    max_size=20,
)
request_headers = st.dictionaries(
    tokens.filter(lambda n: n.lower() not in ("content-length", "transfer-encoding")),
    request_values,
    max_size=8,
)


def read_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """A tiny reader, independent of the module: request line, fields as written, body."""
    head_bytes, sep, rest = data.partition(b"\r\n\r\n")
    assert sep
    lines = head_bytes.decode("utf-8").split("\r\n")
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


FORBIDDEN = [chr(c) for c in [*range(9), *range(10, 32), 127]]


@given(methods, targets, request_headers.filter(bool), st.sampled_from([*FORBIDDEN, "\r\n"]), st.data())
def test_a_control_character_anywhere_in_a_value_is_refused(
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
    # The message is fixed: a name is never quoted (it may be a pasted secret too).
    with pytest.raises(ValueError, match=r"^invalid header name$"):
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


def test_values_are_utf8_as_aiohttp_writes_them() -> None:
    # aiohttp's header writer (http_writer._serialize_headers and its C twin) encodes UTF-8.
    assert serialize_request("GET", "/", {"X": "café €"}, b"").endswith("X: café €\r\n\r\n".encode())
    assert serialize_request("GET", "/", {"X": "a\tb"}, b"").endswith(b"X: a\tb\r\n\r\n")  # HTAB is fine
    with pytest.raises(ValueError, match="not encodable as UTF-8") as info:
        serialize_request("GET", "/", {"X": "secret\udcff"}, b"")
    assert info.value.__context__ is None  # the UnicodeEncodeError quotes the whole head
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="encoded absolute path"):  # a target is ASCII
        serialize_request("GET", "/€", {"X": "v"}, b"")


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
        b"RTSP/1.0 200 OK",
        b"ICE/1.0 200 OK",
        b"HTTP/1.1",
        b"",
        "HTTP/1.1 ٢٠٠ OK".encode(),  # Arabic-Indic digits, as UTF-8
        "HTTP/1.1 2²0 OK".encode("latin-1"),  # a digit to str.isdigit(), not to HTTP
    ],
)
def test_status_line_garbage_is_refused(status_line: bytes) -> None:
    error(status_line + b"\r\nContent-Length: 0\r\n\r\n")


def test_the_reason_phrase_is_never_read() -> None:
    # llhttp takes any byte but CR and LF there; the reader never looks at it (nor keeps it).
    reader = parse(b"HTTP/1.1 503 \x00\x1b[31m\xff\r\nContent-Length: 0\r\n\r\n")
    assert (reader.status, reader.headers) == (503, {"content-length": "0"})


def test_a_stream_that_does_not_start_like_http_is_refused_at_once() -> None:
    reader = ResponseReader(max_body=CAP)
    assert reader.feed(b"HT") is False
    with pytest.raises(ProtocolError, match="not an HTTP response"):
        reader.feed(b"X")


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
    reader = parse(head("Content-Length: 2", status=status_line) + b"ok")
    assert (reader.status, reader.body) == (status, b"ok")


# --- the head: fields ----------------------------------------------------------------------------


def test_names_are_lower_cased_and_values_stripped_of_ows_only() -> None:
    reader = parse(head("X-Log-RequestId: \t RID-1 \t", "X-Inner:a  b\tc", "X-Empty:", "Content-Length: 0"))
    assert reader.headers == {
        "x-log-requestid": "RID-1",
        "x-inner": "a  b\tc",
        "x-empty": "",
        "content-length": "0",
    }
    assert isinstance(reader.headers, LowerCaseHeaders)


def test_repeated_names_are_joined_with_comma_space() -> None:
    reader = parse(head("Vary: a", "X-Other: 1", "vary: b", "VARY:c ", "Content-Length: 0"))
    assert reader.headers["vary"] == "a, b, c"
    assert reader.headers["x-other"] == "1"


def test_obs_text_in_values_is_latin1_text() -> None:
    reader = parse(b"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9 \xff\r\nContent-Length: 0\r\n\r\n")
    assert reader.headers["x"] == "caf\xc3\xa9 \xff"  # bytes as latin-1, never a decode error


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
        b"X: a\x01b",
        b"X: a\x7fb",
    ],
)
def test_invalid_field_lines_are_refused(line: bytes) -> None:
    exc = error(b"HTTP/1.1 200 OK\r\nX-First: 1\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n")
    assert str(exc).startswith("invalid response: ")


@pytest.mark.parametrize("fold", [b" more", b"\tmore", b"  "])
def test_obs_fold_continuation_line_is_refused(fold: bytes) -> None:
    error(b"HTTP/1.1 200 OK\r\nX-Folded: start\r\n" + fold + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rY: b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    ],
)
def test_bare_lf_bare_cr_or_nul_in_the_head_is_refused(raw: bytes) -> None:
    error(raw)


def test_a_head_under_the_limit_is_accepted_whole_or_split() -> None:
    data = head("Content-Length: 0", "X-Pad: " + "a" * (MAX_HEAD_BYTES - 100))
    assert parse(data).headers["x-pad"] == "a" * (MAX_HEAD_BYTES - 100)
    for at in (1, 2, 3, 4, len(data) // 2):
        reader, _ = run([data[:-at], data[-at:]])
        assert reader.status == 200


def test_a_head_over_the_limit_is_refused_with_its_terminator() -> None:
    assert "head too large" in str(error(head("X-Pad: " + "a" * MAX_HEAD_BYTES, "Content-Length: 0")))
    many = [f"X-{i}: {'b' * 100}" for i in range(MAX_HEAD_BYTES // 100)]
    assert "head too large" in str(error(head(*many, "Content-Length: 0")))


@pytest.mark.parametrize("piece", [b"a", b"a" * 1000], ids=["1-byte", "1000-bytes"])
def test_one_endless_field_is_refused_without_its_terminator(piece: bytes) -> None:
    """httptools buffers a field until it ends: trickled, an endless one must still stop."""
    reader = ResponseReader(max_body=CAP)
    reader.feed(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    with pytest.raises(ProtocolError, match="head too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // len(piece) + 2):
            assert reader.feed(piece) is False


def test_many_fields_trickling_past_the_limit_are_refused() -> None:
    reader = ResponseReader(max_body=CAP)
    reader.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match="head too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // 1024 + 2):  # 1024 bytes a field, counted when the next starts
            assert reader.feed(b"X-Pad: " + b"a" * 1013 + b"\r\n") is False


def test_a_reason_phrase_trickling_past_the_limit_is_refused() -> None:
    reader = ResponseReader(max_body=CAP)
    reader.feed(b"HTTP/1.1 200 ")
    with pytest.raises(ProtocolError, match="head too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // 1024 + 2):
            assert reader.feed(b"r" * 1024) is False


# --- interim answers ------------------------------------------------------------------------------


def test_interim_answers_are_skipped_and_their_fields_dropped() -> None:
    data = (
        head("X-Interim: 1", status="HTTP/1.1 100 Continue")
        + head("Link: </a>; rel=preload", status="HTTP/1.1 103 Early Hints")
        + head("Content-Length: 2", "X-Final: 1")
        + b"ok"
    )
    for chunks in ([data], pieces(data, [5, 26, 27, 60, len(data) - 1])):
        reader, flags = run(chunks)
        assert flags[-1] is True
        assert not any(flags[:-1])
        assert outcome(reader) == (200, {"content-length": "2", "x-final": "1"}, b"ok", True)


def test_interim_answers_are_capped() -> None:
    """Regression (issue 11): any number of 1xx answers was skipped, one read or many."""
    final = head("Content-Length: 1") + b"!"
    assert parse(b"HTTP/1.1 100 Continue\r\n\r\n" * MAX_INTERIM_RESPONSES + final).body == b"!"
    exc = error(b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INTERIM_RESPONSES + 1) + final)
    assert "too many interim" in str(exc)
    reader = ResponseReader(max_body=CAP)
    with pytest.raises(ProtocolError, match="too many interim"):  # noqa: PT012
        for _ in range(MAX_INTERIM_RESPONSES + 1):
            assert reader.feed(b"HTTP/1.1 103 Early Hints\r\n\r\n") is False


def test_started_after_an_interim_answer_alone() -> None:
    reader = ResponseReader(max_body=CAP)
    assert not reader.started
    assert reader.feed(b"") is False
    assert not reader.started
    # A complete 100 Continue makes the response started (the transport must not resend it).
    assert reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n") is False
    assert (reader.started, reader.done, reader.status) == (True, False, 100)
    with pytest.raises(ProtocolError, match="closed before"):
        reader.feed_eof()


def test_started_once_any_byte_arrived() -> None:
    reader = ResponseReader(max_body=CAP)
    assert not reader.started
    reader.feed(b"H")
    assert (reader.started, reader.done) == (True, False)
    reader.feed(b"TTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
    assert (reader.started, reader.done) == (True, False)
    assert reader.feed(b"abc") is True
    assert (reader.started, reader.done) == (True, True)


def test_101_is_refused() -> None:
    assert "101" in str(error(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
    data = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nxx"
    assert "101" in str(error(data))


def test_interim_answer_fields_are_validated_too() -> None:
    error(b"HTTP/1.1 100 Continue\r\nbad line\r\n\r\n")


# --- body framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status_line", ["HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified"])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "framing", ["Content-Length: 100", "Transfer-Encoding: chunked", "Content-Encoding: gzip", "X-None: 1"]
)
def test_204_and_304_have_no_body(method: str, status_line: str, framing: str) -> None:
    reader = ResponseReader(method=method, max_body=10)  # a Content-Length over the cap is no body
    assert reader.feed(head(framing, status=status_line)) is True
    assert reader.body == b""
    assert reader.keep_alive is True
    # Bytes after it are not a body but a broken stream: never reuse the connection.
    reader = ResponseReader(method=method, max_body=10)
    assert reader.feed(head(framing, status=status_line) + b"body") is True
    assert (reader.body, reader.keep_alive) == (b"", False)


@pytest.mark.parametrize("status_line", ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found"])
@pytest.mark.parametrize(
    "framing", ["Content-Length: 100", "Transfer-Encoding: chunked", "Content-Encoding: gzip", "X-None: 1"]
)
def test_a_head_answer_ends_at_its_head_and_its_connection_is_not_reused(
    status_line: str, framing: str
) -> None:
    """httptools cannot be told that a HEAD answer has no body; the reader stops at the head,
    and since it cannot know where llhttp would have ended, never lets the connection be reused."""
    for chunks in ([head(framing, status=status_line)], [head(framing, status=status_line) + b"junk"]):
        reader, flags = run(chunks, method="HEAD", max_body=10)
        assert flags == [True]
        assert (reader.body, reader.keep_alive) == (b"", False)


def test_content_length_zero_is_done_at_the_head() -> None:
    reader = ResponseReader(max_body=0)
    assert reader.feed(head("Content-Length: 0")) is True
    assert (reader.body, reader.keep_alive) == (b"", True)


def test_content_length_body_over_several_reads() -> None:
    reader, flags = run([head("Content-Length: 6"), b"ab", b"cd", b"ef"])
    assert flags == [False, False, False, True]
    assert (reader.body, reader.keep_alive) == (b"abcdef", True)
    assert type(reader.body) is bytes


@pytest.mark.parametrize(
    "chunks",
    [
        [head("Content-Length: 2") + b"okEXTRA"],
        [head("Content-Length: 2") + b"o", b"kEXTRA"],
        [head("Content-Length: 2"), b"o", b"k!"],
        [head("Content-Length: 2") + b"okHTTP/1.1 408 Request Timeout\r\n"],
        [head("Transfer-Encoding: chunked") + chunked(b"ok") + b"EXTRA"],
        [head("Transfer-Encoding: chunked") + chunked(b"ok")[:-1], b"\nEXTRA"],
        [head("Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\nEXTRA"],
    ],
)
def test_bytes_after_a_complete_response_forbid_reuse(chunks: list[bytes]) -> None:
    reader, flags = run(chunks)
    assert flags[-1] is True
    assert (reader.body, reader.keep_alive) == (b"ok", False)


def test_a_stray_crlf_after_a_response_is_skipped() -> None:
    # llhttp skips empty lines before a message (RFC 9112 §2.2): the stream is still in step.
    reader = parse(head("Content-Length: 2") + b"ok\r\n")
    assert (reader.body, reader.keep_alive) == (b"ok", True)


def test_bytes_fed_after_done_forbid_reuse() -> None:
    reader = parse(head("Content-Length: 2") + b"ok")
    assert reader.feed(b"") is True
    assert reader.keep_alive is True
    assert reader.feed(b"HTTP/1.1 408 Request Timeout\r\n") is True
    assert (reader.body, reader.keep_alive) == (b"ok", False)
    reader.feed_eof()  # done: nothing to complete, no error
    assert reader.body == b"ok"


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
    reader = parse(head(*fields, status=status_line) + b"x")
    assert (reader.body, reader.keep_alive) == (b"x", keep_alive)


def test_connection_close_on_a_chunked_response() -> None:
    reader = parse(head("Connection: close", "Transfer-Encoding: chunked") + chunked(b"abc"))
    assert (reader.body, reader.keep_alive) == (b"abc", False)


def test_transfer_encoding_in_http_1_0_forbids_reuse() -> None:
    # RFC 9112 §6.1 makes TE in an HTTP/1.0 message faulty framing: close after it.
    data = head("Connection: keep-alive", "Transfer-Encoding: chunked", status="HTTP/1.0 200 OK") + chunked(
        b"ab"
    )
    reader = parse(data)
    assert (reader.body, reader.keep_alive) == (b"ab", False)


@pytest.mark.parametrize(
    "fields",
    [
        ("Content-Length: 3", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 99"),
        ("Transfer-Encoding: identity", "Content-Length: 3"),
    ],
)
def test_transfer_encoding_with_content_length_is_refused(fields: tuple[str, ...]) -> None:
    # Both framings: a smuggling vector (RFC 9112 §6.3); llhttp refuses it, as aiohttp does.
    error(head(*fields) + chunked(b"hello", b" world"))


@pytest.mark.parametrize("transfer", ["identity", "Identity", "identity, identity"])
def test_transfer_encoding_without_chunked_last_reads_to_eof(transfer: str) -> None:
    reader, flags = run([head(f"Transfer-Encoding: {transfer}"), b"abc", b"def"], eof=True)
    assert flags == [False, False, False]
    assert (reader.body, reader.keep_alive) == (b"abcdef", False)


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
    error(head(f"Transfer-Encoding: {transfer}") + chunked(b"abc"), eof=True)


def test_body_until_eof() -> None:
    reader = ResponseReader(max_body=CAP)
    assert reader.feed(head("X: 1")) is False
    assert reader.feed(b"") is False
    assert reader.feed(b"abc") is False
    assert reader.feed(b"def") is False
    assert reader.done is False
    reader.feed_eof()
    assert (reader.done, reader.started) == (True, True)
    assert (reader.body, reader.keep_alive) == (b"abcdef", False)
    reader.feed_eof()  # once done, EOF again changes nothing
    assert reader.body == b"abcdef"


def test_body_until_eof_may_be_empty() -> None:
    reader = ResponseReader(max_body=0)
    reader.feed(head("X: 1", status="HTTP/1.1 500 Oops"))
    reader.feed_eof()
    assert (reader.status, reader.body) == (500, b"")


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
    reader = ResponseReader(max_body=CAP)
    assert reader.feed(partial) is False
    with pytest.raises(ProtocolError, match="connection closed before the response was complete"):
        reader.feed_eof()
    assert not reader.done


# --- Content-Length ------------------------------------------------------------------------------


def test_leading_zeros_are_only_zeros() -> None:
    assert parse(head("Content-Length: 003") + b"abc").body == b"abc"
    assert parse(head("Content-Length: " + "0" * 5000 + "5") + b"12345").body == b"12345"
    assert parse(head("Content-Length: " + "0" * 30)).body == b""


@pytest.mark.parametrize(
    "value",
    [
        b"3, 4",
        b"3, 3",  # llhttp refuses a list even of equal values (aiohttp's parser too)
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
        b"9" * 5000,  # an overflow, not an int() of 5000 digits
    ],
)
def test_invalid_content_length_is_refused(value: bytes) -> None:
    exc = error(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nabc")
    assert not isinstance(exc, BodyTooLarge)


@pytest.mark.parametrize("second", ["3", "4"])
def test_repeated_content_lengths_are_refused(second: str) -> None:
    error(head("Content-Length: 3", f"Content-Length: {second}") + b"abcd")


def test_content_length_over_the_cap_raises_body_too_large_with_the_head() -> None:
    data = head("X-Log-RequestId: RID-42", "Content-Length: 1001", status="HTTP/1.1 200 OK")
    reader = ResponseReader(max_body=1000)
    with pytest.raises(BodyTooLarge, match="Content-Length 1001") as info:
        reader.feed(data)  # at the head: not a byte of the body need arrive
    assert isinstance(info.value, ProtocolError)
    assert info.value.status == 200
    assert info.value.headers == {"x-log-requestid": "RID-42", "content-length": "1001"}
    assert parse(head("Content-Length: 1000") + b"x" * 1000, max_body=1000).body == b"x" * 1000
    with pytest.raises(BodyTooLarge, match=r"Content-Length 100000000000000000$"):
        ResponseReader(max_body=CAP).feed(head("Content-Length: " + "0" * 20 + "1" + "0" * 17))


# --- chunked ------------------------------------------------------------------------------------


def test_chunked_with_extensions_and_trailers() -> None:
    data = head("Transfer-Encoding: chunked", "X-Log-RequestId: R") + (
        b'5;name=value;q="a;b"\r\nhello\r\n'
        b"1;x\r\n \r\n"
        b"00000000000000A\r\nabcdefghij\r\n"
        b"0;last\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n"
    )
    reader = parse(data)
    assert reader.body == b"hello abcdefghij"
    assert reader.headers == {"transfer-encoding": "chunked", "x-log-requestid": "R"}  # trailers ignored
    assert reader.keep_alive is True


def test_chunked_body_split_inside_the_data_and_its_crlf() -> None:
    base = head("Transfer-Encoding: chunked")
    reader, flags = run([base + b"a\r\n01234", b"56789\r", b"\n", b"3\r\nabc", b"\r\n0\r\n", b"\r", b"\n"])
    assert flags == [False] * 6 + [True]
    assert reader.body == b"0123456789abc"


@pytest.mark.parametrize(
    "line",
    [b"", b"g", b"-1", b"0x1", b"1 1", b"1" * 17, b";ext", b" ", b"1_0", "\u0661".encode(), b"1 ;bws"],
)
def test_invalid_chunk_sizes_are_refused(line: bytes) -> None:
    error(head("Transfer-Encoding: chunked") + line + b"\r\nx\r\n0\r\n\r\n")


def test_a_chunk_size_of_sixteen_hex_digits_is_valid_but_capped() -> None:
    reader = ResponseReader(max_body=10)
    assert reader.feed(head("Transfer-Encoding: chunked") + b"ffffffffffffffff\r\n0123456789") is False
    with pytest.raises(BodyTooLarge, match="more than 10 bytes"):
        reader.feed(b"a")


@pytest.mark.parametrize(
    "chunks",
    [[b"3\r\nabcX\r\n0\r\n\r\n"], [b"3\r\nabc", b"\rX"], [b"3\r\nabc\n\r\n0\r\n\r\n"], [b"3\r\nabc\r\r\n"]],
)
def test_a_chunk_must_end_in_crlf(chunks: list[bytes]) -> None:
    reader = ResponseReader(max_body=CAP)
    reader.feed(head("Transfer-Encoding: chunked"))
    with pytest.raises(ProtocolError):  # noqa: PT012
        for chunk in chunks:
            reader.feed(chunk)


def test_endless_chunk_extensions_are_refused() -> None:
    """llhttp skips extensions without a word to us: trickled forever, they must still stop."""
    reader = ResponseReader(max_body=CAP)
    reader.feed(head("Transfer-Encoding: chunked") + b"1;ext=")
    with pytest.raises(ProtocolError, match="too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // 1024 + 2):
            assert reader.feed(b"x" * 1024) is False


def test_trailers_count_against_the_head_limit() -> None:
    start = head("Transfer-Encoding: chunked") + b"1\r\na\r\n0\r\n"
    assert parse(start + b"X-T: " + b"t" * (MAX_HEAD_BYTES // 2) + b"\r\n\r\n").body == b"a"
    assert "head too large" in str(error(start + b"X-T: " + b"t" * MAX_HEAD_BYTES + b"\r\n\r\n"))
    reader = ResponseReader(max_body=CAP)
    reader.feed(start + b"X-Endless: ")
    with pytest.raises(ProtocolError, match="too large"):  # noqa: PT012
        for _ in range(MAX_HEAD_BYTES // 1024 + 2):
            assert reader.feed(b"t" * 1024) is False


def test_chunked_body_over_the_cap() -> None:
    base = head("Transfer-Encoding: chunked", "X-Log-RequestId: RID-7", status="HTTP/1.1 500 Oops")
    assert parse(base + chunked(b"x" * 6, b"y" * 4), max_body=10).body == b"x" * 6 + b"y" * 4
    for chunks in (
        [base + chunked(b"x" * 6, b"y" * 5)],
        [base + b"b\r\n" + b"x" * 10, b"x"],
        [base + b"b\r\n", b"x" * 11],
    ):
        reader = ResponseReader(max_body=10)
        with pytest.raises(BodyTooLarge, match="more than 10 bytes") as info:  # noqa: PT012
            for chunk in chunks:
                reader.feed(chunk)
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
    reader = ResponseReader(max_body=SIZE)
    reader.feed(start)
    template = bytearray(piece)
    tracemalloc.start()
    try:
        for _ in range(SIZE // piece.count(b"xy") // 2):
            reader.feed(bytes(template))  # a new object each time, as from a socket
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if end is None:
        reader.feed_eof()
    elif end:
        assert reader.feed(end)
    assert reader.body == b"xy" * (SIZE // 2)
    assert peak < 4 * SIZE


def test_eof_body_over_the_cap() -> None:
    reader = ResponseReader(max_body=10)
    reader.feed(head("X-Log-RequestId: RID-8") + b"x" * 6)
    reader.feed(b"x" * 4)
    with pytest.raises(BodyTooLarge, match="more than 10 bytes") as info:
        reader.feed(b"x")
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
    reader = parse(head(f"Content-Encoding: {coding}", f"Content-Length: {len(payload)}") + payload)
    assert reader.body == TEXT
    assert reader.headers["content-encoding"] == coding  # left as sent
    chunks = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    assert (
        parse(head(f"Content-Encoding: {coding}", "Transfer-Encoding: chunked") + chunked(*chunks)).body
        == TEXT
    )
    one_byte = [payload[i : i + 1] for i in range(len(payload))]  # deflate's kind from byte two
    assert (
        parse(head(f"Content-Encoding: {coding}", "Transfer-Encoding: chunked") + chunked(*one_byte)).body
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
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge, match="more than 65536 bytes decoded") as info:
            ResponseReader(max_body=64 << 10).feed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.status == 200
    assert info.value.headers["x-log-requestid"] == "RID-9"
    assert peak < 1 << 20  # decoded under the cap, never inflated whole


def test_decoded_body_at_the_cap_is_accepted() -> None:
    payload = gzip.compress(b"z" * 1000)
    data = head("Content-Encoding: gzip", f"Content-Length: {len(payload)}") + payload
    assert parse(data, max_body=1000).body == b"z" * 1000
    with pytest.raises(BodyTooLarge, match="decoded"):
        ResponseReader(max_body=999).feed(data)


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
        # Bytes after the end would be dropped silently (a second member: its data).
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
    assert exc.__context__ is None  # zlib's error is not kept


def test_bytes_after_the_end_of_an_encoded_body_in_a_later_piece() -> None:
    data = head("Content-Encoding: gzip", "Transfer-Encoding: chunked") + chunked(GZ, b"junk")
    assert "bytes after its end" in str(error(data))


def test_encoded_body_until_eof() -> None:
    reader, _ = run([head("Content-Encoding: gzip"), GZ[:10], GZ[10:]], eof=True)
    assert reader.body == TEXT
    reader = ResponseReader(max_body=CAP)
    reader.feed(head("Content-Encoding: gzip") + GZ[:-3])
    with pytest.raises(ProtocolError, match="truncated"):
        reader.feed_eof()


# --- the name caches ------------------------------------------------------------------------------


def test_the_header_name_caches_are_bounded_and_never_skip_validation() -> None:
    saved = dict(_response._names), set(_request._checked_names)
    _response._names.clear()
    _request._checked_names.clear()
    try:
        for i in range(1100):
            serialize_request("GET", "/", {f"X-Request-{i}": "v"}, b"")
        assert len(_request._checked_names) == 1024
        assert "X-Request-0" in _request._checked_names
        assert "X-Request-1099" not in _request._checked_names
        # Full: names still validated, still accepted, the cache does not grow.
        with pytest.raises(ValueError, match="invalid header name"):
            serialize_request("GET", "/", {"X Bad": "v"}, b"")
        with pytest.raises(ValueError, match="set by the transport"):
            serialize_request("GET", "/", {"Content-Length": "0"}, b"")
        for i in range(1100):
            parse(head(f"X-Response-{i}: {i}", "Content-Length: 0"))
        assert len(_response._names) == 1024
        fields = [f"X-Late-{i}: {i}" for i in range(50)]
        reader = parse(head(*fields, "Content-Length: 0"))
        assert reader.headers["x-late-49"] == "49"
        assert b"X-Late-0" not in _response._names
        error(head("X Bad: 1", "Content-Length: 0"))
    finally:
        _response._names.clear()
        _response._names.update(saved[0])
        _request._checked_names.clear()
        _request._checked_names.update(saved[1])
    assert isinstance(reader.headers, LowerCaseHeaders)
