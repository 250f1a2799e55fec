"""The cost of wflo's instrumentation per governed task: spans and their export, on vs off.

Against a started `prefect server` (the baseline a user runs), each round runs a flow of
N sequential governed tasks, each making one metered LLM call (``record_llm_usage``
under a flow-run budget: a ``chat {model}`` span with cost and budget left), under each
variant, in alternating order:

- ``off``: a no-op tracer provider injected (no span is recorded, no budget-left query);
- ``default``: wflo's private provider, spans recorded for their ids, exported nowhere;
- ``otlp``: spans exported over OTLP/HTTP (batched) to a receiver on loopback;
- ``otlp + ledger``: also kept in the ledger by the ledger span sink.

A plain Prefect task is printed for reference. Medians per task, absolute and as a ratio
to ``off``; besides wall time, this process's CPU per task (Prefect's client, wflo, the
exporters' threads), which shows what wall time hides.

    .venv/bin/python benchmarks/bench_instrumentation.py [--tasks 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _prefect_server import quiet_console, started_server


class _Receiver(ThreadingHTTPServer):
    spans = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        self.server.spans += sum(
            len(s.spans) for r in request.resource_spans for s in r.scope_spans
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def receiver() -> Iterator[_Receiver]:
    """An OTLP/HTTP receiver on loopback that counts the spans it gets."""
    server = _Receiver(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


VARIANT_ENV = {
    "off": {},
    "default": {},
    "otlp": {"PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER": "otlp_http"},
    "otlp + ledger": {
        "PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER": "otlp_http",
        "PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER": "true",
    },
}


def use_variant(name: str, endpoint: str) -> None:
    """Point wflo's tracing at the variant's setup (a fresh provider each time)."""
    from opentelemetry import trace

    from wflo_prefect.observability import tracing

    for key in (
        "PREFECT_INTEGRATIONS_WFLO_TRACING_EXPORTER",
        "PREFECT_INTEGRATIONS_WFLO_TRACING_LEDGER",
    ):
        os.environ.pop(key, None)
    os.environ.update(VARIANT_ENV.get(name, {}))
    os.environ["PREFECT_INTEGRATIONS_WFLO_TRACING_ENDPOINT"] = endpoint
    tracing.reset_tracing()
    tracing.set_tracer_provider(trace.NoOpTracerProvider() if name == "off" else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    quiet_console()

    with started_server() as api, receiver() as otlp:
        from prefect import flow, task

        from wflo_prefect import Budget, governed_flow, governed_task, record_llm_usage
        from wflo_prefect.observability import tracing
        from wflo_prefect.testing import temporary_ledger

        def call_llm(i: int) -> int:
            record_llm_usage("openai", "gpt-4o-mini", input_tokens=1000 + i, output_tokens=200)
            return i

        plain_task = task(lambda i: i, name="plain")
        governed = governed_task(call_llm, name="call_llm")

        @flow(name="plain-reference")
        def plain_flow(n: int) -> int:
            return sum(plain_task(i) for i in range(n))

        @governed_flow(name="instrumented", budget=Budget("1000", scope="flow_run"))
        def governed_flow_(n: int) -> int:
            return sum(governed(i) for i in range(n))

        endpoint = f"http://127.0.0.1:{otlp.server_address[1]}/v1/traces"
        runs: list[tuple[str, Callable[[int], int]]] = [("plain prefect task", plain_flow)]
        runs += [(name, governed_flow_) for name in VARIANT_ENV]
        times: dict[str, list[float]] = {name: [] for name, _ in runs}
        cpu: dict[str, list[float]] = {name: [] for name, _ in runs}
        print(f"Prefect API: started server at {api}")
        print(f"flow of {args.tasks} sequential tasks, {args.rounds} rounds, medians")
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        for round_ in range(args.rounds + 1):  # round 0 warms every path up
            order = runs if round_ % 2 == 0 else list(reversed(runs))
            for name, fn in order:
                use_variant(name, endpoint)
                with temporary_ledger():
                    fn(2)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn(args.tasks)
                    assert tracing.flush_tracing()  # the export is part of the cost
                    elapsed = time.perf_counter() - start
                    used = time.process_time() - start_cpu
                if round_:
                    times[name].append(elapsed / args.tasks)
                    cpu[name].append(used / args.tasks)
        use_variant("default", endpoint)
        base = statistics.median(times["off"])
        base_cpu = statistics.median(cpu["off"])
        print("\nvariant                  wall per task             client CPU per task")
        for name, samples in times.items():
            median = statistics.median(samples)
            used = statistics.median(cpu[name])
            print(
                f"  {name:22} {median * 1000:6.2f} ms {median / base:6.3f}x"
                f"   {used * 1000:6.2f} ms ({(used - base_cpu) * 1000:+5.2f}) "
                f"{used / base_cpu:6.3f}x"
            )
        print(f"\nspans received by the OTLP receiver: {otlp.spans}")
        print("ratios are to `off` (governed, no spans recorded).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
