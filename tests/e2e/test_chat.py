"""The README's promise, end to end: the real binary answers through the official openai
client, plain and streamed, and through curl."""
import json
import subprocess
import threading

import httpx
import openai
import pytest

from conftest import SERVED_NAME

QUESTION = "What is the capital of France? Answer in one word."


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def test_chat_answers_paris(server):
    resp = client(server).chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": QUESTION}], temperature=0)
    assert resp.object == "chat.completion"
    assert resp.model == SERVED_NAME
    choice = resp.choices[0]
    assert "Paris" in choice.message.content
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_streams_paris(server):
    stream = client(server).chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": QUESTION}], temperature=0,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices]
    assert content_chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert "Paris" in text
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens > 0


def test_stream_and_plain_agree(server):
    c = client(server)
    messages = [{"role": "user", "content": "Name three colors."}]
    plain = c.chat.completions.create(model=SERVED_NAME, messages=messages, temperature=0,
                                      max_tokens=20)
    stream = c.chat.completions.create(model=SERVED_NAME, messages=messages, temperature=0,
                                       max_tokens=20, stream=True)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert streamed == plain.choices[0].message.content
    assert plain.choices[0].finish_reason in ("stop", "length")


def test_max_tokens_gives_length(server):
    resp = client(server).chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": "Write a long story."}],
        temperature=0, max_tokens=5)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.completion_tokens == 5


def test_curl_as_in_the_readme(server):
    body = json.dumps({"model": SERVED_NAME, "temperature": 0,
                       "messages": [{"role": "user", "content": QUESTION}]})
    out = subprocess.run(
        ["curl", "-sS", server.base_url + "/v1/chat/completions",
         "-H", "Content-Type: application/json", "-d", body],
        check=True, capture_output=True, text=True, timeout=120).stdout
    assert "Paris" in json.loads(out)["choices"][0]["message"]["content"]


def test_models_and_health(server):
    models = client(server).models.list()
    assert [m.id for m in models.data] == [SERVED_NAME]
    health = httpx.get(server.base_url + "/health")
    assert health.status_code == 200


def test_concurrent_requests_are_all_served(server):
    c = client(server)
    results = [None] * 6
    errors = []

    def ask(i):
        try:
            r = c.chat.completions.create(
                model=SERVED_NAME, temperature=0, max_tokens=12,
                messages=[{"role": "user", "content": f"Count from {i} to {i + 5}."}])
            results[i] = r.choices[0].message.content
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert all(r for r in results)


def test_sampling_with_seed_is_reproducible(server):
    c = client(server)
    kwargs = dict(model=SERVED_NAME, messages=[{"role": "user", "content": "Tell me a joke."}],
                  temperature=1.0, max_tokens=16, seed=1234)
    a = c.chat.completions.create(**kwargs).choices[0].message.content
    b = c.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b
