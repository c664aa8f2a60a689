"""The routed run path does no work a bare client would not (issue 13): what that must keep."""

from __future__ import annotations

import json

import pytest

from klingbridge.provider import HttpReply


def test_a_reply_built_from_bytes_reads_its_json_from_them() -> None:
    body = {"code": 0, "data": {"task_id": "t", "prompt": "pluie à l'été"}}
    reply = HttpReply(200, {"content-type": "application/json"}, content=json.dumps(body).encode())
    assert reply.json() == body
    assert json.loads(reply.text) == body


def test_a_reply_from_bytes_in_another_charset_still_reads() -> None:
    raw = '{"message": "d\u00e9j\u00e0"}'.encode("latin-1")
    reply = HttpReply(200, {"Content-Type": "application/json; charset=ISO-8859-1"}, content=raw)
    assert reply.text == '{"message": "d\u00e9j\u00e0"}'
    assert reply.json() == {"message": "d\u00e9j\u00e0"}


def test_a_reply_that_is_not_json_raises_value_error_either_way() -> None:
    for reply in (HttpReply(502, {}, "<html>Bad</html>"), HttpReply(502, content=b"<html>Bad")):
        with pytest.raises(ValueError):
            reply.json()
    assert HttpReply(502, content=b"<html>Bad").text == "<html>Bad"
    assert HttpReply(204).text == "" and HttpReply(204).headers == {}
