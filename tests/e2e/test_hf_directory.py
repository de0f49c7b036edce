"""`moeserve --model DIR` serves a Hugging Face directory: the tiny random Llama of
tests/fixtures/tiny_llama (safetensors weights, tokenizer.json, chat template in
tokenizer_config.json), driven by the official openai client."""
import shutil

import openai
import pytest

from conftest import ROOT, SERVED_NAME, Server

FIXTURES = ROOT / "tests/fixtures/tiny_llama"


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("tiny_llama")
    for path in list((FIXTURES / "safetensors").iterdir()) + list((FIXTURES / "tokenizer").iterdir()):
        shutil.copy(path, model_dir / path.name)
    server = Server(model=model_dir)
    yield server
    assert server.stop() == 0, server.logs()


def test_chat_completion_from_a_hf_directory(hf_server):
    client = openai.OpenAI(base_url=hf_server.base_url + "/v1", api_key="x", max_retries=0)
    plain = client.chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": "hello"}], temperature=0,
        max_tokens=6)
    assert plain.choices[0].finish_reason == "length"
    assert plain.usage.completion_tokens == 6
    # The chat template renders "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
    # one token per byte with this tokenizer.
    assert plain.usage.prompt_tokens == len("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")
    streamed = client.chat.completions.create(
        model=SERVED_NAME, messages=[{"role": "user", "content": "hello"}], temperature=0,
        max_tokens=6, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == plain.choices[0].message.content
