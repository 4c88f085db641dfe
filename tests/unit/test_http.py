"""The pure HTTP value types: a request's repr never shows its signature or STS token."""

from __future__ import annotations

from aiosls._http import HttpRequest, HttpResponse, LowerCaseHeaders

SIGNATURE = "LOG LTAIkey:c2lnbmF0dXJl"
TOKEN = "CAIS-http-token"


def test_request_repr_redacts_authorization_and_token_in_any_case() -> None:
    request = HttpRequest(
        "GET",
        "https://p.example.com/logstores",
        {"Authorization": SIGNATURE, "X-Acs-Security-Token": TOKEN, "x-log-apiversion": "0.6.0"},
        operation="ListLogStores",
    )
    text = repr(request)
    assert SIGNATURE not in text
    assert TOKEN not in text
    assert "'Authorization': '***'" in text
    assert "'x-log-apiversion': '0.6.0'" in text
    assert "operation='ListLogStores'" in text


def test_response_headers_are_looked_up_lower_case() -> None:
    plain = HttpResponse(200, {"X-Log-RequestId": "RID"})
    assert plain.request_id == "RID"
    already = LowerCaseHeaders({"x-log-requestid": "RID2"})
    assert HttpResponse(200, already).headers is already  # used as given, not copied


def test_a_case_insensitive_mapping_is_used_as_given() -> None:
    class CaseInsensitive(dict[str, str]):
        def getall(self, key: str) -> list[str]:  # what multidict's mappings have
            return [self[key]]

    headers = CaseInsensitive({"X-Log-RequestId": "RID3"})
    assert HttpResponse(200, headers).headers is headers
