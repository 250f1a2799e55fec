"""The Python programs bench_scale starts as separate processes (run with ``python -c``)."""

__all__ = ["DRIVER", "SAVE_APPROVERS", "SPENDER", "WINDOW"]

DRIVER = """
import asyncio, json, os, sys, time
import anyio.to_thread
from prefect import flow
from wflo_prefect import arequire_approval

def rss() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

def say(**kv) -> None:
    print(json.dumps(kv), flush=True)

@flow(name="bench-scale-gate", persist_result=False)
async def gated(i: int, called: float) -> int:
    say(kind="gate", i=i, submitted=time.time() - called)
    await arequire_approval("scale gate", details={"i": i}, approvers=["ann"],
                            principals="scale-approvers", timeout=3600)
    say(kind="continued", i=i, t=time.time())
    return i

async def main(first: int, count: int) -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = count + 16
    say(kind="rss", phase="before", rss=rss())
    async def one(i: int) -> None:
        try:
            await gated(i, time.time())
            say(kind="done", i=i)
        except BaseException as exc:
            say(kind="lost", i=i, error=repr(exc)[:300])
    tasks = [asyncio.create_task(one(i)) for i in range(first, first + count)]
    await asyncio.sleep(0)
    while (await asyncio.to_thread(sys.stdin.readline)).strip() != "rss":
        pass
    say(kind="rss", phase="waiting", rss=rss())
    await asyncio.gather(*tasks)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""

SPENDER = """
import json, sys
from decimal import Decimal
from wflo_prefect.costs import Budget, BudgetExceeded, flush_leases, metered_call
budget = Budget(Decimal(sys.argv[1]), scope="global", name=sys.argv[2])
settled = refused = 0
while refused < 20:
    try:
        with metered_call("openai", "gpt-4o-mini", input_tokens=1000, max_output_tokens=1000,
                          budgets=[budget]) as call:
            call.settle(input_tokens=1000, output_tokens=800)
            settled += 1
    except BudgetExceeded:
        refused += 1
flush_leases()
print(json.dumps({"settled": settled, "refused": refused}))
"""

WINDOW = """
import json, sys
from wflo_prefect.ledger import get_ledger
[window] = get_ledger().costs.windows(sys.argv[1] + "|")
print(json.dumps({"spent": str(window.spent_usd), "reserved": str(window.reserved_usd)}))
"""

SAVE_APPROVERS = """
import sys
from wflo_prefect.approvals import Approvers, Principal, hash_api_key
Approvers(users=[Principal(name="ann", api_key_hashes=[hash_api_key(sys.argv[1])])]).save(
    "scale-approvers", overwrite=True)
"""
