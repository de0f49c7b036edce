"""`moeserve --chat-template FILE` renders chats with a published template file instead of the
model's own: the tiny byte-level Llama of tests/fixtures/tiny_llama (one token per byte, no
BOS/EOS tokens) with Mixtral-Instruct's template, checked against jinja2's rendering in
tests/fixtures/published_chat_template_cases.json."""
import json
import shutil
import subprocess

import openai
import pytest

from conftest import BIN, ROOT, SERVED_NAME, Server

FIXTURES = ROOT / "tests/fixtures"
TEMPLATE = FIXTURES / "chat_templates/mixtral_instruct.jinja"


@pytest.fixture(scope="module")
def mixtral_server(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("tiny_llama")
    tiny = FIXTURES / "tiny_llama"
    for path in list((tiny / "safetensors").iterdir()) + list((tiny / "tokenizer").iterdir()):
        shutil.copy(path, model_dir / path.name)
    server = Server("--chat-template", str(TEMPLATE), model=model_dir)
    yield server
    assert server.stop() == 0, server.logs()


def jinja2_prompt(conversation: str) -> tuple[list, str]:
    """The conversation and jinja2's rendering of it, less the "<s>" the fixture's bos_token
    wrote (this tokenizer has none; the conversations chosen have no eos_token)."""
    fixture = json.loads((FIXTURES / "published_chat_template_cases.json").read_text())
    case = next(c for c in fixture["cases"] if c["template"] == "mixtral_instruct"
                and c["conversation"] == conversation and c["add_generation_prompt"])
    assert case["expected"].startswith("<s>") and "</s>" not in case["expected"]
    return fixture["conversations"][conversation], case["expected"][len("<s>"):]


@pytest.mark.parametrize("conversation", ["user", "system_user", "system_newlines"])
def test_prompt_is_the_template_files_rendering(mixtral_server, conversation):
    messages, prompt = jinja2_prompt(conversation)
    client = openai.OpenAI(base_url=mixtral_server.base_url + "/v1", api_key="x", max_retries=0)
    resp = client.chat.completions.create(model=SERVED_NAME, messages=messages, temperature=0,
                                          max_tokens=1)
    # One token per byte: the prompt's length is the rendered string's byte count, which
    # differs from the model's own ChatML template (e.g. " [INST] " framing, "\n\n" joins).
    assert resp.usage.prompt_tokens == len(prompt.encode())


def test_a_conversation_the_template_rejects_is_a_400(mixtral_server):
    client = openai.OpenAI(base_url=mixtral_server.base_url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=SERVED_NAME, max_tokens=1,
            messages=[{"role": "assistant", "content": "first"}, {"role": "user", "content": "x"}])
    assert "After the optional system message, conversation roles must alternate" in str(err.value)


def test_missing_template_file_fails_startup_naming_the_flag(tmp_path):
    missing = tmp_path / "no-such-template.jinja"
    proc = subprocess.run([str(BIN), "--model", str(FIXTURES / "tiny_llama/safetensors"),
                           "--chat-template", str(missing), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    out = proc.stdout + proc.stderr
    assert "--chat-template" in out and str(missing) in out
