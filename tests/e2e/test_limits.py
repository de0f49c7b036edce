"""Limits, auth, overload, disconnects and graceful shutdown, against the real binary.

Each test starts its own server with the flags it needs (--api-key, --max-request-bytes,
--max-queued-requests, --shutdown-timeout)."""
import json
import signal
import subprocess
import threading
import time

import httpx
import openai
import pytest

from conftest import BIN, MODEL, SERVED_NAME, Server

KEY = "sk-moeserve-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
MAX_BODY = 64 * 1024


def chat(**fields) -> bytes:
    return json.dumps({"model": SERVED_NAME, "messages": HI, **fields}).encode()


def assert_error_body(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    return err


# (name, method, path, headers, body, expected status). Headers default to the right key and
# JSON; None as headers sends none at all.
JSON = {**AUTH, "Content-Type": "application/json"}
BAD_REQUESTS = [
    ("malformed json", "POST", CHAT, JSON, b'{"messages": [', 400),
    ("empty body", "POST", CHAT, JSON, b"", 400),
    ("body is an array", "POST", CHAT, JSON, b"[1, 2]", 400),
    ("body is a string", "POST", CHAT, JSON, b'"hello"', 400),
    ("invalid utf-8", "POST", CHAT, JSON, b'{"messages": "\xff\xfe"}', 400),
    ("missing messages", "POST", CHAT, JSON, b'{"model": "smollm2"}', 400),
    ("messages not a list", "POST", CHAT, JSON, b'{"messages": "hi"}', 400),
    ("messages empty", "POST", CHAT, JSON, b'{"messages": []}', 400),
    ("message without role", "POST", CHAT, JSON, b'{"messages": [{"content": "hi"}]}', 400),
    ("content of wrong type", "POST", CHAT, JSON,
     b'{"messages": [{"role": "user", "content": 5}]}', 400),
    ("unknown role", "POST", CHAT, JSON,
     b'{"messages": [{"role": "wizard", "content": "hi"}]}', 400),
    ("temperature a string", "POST", CHAT, JSON, chat(temperature="hot"), 400),
    ("temperature negative", "POST", CHAT, JSON, chat(temperature=-1), 400),
    ("top_p zero", "POST", CHAT, JSON, chat(top_p=0), 400),
    ("top_p above one", "POST", CHAT, JSON, chat(top_p=1.5), 400),
    ("max_tokens zero", "POST", CHAT, JSON, chat(max_tokens=0), 400),
    ("max_tokens a string", "POST", CHAT, JSON, chat(max_tokens="ten"), 400),
    ("max_tokens past the context", "POST", CHAT, JSON, chat(max_tokens=100_000_000), 400),
    ("n zero", "POST", CHAT, JSON, chat(n=0), 400),
    ("stream a string", "POST", CHAT, JSON, chat(stream="yes"), 400),
    ("stop a number", "POST", CHAT, JSON, chat(stop=5), 400),
    ("seed a string", "POST", CHAT, JSON, chat(seed="x"), 400),
    ("logit_bias a list", "POST", CHAT, JSON, chat(logit_bias=[1]), 400),
    ("top_logprobs without logprobs", "POST", CHAT, JSON, chat(top_logprobs=3), 400),
    ("stream_options without stream", "POST", CHAT, JSON,
     chat(stream_options={"include_usage": True}), 400),
    ("text/plain body", "POST", CHAT, {**AUTH, "Content-Type": "text/plain"}, chat(), 400),
    ("form body", "POST", CHAT, {**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
     chat(), 400),
    ("oversized body", "POST", CHAT, JSON,
     chat(messages=[{"role": "user", "content": "x" * (2 * MAX_BODY)}]), 413),
    ("unknown model", "POST", CHAT, JSON, chat(model="gpt-9"), 404),
    ("unknown route", "GET", "/v1/nothing", AUTH, None, 404),
    ("unknown route POST", "POST", "/v2/chat/completions", JSON, chat(), 404),
    ("wrong method on chat", "GET", CHAT, AUTH, None, 405),
    ("wrong method on models", "POST", "/v1/models", JSON, b"{}", 405),
    ("wrong method on health", "DELETE", "/health", None, None, 405),
    ("no key", "POST", CHAT, {"Content-Type": "application/json"}, chat(), 401),
    ("wrong key", "POST", CHAT, {"Authorization": "Bearer sk-wrong",
                                 "Content-Type": "application/json"}, chat(), 401),
    ("key without Bearer", "GET", "/v1/models", {"Authorization": KEY}, None, 401),
    ("models without key", "GET", "/v1/models", None, None, 401),
]


@pytest.fixture(scope="module")
def keyed_server():
    s = Server("--api-key", KEY, "--max-request-bytes", str(MAX_BODY))
    yield s
    code = s.stop()
    assert code == 0, f"moeserve exited with {code} on SIGTERM:\n{s.logs()}"


def test_bad_request_table_while_a_stream_flows(keyed_server):
    assert len(BAD_REQUESTS) >= 25
    c = openai.OpenAI(base_url=keyed_server.base_url + "/v1", api_key=KEY, max_retries=0)
    stream = c.chat.completions.create(
        model=SERVED_NAME, messages=HI, max_tokens=64, temperature=0, stream=True,
        extra_body={"ignore_eos": True})
    it = iter(stream)
    first = next(it)
    assert first.choices[0].delta.role == "assistant"

    failures = []
    with httpx.Client(base_url=keyed_server.base_url, timeout=60) as http:
        for name, method, path, headers, body, status in BAD_REQUESTS:
            resp = http.request(method, path, headers=headers, content=body)
            try:
                err = assert_error_body(resp, status)
                if status == 401:
                    assert err["type"] == "invalid_request_error", err
                if status == 405:
                    assert resp.headers.get("allow"), resp.headers
                if name == "wrong key":
                    assert err["code"] == "invalid_api_key" and "sk-wrong" not in err["message"]
                if name == "unknown model":
                    assert err["code"] == "model_not_found"
            except AssertionError as e:
                failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)

    rest = list(it)
    finals = [c for c in rest if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    assert text

    # The open routes need no key; the SDK with the key is served.
    assert httpx.get(keyed_server.base_url + "/health").status_code == 200
    assert c.models.list().data[0].id == SERVED_NAME
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed_server.base_url + "/v1", api_key="sk-wrong",
                      max_retries=0).models.list()


def test_overload_gets_429_and_admitted_requests_complete():
    # One sequence at a time, so a burst piles up in the waiting queue.
    s = Server("--max-queued-requests", "4", "--max-num-seqs", "1")
    try:
        results = [None] * 64
        body = chat(max_tokens=8, temperature=0, ignore_eos=True)

        def one(i):
            try:
                results[i] = httpx.post(s.base_url + CHAT, content=body, timeout=300,
                                        headers={"Content-Type": "application/json"})
            except httpx.HTTPError as e:  # recorded, then failed on below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [r for r in results if not isinstance(r, httpx.Response)]
        assert not errors, errors
        ok = [r for r in results if r.status_code == 200]
        busy = [r for r in results if r.status_code == 429]
        assert len(ok) + len(busy) == 64, sorted({r.status_code for r in results})
        assert busy, "a burst of 64 with one running sequence and 4 queued must be refused"
        assert len(ok) >= 5  # at least the running one and a full queue
        for r in busy:
            err = assert_error_body(r, 429)
            assert err["type"] == "rate_limit_error"
            assert r.headers["retry-after"] == "1"
        for r in ok:
            assert r.json()["choices"][0]["finish_reason"] == "length"
            assert r.json()["usage"]["completion_tokens"] == 8
        # Once the burst is over, requests are admitted again.
        again = httpx.post(s.base_url + CHAT, content=body, timeout=300,
                           headers={"Content-Type": "application/json"})
        assert again.status_code == 200, again.text
    finally:
        assert s.stop() == 0, s.logs()


def kv_usage(server) -> dict:
    """The engine snapshot /health carries (our extension)."""
    return httpx.get(server.base_url + "/health", timeout=10).json()["engine"]


def test_disconnected_streams_are_aborted_and_the_next_request_is_served():
    s = Server("--max-num-seqs", "32")
    try:
        idle = kv_usage(s)
        cut = threading.Barrier(33)

        def stream_and_cut():
            body = chat(max_tokens=2000, temperature=0, stream=True, ignore_eos=True)
            with httpx.stream("POST", s.base_url + CHAT, content=body, timeout=120,
                              headers={"Content-Type": "application/json"}) as resp:
                assert resp.status_code == 200
                pieces = 0
                for _ in resp.iter_lines():
                    pieces += 1
                    if pieces == 4:  # midway: the role chunk and some content went out
                        break
            cut.wait(timeout=120)

        threads = [threading.Thread(target=stream_and_cut) for _ in range(32)]
        for t in threads:
            t.start()
        cut.wait(timeout=120)
        for t in threads:
            t.join()

        # Every aborted sequence gives its KV blocks back (the prefix cache may keep the
        # prompt's blocks cached, but they are free for reuse).
        deadline = time.time() + 60
        while time.time() < deadline:
            now = kv_usage(s)
            if now["num_running"] == 0 and now["num_waiting"] == 0 and \
                    now["num_free_blocks"] == idle["num_free_blocks"]:
                break
            time.sleep(0.1)
        assert now["num_running"] == 0 and now["num_waiting"] == 0, now
        assert now["num_free_blocks"] == idle["num_free_blocks"] == now["num_blocks"], (idle, now)

        r = httpx.post(s.base_url + CHAT, content=chat(max_tokens=4, temperature=0), timeout=120,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] is not None
    finally:
        assert s.stop() == 0, s.logs()


def test_sigterm_lets_a_running_stream_finish_then_exits_0():
    s = Server("--shutdown-timeout", "60")
    c = openai.OpenAI(base_url=s.base_url + "/v1", api_key="x", max_retries=0)
    stream = c.chat.completions.create(
        model=SERVED_NAME, messages=HI, max_tokens=96, temperature=0, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    it = iter(stream)
    assert next(it).choices[0].delta.role == "assistant"
    s.proc.send_signal(signal.SIGTERM)

    # New requests are refused while the stream drains: 503 with an error body, or the
    # connection is refused once the listener is gone.
    refused = None
    for _ in range(50):
        try:
            refused = httpx.get(s.base_url + "/health", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    if refused is not None:
        assert_error_body(refused, 503)
    try:
        late = httpx.post(s.base_url + CHAT, content=chat(max_tokens=4), timeout=30,
                          headers={"Content-Type": "application/json"})
        assert_error_body(late, 503)
    except httpx.TransportError:
        pass

    rest = list(it)
    usage = [c for c in rest if c.usage is not None]
    assert usage and usage[-1].usage.completion_tokens == 96
    finals = [c for c in rest if c.choices and c.choices[0].finish_reason]
    assert finals and finals[0].choices[0].finish_reason == "length"
    assert s.proc.wait(timeout=60) == 0, s.logs()
    assert s.stop() == 0


def test_shutdown_timeout_aborts_what_still_runs():
    s = Server("--shutdown-timeout", "0.5")
    # No max_tokens: generates until the context (thousands of tokens) is full.
    body = chat(temperature=0, stream=True, ignore_eos=True)
    with httpx.stream("POST", s.base_url + CHAT, content=body, timeout=120,
                      headers={"Content-Type": "application/json"}) as resp:
        lines = resp.iter_lines()
        next(lines)
        s.proc.send_signal(signal.SIGTERM)
        done = False
        try:
            for line in lines:
                done = done or line == "data: [DONE]"
        except httpx.HTTPError:
            pass  # the server cut the stream
        assert not done, "the stream should have been cut by the shutdown"
    assert s.proc.wait(timeout=60) == 0, s.logs()
    assert "--shutdown-timeout reached; aborting 1 running requests" in s.logs()
    s.stop()


@pytest.mark.parametrize("flag, value", [
    ("--max-request-bytes", "lots"),
    ("--max-request-bytes", "0"),
    ("--max-queued-requests", "-1"),
    ("--shutdown-timeout", "-1"),
])
def test_bad_limit_flags_fail_startup_with_a_message(flag, value):
    proc = subprocess.run([str(BIN), "--model", str(MODEL), flag, value],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    assert flag in proc.stdout + proc.stderr
