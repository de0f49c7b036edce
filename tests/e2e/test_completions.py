"""POST /v1/completions end to end through the official openai client (plain, streamed,
several prompts times n, echo, logprobs, seeds; every response parses in the SDK's types),
and POST /tokenize and /detokenize with httpx."""
import httpx
import openai
import pytest

from conftest import SERVED_NAME

PROMPT = "The capital of France is"


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def complete(server, **kwargs):
    kwargs.setdefault("prompt", PROMPT)
    return client(server).completions.create(model=SERVED_NAME, **kwargs)


def tokenize(server, **body):
    resp = httpx.post(server.base_url + "/tokenize", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_plain(server):
    resp = complete(server, temperature=0, max_tokens=8)
    assert resp.object == "text_completion"
    assert resp.id.startswith("cmpl-")
    assert resp.model == SERVED_NAME
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.text
    assert choice.finish_reason in ("stop", "length")
    assert choice.logprobs is None
    # No chat template: the prompt is the text itself (BOS as the tokenizer wants).
    assert resp.usage.prompt_tokens == tokenize(server, prompt=PROMPT)["count"]
    assert 1 <= resp.usage.completion_tokens <= 8
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_default_max_tokens_is_16(server):
    resp = complete(server, temperature=0, prompt="1, 2, 3, 4, 5, 6, 7,")
    assert resp.usage.completion_tokens == 16
    assert resp.choices[0].finish_reason == "length"


def test_streaming_matches_plain(server):
    plain = complete(server, temperature=0, max_tokens=12)
    stream = complete(server, temperature=0, max_tokens=12, stream=True,
                      stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        assert chunk.object == "text_completion"
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        assert usage is None, "the usage chunk comes last"
        assert finish is None, "nothing after the finish"
        text += chunk.choices[0].text
        finish = chunk.choices[0].finish_reason
    assert text == plain.choices[0].text
    assert finish == plain.choices[0].finish_reason
    assert usage is not None
    assert usage.prompt_tokens == plain.usage.prompt_tokens
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_two_prompts_times_n2(server):
    prompts = [PROMPT, "One, two, three,"]
    resp = complete(server, prompt=prompts, n=2, temperature=0, max_tokens=6)
    assert [c.index for c in resp.choices] == [0, 1, 2, 3]
    singles = [complete(server, prompt=p, temperature=0, max_tokens=6) for p in prompts]
    # Choice prompt_index * n + i belongs to prompt prompt_index.
    for index, choice in enumerate(resp.choices):
        assert choice.text == singles[index // 2].choices[0].text
    assert resp.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in singles)
    assert resp.usage.completion_tokens == 2 * sum(s.usage.completion_tokens for s in singles)

    stream = complete(server, prompt=prompts, n=2, temperature=0, max_tokens=6, stream=True)
    texts = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {c.index: c.text for c in resp.choices}


def test_token_id_prompts(server):
    ids = tokenize(server, prompt=PROMPT)["tokens"]
    by_text = complete(server, temperature=0, max_tokens=6)
    by_ids = complete(server, prompt=ids, temperature=0, max_tokens=6)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.prompt_tokens == len(ids)
    both = complete(server, prompt=[ids, ids], temperature=0, max_tokens=6)
    assert [c.text for c in both.choices] == [by_text.choices[0].text] * 2


def test_echo(server):
    plain = complete(server, temperature=0, max_tokens=6)
    echoed = complete(server, temperature=0, max_tokens=6, echo=True)
    assert echoed.choices[0].text == PROMPT + plain.choices[0].text
    stream = complete(server, temperature=0, max_tokens=6, echo=True, stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices) == echoed.choices[0].text


def test_logprobs(server):
    resp = complete(server, temperature=0, max_tokens=6, logprobs=2)
    lp = resp.choices[0].logprobs
    assert lp is not None
    assert len(lp.tokens) == resp.usage.completion_tokens
    assert len(lp.token_logprobs) == len(lp.tokens) == len(lp.top_logprobs) == len(lp.text_offset)
    assert "".join(lp.tokens) == resp.choices[0].text
    offset = 0
    for token, logprob, top, start in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs,
                                          lp.text_offset):
        assert start == offset
        offset += len(token)
        assert logprob <= 0
        assert 2 <= len(top) <= 3
        # Greedy: the chosen token is the most likely one.
        assert top[token] == pytest.approx(max(top.values()), abs=1e-4)
        assert top[token] == pytest.approx(logprob, abs=1e-4)


def test_seed_reproducibility(server):
    kwargs = dict(temperature=1.0, max_tokens=16, seed=1234)
    first = complete(server, **kwargs)
    second = complete(server, **kwargs)
    assert first.choices[0].text == second.choices[0].text
    others = {complete(server, temperature=1.0, max_tokens=16, seed=s).choices[0].text
              for s in (1, 2, 3)}
    assert len(others | {first.choices[0].text}) > 1, "different seeds, different samples"


def test_stop_string(server):
    resp = complete(server, prompt="1, 2, 3, 4, 5, 6,", temperature=0, max_tokens=16, stop=[" 9"])
    assert resp.choices[0].finish_reason == "stop"
    assert " 9" not in resp.choices[0].text


@pytest.mark.parametrize("body, param", [
    ({"prompt": "hi", "suffix": "x"}, "suffix"),
    ({"prompt": "hi", "logprobs": 6}, "logprobs"),
    ({"prompt": []}, "prompt"),
    ({"prompt": [1, 2, 10_000_000]}, "prompt"),
    ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
])
def test_bad_requests(server, body, param):
    resp = httpx.post(server.base_url + "/v1/completions", json=body, timeout=30)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param
    assert error["message"]


def test_prompt_longer_than_the_context_gives_the_counts(server):
    max_model_len = tokenize(server, prompt="hi")["max_model_len"]
    hi = tokenize(server, prompt="hi", add_special_tokens=False)["tokens"][0]
    with pytest.raises(openai.BadRequestError) as e:
        complete(server, prompt=[hi] * (max_model_len + 1))
    assert f"maximum context length is {max_model_len} tokens" in str(e.value)
    assert f"({max_model_len + 1} in the prompt, 16 in the completion)" in str(e.value)
    # Room for the prompt but not for max_tokens.
    with pytest.raises(openai.BadRequestError) as e:
        complete(server, prompt=[hi] * (max_model_len - 2), max_tokens=4)
    assert f"({max_model_len - 2} in the prompt, 4 in the completion)" in str(e.value)


def test_tokenize_detokenize_round_trip(server):
    text = "Hello, world! Ünïcödé ok."
    out = tokenize(server, prompt=text)
    assert out["count"] == len(out["tokens"]) > 0
    assert out["max_model_len"] > 0
    plain = tokenize(server, prompt=text, add_special_tokens=False)
    assert plain["tokens"] == out["tokens"][-len(plain["tokens"]):]
    resp = httpx.post(server.base_url + "/detokenize", json={"tokens": plain["tokens"]}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"prompt": text}


def test_tokenize_messages_counts_like_chat(server):
    messages = [{"role": "user", "content": "Say hi."}]
    out = tokenize(server, messages=messages)
    chat = client(server).chat.completions.create(model=SERVED_NAME, messages=messages,
                                                  max_tokens=1)
    assert out["count"] == chat.usage.prompt_tokens


@pytest.mark.parametrize("path, body", [
    ("/detokenize", {"tokens": [10_000_000]}),
    ("/detokenize", {"tokens": [-1]}),
    ("/detokenize", {"tokens": "abc"}),
    ("/tokenize", {"prompt": 5}),
    ("/tokenize", {}),
])
def test_tokenize_bad_requests(server, path, body):
    resp = httpx.post(server.base_url + path, json=body, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"]
