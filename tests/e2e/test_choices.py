"""Several choices per request (n > 1) end to end through the official openai client: plain
and streamed responses parse in the SDK's types with one choice per index, streamed text per
choice equals the plain text, usage counts the prompt once and sums the completions, seeded
choices are reproducible, and bad values of n are 400s naming the field."""
import openai
import pytest

from conftest import SERVED_NAME

COUNT = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def create(server, **kwargs):
    return client(server).chat.completions.create(model=SERVED_NAME, messages=COUNT, **kwargs)


def test_greedy_choices_plain(server):
    single = create(server, temperature=0, max_tokens=24)
    resp = create(server, temperature=0, max_tokens=24, n=2, logprobs=True)
    assert [c.index for c in resp.choices] == [0, 1]
    for choice in resp.choices:
        assert choice.message.role == "assistant"
        assert choice.message.content == single.choices[0].message.content
        assert choice.finish_reason == single.choices[0].finish_reason
        assert len(choice.logprobs.content) == single.usage.completion_tokens
    assert resp.usage.prompt_tokens == single.usage.prompt_tokens
    assert resp.usage.completion_tokens == 2 * single.usage.completion_tokens
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_greedy_choices_streamed_match_the_plain_ones(server):
    plain = create(server, temperature=0, max_tokens=24, n=2)
    stream = create(server, temperature=0, max_tokens=24, n=2, stream=True,
                    stream_options={"include_usage": True})
    texts, finishes, roles, usage, chunks = {}, {}, [], None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            assert chunk.choices == []
            assert usage is None, "one usage chunk"
            usage = chunk.usage
            continue
        assert usage is None, "the usage chunk comes last"
        assert len(chunk.choices) == 1
        choice = chunk.choices[0]
        assert choice.index not in finishes, f"a chunk after choice {choice.index} finished"
        if choice.delta.role is not None:
            assert choice.delta.role == "assistant"
            roles.append(choice.index)
            assert chunks == len(roles), "the role chunks come first"
        texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        if choice.finish_reason is not None:
            finishes[choice.index] = choice.finish_reason
    assert roles == [0, 1]
    assert sorted(finishes) == [0, 1]
    for choice in plain.choices:
        assert texts[choice.index] == choice.message.content
        assert finishes[choice.index] == choice.finish_reason
    assert usage is not None
    assert usage.prompt_tokens == plain.usage.prompt_tokens
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_seeded_choices_are_reproducible_and_follow_seed_plus_index(server):
    kwargs = dict(temperature=1.0, max_tokens=24, seed=11)
    a = create(server, n=3, **kwargs)
    b = create(server, n=3, **kwargs)
    texts = [c.message.content for c in a.choices]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) > 1, texts
    # Choice i samples as an n = 1 request with seed + i.
    kwargs.pop("seed")
    for i, text in enumerate(texts):
        assert create(server, seed=11 + i, **kwargs).choices[0].message.content == text


@pytest.mark.parametrize("n", [0, 129, "2", True, 1.5])
def test_bad_n_is_a_400_naming_the_field(server, n):
    with pytest.raises(openai.BadRequestError) as err:
        create(server, max_tokens=4, n=n)
    body = err.value.body
    assert body["param"] == "n"
    assert "'n' must be an integer between 1 and 128" in body["message"]
