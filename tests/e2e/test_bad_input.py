"""Bad requests get 4xx with an OpenAI-style error body, and the server keeps serving;
a missing or truncated model ends startup with a message naming the file."""
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from conftest import BIN, MODEL, SERVED_NAME


def post(server, body, content_type="application/json"):
    return httpx.post(server.base_url + "/v1/chat/completions", content=body,
                      headers={"Content-Type": content_type}, timeout=60)


def assert_error(resp, status):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    return err


@pytest.mark.parametrize("body", [
    b"{not json",
    b"",
    b"[]",
    b'{"model": "smollm2"}',
    b'{"messages": "hello"}',
    b'{"messages": []}',
    b'{"messages": [{"role": "user"}]}',
    b'{"messages": [{"content": "hi"}]}',
    b'{"messages": [{"role": "user", "content": 5}]}',
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}',
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
    b'{"messages": [{"role": "user", "content": "hi"}], "top_p": 0}',
    b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000000}',
])
def test_bad_bodies_get_400(server, body):
    assert_error(post(server, body), 400)


def test_missing_messages_names_the_field(server):
    err = assert_error(post(server, b'{"model": "smollm2"}'), 400)
    assert "messages" in err["message"]


def test_unknown_model_is_404(server):
    err = assert_error(post(server, b'{"model": "gpt-9", "messages": '
                                    b'[{"role": "user", "content": "hi"}]}'), 404)
    assert "gpt-9" in err["message"]
    assert err["type"] == "invalid_request_error" and err["code"] == "model_not_found"


def test_unknown_route_and_wrong_method(server):
    assert_error(httpx.get(server.base_url + "/v1/nothing"), 404)
    assert_error(httpx.get(server.base_url + "/v1/chat/completions"), 405)


def test_sdk_raises_bad_request(server):
    c = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model=SERVED_NAME, messages=[{"role": "user", "content": "hi"}],
                                  temperature=5)


def test_server_survives_bad_input(server):
    for _ in range(3):
        post(server, b"\xff\xfe garbage")
    c = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    r = c.chat.completions.create(model=SERVED_NAME, max_tokens=4, temperature=0,
                                  messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content is not None


def run_server_expecting_failure(model_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "--model", str(model_path), "--port", "0"],
                          capture_output=True, text=True, timeout=60)


def test_missing_model_fails_startup_naming_the_file(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    proc = run_server_expecting_failure(missing)
    assert proc.returncode != 0 and proc.returncode > 0, proc
    assert str(missing) in proc.stdout + proc.stderr


def test_truncated_model_fails_startup_naming_the_file(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with open(MODEL, "rb") as src:
        truncated.write_bytes(src.read(5_000_000))
    proc = run_server_expecting_failure(truncated)
    assert proc.returncode != 0 and proc.returncode > 0, proc
    out = proc.stdout + proc.stderr
    assert str(truncated) in out
    assert "truncat" in out.lower() or "outside" in out.lower() or "past the end" in out.lower()


@pytest.mark.parametrize("flag, value, expected", [
    ("--kv-cache-memory", "lots", "--kv-cache-memory"),
    ("--max-num-seqs", "0", "max_num_seqs"),
    ("--port", "70000", "--port"),
    ("--log-level", "loud", "--log-level"),
])
def test_bad_flags_fail_startup_with_a_message(flag, value, expected):
    proc = subprocess.run([str(BIN), "--model", str(MODEL), flag, value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    assert expected in proc.stdout + proc.stderr


def test_kv_cache_too_small_for_one_block_fails_startup():
    proc = subprocess.run([str(BIN), "--model", str(MODEL), "--kv-cache-memory", "1KiB"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    assert "smaller than one block" in proc.stdout + proc.stderr


def test_deeply_nested_json_is_rejected_and_the_server_lives(server):
    deep = b'{"messages": ' + b"[" * 200000 + b"]" * 200000 + b"}"
    err = assert_error(post(server, deep), 400)
    assert "nested deeper" in err["message"]
    deep_field = (b'{"messages": [{"role": "user", "content": "hi"}], "tools": '
                  + b"[" * 100 + b"]" * 100 + b"}")
    assert_error(post(server, deep_field), 400)
    assert httpx.get(server.base_url + "/health").status_code == 200
