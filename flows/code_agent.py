"""Code agent: an agent writes Python, wflo runs it in a locked-down sandbox.

The "agent" here is deterministic (a real one would ask an LLM for the code); what
matters is that the code it writes is treated as untrusted: it runs in a Docker
sandbox without network, on a read-only root, as uid 1000, with memory, CPU, pids
and time limits, and only its printed output comes back. A second, hostile snippet
shows what the sandbox stops.

Run it on its own with ``python -m flows.code_agent`` from the repository root
(needs Docker and the sandbox image: ``wflo sandbox build-image``). prefect.yaml also
deploys it to a ``docker-sandbox`` work pool: there the whole flow run is already in
a hardened container without Docker, so the generated code runs as a child process
of it (``WFLO_SANDBOXED`` is set) under the same limits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from wflo_prefect import DockerSandbox, SandboxConfig, governed_flow, governed_task

SANDBOX = SandboxConfig(memory_limit="256m", cpu_limit=0.5, pids_limit=64, timeout_seconds=30)

HOSTILE = """
import json, os, socket
attempts = {}
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3); attempts["network"] = "reached"
except OSError as e:
    attempts["network"] = "blocked: " + type(e).__name__
try:
    with open("/etc/wflo-agent-probe", "x") as probe:
        probe.write("x")
    attempts["etc"] = "written"
    os.remove("/etc/wflo-agent-probe")
except OSError as e:
    attempts["etc"] = "blocked: " + e.strerror
print(json.dumps(attempts))
"""


@governed_task
def write_code(question: str, numbers: list[float]) -> str:
    """Stand-in for an LLM call: Python that answers ``question`` about ``numbers``."""
    return (
        "import json, statistics\n"
        "xs = inputs['numbers']\n"
        "print(json.dumps({'question': inputs['question'], 'mean': statistics.mean(xs),\n"
        "                  'stdev': statistics.stdev(xs), 'max': max(xs)}))\n"
    )


BOOTSTRAP = (
    "import json, sys\n"
    "job = json.loads(sys.stdin.read())\n"
    "exec(compile(job['code'], '<generated>', 'exec'), {'inputs': job['inputs']})\n"
)


def hardened_here() -> bool:
    """This process runs unprivileged, without new privileges, on a read-only root."""
    with open("/proc/self/status") as status:
        no_new_privs = any(line.split() == ["NoNewPrivs:", "1"] for line in status)
    with open("/proc/self/mountinfo") as mounts:
        root = [line.split() for line in mounts if line.split()[4] == "/"]
    return os.getuid() != 0 and no_new_privs and bool(root) and "ro" in root[-1][5].split(",")


def run_in_this_container(code: str, inputs: dict[str, object]) -> dict[str, object]:
    """On a docker-sandbox work pool: the run's own container is the sandbox."""
    if not hardened_here():
        raise RuntimeError(
            "WFLO_SANDBOXED is set but this process is not in a hardened container; "
            "refusing to run generated code here"
        )
    done = subprocess.run(
        [sys.executable, "-I", "-c", BOOTSTRAP],
        input=json.dumps({"code": code, "inputs": inputs}),
        capture_output=True,
        text=True,
        timeout=SANDBOX.timeout_seconds,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"generated code failed (exit {done.returncode}): {done.stderr}")
    return {"answer": json.loads(done.stdout), "cpu_seconds": None, "peak_memory_bytes": None}


@governed_task(operation="execute_generated_code")
def run_code(code: str, inputs: dict[str, object]) -> dict[str, object]:
    """Run generated code in a fresh sandbox; return its JSON answer and what it used."""
    if os.environ.get("WFLO_SANDBOXED"):
        return run_in_this_container(code, inputs)
    with DockerSandbox(SANDBOX) as box:
        result = box.run_python(code, inputs=inputs)
    if not result.ok:
        raise RuntimeError(f"generated code failed (exit {result.exit_code}): {result.stderr}")
    return {
        "answer": json.loads(result.stdout),
        "cpu_seconds": result.cpu_time_seconds,
        "peak_memory_bytes": result.peak_memory_bytes,
    }


@governed_flow(name="code-agent", log_prints=True)
def code_agent(
    question: str = "summarise the latencies", numbers: list[float] | None = None
) -> dict:
    """Write code for the question, run it sandboxed, and show a hostile snippet contained."""
    data = numbers or [12.5, 14.0, 11.2, 30.1, 13.3]
    code = write_code(question, data)
    answer = run_code(code, {"question": question, "numbers": data})
    contained = run_code(HOSTILE, {})["answer"]
    print(f"answer: {answer['answer']}")
    print(f"hostile code: {contained}")
    return {"answer": answer["answer"], "hostile": contained}


if __name__ == "__main__":
    print(code_agent())
