"""Per-call overhead of each agent-framework integration against the same framework alone.

One run, one started `prefect server` (benchmarks/_prefect_server.py), the local fake
OpenAI server (tests/fakes) in its own process, as a provider would be. Inside one
async Prefect flow run, with one active budget (so every governed call estimates,
holds, sends, settles and writes its cost entry in the SQLite ledger), each
framework makes the same chat completion without wflo and with it, in alternating
rounds:

- pydantic-ai: ``await agent.run`` with ``OpenAIChatModel`` vs ``WfloModel(OpenAIChatModel)``;
- LiteLLM: ``litellm.acompletion`` vs ``wflo_prefect.integrations.litellm.acompletion``;
- LangChain: ``ChatOpenAI.ainvoke`` without and with ``WfloCallbackHandler``;
- OpenAI Agents SDK: ``Runner.run`` with the default client raw vs ``instrument()``-ed.

Reports the median per-call time of each, the time added per call and the ratio.

    .venv/bin/python benchmarks/bench_integrations.py [--calls 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _prefect_server import started_server

PROMPT = "Give me one sentence about budgets."
Call = Callable[[], Awaitable[object]]


def _serve(conn: object) -> None:
    """Run the fake OpenAI server in this (child) process until told to stop."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        conn.send(server.url)  # type: ignore[attr-defined]
        conn.recv()  # type: ignore[attr-defined]


async def _per_call(call: Call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls


def _pairs(base: str) -> dict[str, tuple[Call, Call, Callable[[bool], None]]]:
    """Per framework: (without wflo, with wflo, a switch run before each side)."""
    import litellm
    import openai
    from agents import Agent as SdkAgent
    from agents import Runner, set_default_openai_client, set_tracing_disabled
    from langchain_openai import ChatOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from wflo_prefect import instrument
    from wflo_prefect.integrations import litellm as wlitellm
    from wflo_prefect.integrations.langchain import WfloCallbackHandler
    from wflo_prefect.integrations.pydantic_ai import WfloModel

    def noop(_: bool) -> None:
        return None

    provider = OpenAIProvider(base_url=base, api_key="sk-bench")
    plain_agent = Agent(OpenAIChatModel("gpt-4o-mini", provider=provider))
    wflo_agent = Agent(WfloModel(OpenAIChatModel("gpt-4o-mini", provider=provider)))

    messages = [{"role": "user", "content": PROMPT}]
    kw = {"model": "openai/gpt-4o-mini", "messages": messages, "api_base": base, "api_key": "k"}

    def chat(callbacks: list[object]) -> ChatOpenAI:
        return ChatOpenAI(
            model="gpt-4o-mini",
            base_url=base,
            api_key="sk-bench",  # type: ignore[arg-type]
            max_retries=0,
            callbacks=callbacks,  # type: ignore[arg-type]
        )

    plain_chat, wflo_chat = chat([]), chat([WfloCallbackHandler()])

    set_tracing_disabled(True)
    raw_client = openai.AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)
    metered_client = instrument(
        openai.AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)
    )
    sdk_agent = SdkAgent(name="bench", model="gpt-4o-mini")

    def use_client(metered: bool) -> None:
        set_default_openai_client(metered_client if metered else raw_client, use_for_tracing=False)

    return {
        "pydantic-ai Agent.run": (
            lambda: plain_agent.run(PROMPT),
            lambda: wflo_agent.run(PROMPT),
            noop,
        ),
        "LiteLLM acompletion": (
            lambda: litellm.acompletion(**kw),
            lambda: wlitellm.acompletion(**kw),
            noop,
        ),
        "LangChain ainvoke": (
            lambda: plain_chat.ainvoke(PROMPT),
            lambda: wflo_chat.ainvoke(PROMPT),
            noop,
        ),
        "OpenAI Agents Runner.run": (
            lambda: Runner.run(sdk_agent, PROMPT),
            lambda: Runner.run(sdk_agent, PROMPT),
            use_client,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="wflo-bench-integrations-")
    os.environ["PREFECT_INTEGRATIONS_WFLO_LEDGER_URL"] = f"sqlite:///{Path(home) / 'ledger.db'}"
    parent, child = multiprocessing.Pipe()
    fake = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    fake.start()
    try:
        base = f"{parent.recv()}/v1"
        with started_server():
            from prefect import flow

            from wflo_prefect import Budget
            from wflo_prefect.costs import use_budgets
            from wflo_prefect.ledger import get_ledger

            @flow(name="bench-integrations")
            async def measure() -> dict[str, tuple[float, float]]:
                results: dict[str, tuple[float, float]] = {}
                with use_budgets(Budget(Decimal("1000000"), scope="global", name="bench")):
                    for name, (plain, governed, switch) in _pairs(base).items():
                        switch(False)
                        await _per_call(plain, 10)
                        switch(True)
                        await _per_call(governed, 10)  # warm up
                        plain_times, wflo_times = [], []
                        for _ in range(args.rounds):
                            switch(False)
                            plain_times.append(await _per_call(plain, args.calls))
                            switch(True)
                            wflo_times.append(await _per_call(governed, args.calls))
                        results[name] = (
                            statistics.median(plain_times),
                            statistics.median(wflo_times),
                        )
                return results

            results = asyncio.run(measure())
            recorded = len(get_ledger().costs.entries())
    finally:
        parent.send("stop")
        fake.join(10)
    print(
        f"{args.rounds} rounds x {args.calls} calls per side, in one flow run; "
        f"{recorded} governed calls recorded; cpus: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.2f}"
    )
    print(f"{'framework':28} {'without wflo':>13} {'with wflo':>11} {'added':>10} {'ratio':>7}")
    for name, (plain, governed) in results.items():
        print(
            f"{name:28} {plain * 1000:10.3f} ms {governed * 1000:8.3f} ms "
            f"{(governed - plain) * 1000:7.3f} ms {governed / plain:6.2f}x"
        )


if __name__ == "__main__":
    main()
