"""Sampling controls end to end through the official openai client: stop strings (plain and
streamed), logprobs with top_logprobs in the SDK's own types, logit_bias, penalties with a
seed, and the 400s for their bad values."""
import json
from pathlib import Path

import openai
import pytest

from conftest import SERVED_NAME

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures/smollm2_greedy.json").read_text())
COUNT = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def greedy(server, messages, **kwargs):
    return client(server).chat.completions.create(
        model=SERVED_NAME, messages=messages, temperature=0, **kwargs)


def streamed(server, messages, **kwargs):
    stream = client(server).chat.completions.create(
        model=SERVED_NAME, messages=messages, temperature=0, stream=True, **kwargs)
    text, finish, logprobs = "", None, []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            if choice.logprobs is not None and choice.logprobs.content:
                logprobs += choice.logprobs.content
    return text, finish, logprobs


def test_stop_list_plain_and_streamed(server):
    full = greedy(server, COUNT, max_tokens=40).choices[0].message.content
    assert len(full) > 20, full
    # A stop string from the middle of the greedy text; another that never appears.
    stop = full[10:13]
    cut = full[:full.index(stop)]
    resp = greedy(server, COUNT, max_tokens=40, stop=["@@never@@", stop])
    assert resp.choices[0].message.content == cut
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens < 40
    text, finish, _ = streamed(server, COUNT, max_tokens=40, stop=["@@never@@", stop])
    assert text == cut
    assert finish == "stop"
    # A single string works too, and a stop that never appears changes nothing.
    assert greedy(server, COUNT, max_tokens=40, stop=stop).choices[0].message.content == cut
    assert greedy(server, COUNT, max_tokens=40,
                  stop="@@never@@").choices[0].message.content == full


def test_stop_at_the_very_start_gives_empty_text(server):
    full = greedy(server, COUNT, max_tokens=8).choices[0].message.content
    resp = greedy(server, COUNT, max_tokens=8, stop=[full[:2]])
    assert resp.choices[0].message.content == ""
    assert resp.choices[0].finish_reason == "stop"
    text, finish, _ = streamed(server, COUNT, max_tokens=8, stop=[full[:2]])
    assert (text, finish) == ("", "stop")


def test_logprobs_and_top_logprobs(server):
    resp = greedy(server, COUNT, max_tokens=16, logprobs=True, top_logprobs=5)
    choice = resp.choices[0]
    content = choice.logprobs.content
    assert len(content) == resp.usage.completion_tokens
    for entry in content:
        assert isinstance(entry.token, str) and isinstance(entry.logprob, float)
        assert entry.logprob <= 0.0
        assert len(entry.top_logprobs) == 5
        # Greedy: the chosen token is the most likely one.
        assert all(entry.logprob >= alt.logprob - 1e-6 for alt in entry.top_logprobs)
        assert entry.top_logprobs[0].token == entry.token
        assert [a.logprob for a in entry.top_logprobs] == sorted(
            (a.logprob for a in entry.top_logprobs), reverse=True)
    text = b"".join(bytes(entry.bytes) for entry in content).decode("utf-8", "replace")
    assert text.startswith(choice.message.content)

    _, _, streamed_logprobs = streamed(server, COUNT, max_tokens=16, logprobs=True, top_logprobs=5)
    assert [e.token for e in streamed_logprobs] == [e.token for e in content]
    assert [e.logprob for e in streamed_logprobs] == pytest.approx([e.logprob for e in content])


def test_no_logprobs_unless_asked(server):
    resp = greedy(server, COUNT, max_tokens=4)
    assert resp.choices[0].logprobs is None
    resp = greedy(server, COUNT, max_tokens=4, logprobs=True)
    assert all(entry.top_logprobs == [] for entry in resp.choices[0].logprobs.content)


def test_logit_bias_bans_the_greedy_first_token(server):
    prompt = FIXTURE["prompts"][0]  # "What is the capital of France?": "The capital ..."
    first_id = prompt["steps"][0]["token"]
    plain = greedy(server, prompt["messages"], max_tokens=4, logprobs=True)
    first = plain.choices[0].logprobs.content[0].token
    assert prompt["completion_text"].startswith(first)
    biased = greedy(server, prompt["messages"], max_tokens=4, logprobs=True,
                    logit_bias={str(first_id): -100})
    assert biased.choices[0].logprobs.content[0].token != first


def test_stop_token_ids_end_the_completion_keeping_the_token(server):
    prompt = FIXTURE["prompts"][1]  # "Write a short poem about the sea."
    ids = [step["token"] for step in prompt["steps"]]
    stop_id = ids[3]
    plain = greedy(server, prompt["messages"], max_tokens=8, logprobs=True)
    tokens = [entry.token for entry in plain.choices[0].logprobs.content]
    assert prompt["completion_text"].startswith("".join(tokens))
    resp = greedy(server, prompt["messages"], max_tokens=8,
                  extra_body={"stop_token_ids": [stop_id]})
    n = ids.index(stop_id) + 1
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == n
    assert resp.choices[0].message.content == "".join(tokens[:n])


def test_seed_reproducibility_with_penalties(server):
    kwargs = dict(model=SERVED_NAME, messages=[{"role": "user", "content": "Tell me a story."}],
                  temperature=1.0, max_tokens=32, seed=4321)
    penalties = dict(presence_penalty=1.0, frequency_penalty=0.5,
                     extra_body={"repetition_penalty": 1.2, "min_p": 0.02})
    c = client(server)
    a = c.chat.completions.create(**kwargs, **penalties).choices[0].message.content
    b = c.chat.completions.create(**kwargs, **penalties).choices[0].message.content
    plain = c.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b
    assert a != plain


@pytest.mark.parametrize("kwargs,param,message", [
    (dict(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
    (dict(stop=["a", ""]), "stop", "must not be empty"),
    (dict(top_logprobs=3), "top_logprobs", "requires 'logprobs'"),
    (dict(logprobs=True, top_logprobs=21), "top_logprobs", "between 0 and 20"),
    (dict(presence_penalty=2.5), "presence_penalty", "between -2 and 2"),
    (dict(frequency_penalty=-3), "frequency_penalty", "between -2 and 2"),
    (dict(extra_body={"repetition_penalty": 0}), "repetition_penalty", "greater than 0"),
    (dict(extra_body={"min_p": 2}), "min_p", "between 0 and 1"),
    (dict(logit_bias={"10": 150}), "logit_bias", "between -100 and 100"),
    (dict(logit_bias={"999999": 1}), "logit_bias", "token id 999999"),
    (dict(extra_body={"stop_token_ids": [999999]}), "stop_token_ids", "token id 999999"),
])
def test_bad_sampling_values_are_400s_naming_the_field(server, kwargs, param, message):
    with pytest.raises(openai.BadRequestError) as err:
        client(server).chat.completions.create(model=SERVED_NAME, messages=COUNT, **kwargs)
    body = err.value.body
    assert body["param"] == param
    assert message in body["message"]
