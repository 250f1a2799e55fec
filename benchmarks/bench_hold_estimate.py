"""The pre-call hold's input estimate against true token counts, and its cost per call.

On a corpus of mixed prompts (prose, code, JSON, logs, CSV, SQL, hex ids, Chinese,
Japanese, Korean, Russian, Arabic, Hindi, emoji; tests/support/prompt_corpus.py)
at several lengths, each prompt is counted

* by the truth: for an OpenAI model its own vocabulary (o200k_base); for a
  provider whose tokenizer is not published, the most token-hungry of the four
  real vocabularies shipped (o200k, cl100k, Llama-3, Qwen), the best stand-in
  available offline;
* by the hold's estimate (``wflo_prefect.costs.tokens.text_tokens``);
* by the old estimate, characters / 4 (the baseline, measured in the same run).

Prints the error distribution of each (estimate / truth - 1: min, median, max,
how many below the truth) and the time per estimate in microseconds, beside the
baseline's. Pure CPU: no Prefect API, ledger or network is involved.

    .venv/bin/python benchmarks/bench_hold_estimate.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.prompt_corpus import corpus

from wflo_prefect.costs.clients._bound import input_bound
from wflo_prefect.costs.tokens import exact_tokenizer, text_tokens

VOCABULARIES = ("o200k_base", "cl100k_base", "llama3", "qwen3")


def _errors(estimates: list[int], truths: list[int]) -> list[float]:
    return [e / t - 1 for e, t in zip(estimates, truths, strict=True)]


def _describe(label: str, errors: list[float]) -> str:
    below = sum(1 for e in errors if e < 0)
    return (
        f"  {label:<26} min {min(errors):+7.1%}  median {statistics.median(errors):+7.1%}  "
        f"max {max(errors):+7.1%}  below truth {below}/{len(errors)}"
    )


def _per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median over 5 batches of ``rounds`` calls, in microseconds per call."""
    fn()
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        batches.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed estimates per prompt size")
    args = parser.parse_args()
    prompts = [(f"{name} x{scale}", text) for scale in (1, 4, 16) for name, text in corpus(scale)]
    o200k = exact_tokenizer("o200k_base")
    vocabularies = [exact_tokenizer(v) for v in VOCABULARIES]

    truth_openai = [int(o200k.count(t)) for _, t in prompts]
    truth_unknown = [max(int(v.count(t)) for v in vocabularies) for _, t in prompts]
    old = [math.ceil(len(t) / 4) for _, t in prompts]
    new_openai = [text_tokens(t, "openai", "gpt-4o") for _, t in prompts]
    new_unknown = [text_tokens(t, "anthropic", "claude-sonnet-4-5") for _, t in prompts]

    print(
        f"{len(prompts)} prompts, {min(len(t) for _, t in prompts)}-"
        f"{max(len(t) for _, t in prompts)} characters"
    )
    print("OpenAI gpt-4o (truth: o200k_base)")
    print(_describe("hold estimate", _errors(new_openai, truth_openai)))
    print(_describe("characters / 4 (baseline)", _errors(old, truth_openai)))
    print("Unpublished tokenizer (truth: most tokens of o200k, cl100k, Llama-3, Qwen)")
    print(_describe("hold estimate", _errors(new_unknown, truth_unknown)))
    print(_describe("characters / 4 (baseline)", _errors(old, truth_unknown)))
    worst = sorted(zip(_errors(old, truth_openai), (n for n, _ in prompts), strict=True))[:3]
    print("  baseline's worst on gpt-4o: " + ", ".join(f"{n} {e:+.0%}" for e, n in worst))

    print(f"Time per estimate (median of 5 batches of {args.rounds} calls)")
    for size, (_, sample) in (("~1k chars", prompts[14]), ("~16k chars", prompts[-2])):
        body = {"messages": [{"role": "user", "content": sample}]}
        rows = [
            ("characters / 4", lambda s=sample: math.ceil(len(s) / 4)),
            ("gpt-4o text", lambda s=sample: text_tokens(s, "openai", "gpt-4o")),
            ("gpt-4o chat body", lambda b=body: input_bound(b, ("messages",), "openai", "gpt-4o")),
            ("unpublished text", lambda s=sample: text_tokens(s, "anthropic", "claude-x")),
        ]
        timings = ", ".join(f"{label} {_per_call_us(fn, args.rounds):.1f} us" for label, fn in rows)
        print(f"  {len(sample):>6} chars ({size}): {timings}")


if __name__ == "__main__":
    main()
