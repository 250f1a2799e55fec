"""Containment: real escape attempts from inside real sandbox containers, under runc and gVisor.

Each test runs hostile code in a sandbox and asserts the attempt failed or was
contained. Where gVisor's semantics differ (its own kernel in user space: raw
sockets, ptrace and user namespaces exist *inside* it), the test asserts gVisor's
containment instead of skipping.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_net import bridge_gateway
from wflo_prefect.sandbox import DockerSandbox, SandboxConfig, SandboxConfigError
from wflo_prefect.sandbox.worker import DockerSandboxJobConfiguration

pytestmark = pytest.mark.docker

# Host servers listen on every address: the containers dial the host through its bridge.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

RUNTIMES = ["runc", "runsc"]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    """Each containment test runs under runc and under gVisor (runsc)."""
    return str(request.param)


@pytest.fixture(scope="module")
def box(runtime: str, docker_client: Any) -> Iterator[DockerSandbox]:
    """One default (network off) sandbox per runtime for the non-destructive attempts."""
    with DockerSandbox(SandboxConfig(runtime=runtime)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def gateway(docker_client: Any) -> str:
    """The host's address on Docker's default bridge (what a container would dial)."""
    return bridge_gateway(docker_client)


@pytest.fixture(scope="module")
def host_tcp() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on all host addresses that records every connection it gets."""
    seen: list[bytes] = []
    server = socket.create_server((ALL_INTERFACES, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                seen.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def run(box: DockerSandbox, code: str, **inputs: Any) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON line) in the sandbox; return that JSON."""
    result = box.run_python(code, inputs=inputs)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_outbound_tcp_is_blocked_with_network_off(
    box: DockerSandbox, gateway: str, host_tcp: tuple[int, list[bytes]]
) -> None:
    """A TCP connection to a listening host port and to a public address both fail."""
    port, seen = host_tcp
    out = run(
        box,
        """
import json, socket
res = {}
for host in (inputs["gw"], "1.1.1.1"):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, inputs["port"])); s.sendall(b"escaped"); res[host] = "connected"
    except OSError as e:
        res[host] = type(e).__name__
print(json.dumps(res))
""",
        gw=gateway,
        port=port,
    )
    assert "connected" not in out.values()
    assert b"escaped" not in seen


def test_outbound_udp_is_blocked_with_network_off(box: DockerSandbox, gateway: str) -> None:
    """A UDP datagram to a host port never arrives."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((ALL_INTERFACES, 0))
    receiver.settimeout(1.5)
    out = run(
        box,
        """
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"escaped", (inputs["gw"], inputs["port"])); r = "sent"
except OSError as e:
    r = type(e).__name__
print(json.dumps({"udp": r}))
""",
        gw=gateway,
        port=receiver.getsockname()[1],
    )
    with pytest.raises(TimeoutError):
        receiver.recvfrom(100)
    receiver.close()
    assert out["udp"] != "sent"


def test_dns_lookups_fail_with_network_off(box: DockerSandbox) -> None:
    """Names do not resolve, and a raw DNS query to a public resolver cannot be sent."""
    out = run(
        box,
        """
import json, socket
res = {}
try:
    socket.getaddrinfo("example.com", 443); res["lookup"] = "resolved"
except OSError as e:
    res["lookup"] = type(e).__name__
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
try:
    query = bytes.fromhex("123401000001000000000000" "076578616d706c6503636f6d0000010001")
    s.sendto(query, ("8.8.8.8", 53))
    s.recv(512); res["query"] = "answered"
except OSError as e:
    res["query"] = type(e).__name__
print(json.dumps(res))
""",
    )
    assert out["lookup"] != "resolved"
    assert out["query"] != "answered"


def test_only_allow_listed_hosts_are_reachable_with_network_on(
    runtime: str, gateway: str, host_tcp: tuple[int, list[bytes]], docker_client: Any
) -> None:
    """With the network on, the allowed host answers; another port, a direct dial and DNS fail.

    Under gVisor the network cannot be turned on at all on this engine: refused up front.
    """
    if runtime == "runsc":
        with pytest.raises(SandboxConfigError, match="gVisor"):
            SandboxConfig(runtime="runsc", network_enabled=True, allowed_hosts=("example.org",))
        return
    import http.server

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"allowed-answer")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((ALL_INTERFACES, 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    allowed_port = server.server_address[1]
    blocked_port, seen = host_tcp
    config = SandboxConfig(
        network_enabled=True, allowed_hosts=(f"host.docker.internal:{allowed_port}",)
    )
    try:
        with DockerSandbox(config) as networked:
            out = run(
                networked,
                """
import json, os, socket, urllib.request
def fetch(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
res = {
    "allowed": fetch("http://host.docker.internal:%d/" % inputs["ok"]),
    "other_port": fetch("http://host.docker.internal:%d/" % inputs["bad"]),
}
s = socket.socket(); s.settimeout(3)
try:
    s.connect((inputs["gw"], inputs["bad"])); s.sendall(b"escaped"); res["direct"] = "connected"
except OSError as e:
    res["direct"] = type(e).__name__
try:
    socket.getaddrinfo("example.com", 80); res["dns"] = "resolved"
except OSError as e:
    res["dns"] = type(e).__name__
proxy = os.environ["HTTPS_PROXY"].split("//")[1].split(":")
for name, port in (("tunnel", inputs["ok"]), ("tunnel_other", inputs["bad"])):
    # HTTPS goes through CONNECT tunnels: the allow-list applies to them as well.
    t = socket.create_connection((proxy[0], int(proxy[1])), timeout=5)
    t.sendall(b"CONNECT host.docker.internal:%d HTTP/1.1\\r\\n\\r\\n" % port)
    reply = t.recv(200)
    if reply.startswith(b"HTTP/1.1 200"):
        t.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        while chunk := t.recv(400):  # HTTP/1.0: the server closes when done
            reply += chunk
    res[name] = reply.decode(errors="replace")
print(json.dumps(res))
""",
                ok=allowed_port,
                bad=blocked_port,
                gw=gateway,
            )
    finally:
        server.shutdown()
    assert out["allowed"] == "allowed-answer"
    assert "403" in out["other_port"]
    assert out["tunnel"].endswith("allowed-answer")
    assert out["tunnel_other"].startswith("HTTP/1.1 403")
    assert out["direct"] != "connected"
    assert out["dns"] != "resolved"
    assert b"escaped" not in seen
    assert not docker_client.networks.list(names=[f"wflo-egress-{networked.id}"])


def test_root_file_system_is_read_only(box: DockerSandbox) -> None:
    """Writes to /, /usr and /etc fail, and / is mounted read-only."""
    out = run(
        box,
        """
import json
res = {}
for d in ("/", "/usr", "/etc", "/usr/bin"):
    try:
        open(d.rstrip("/") + "/wflo-escape", "w").write("x"); res[d] = "written"
    except OSError as e:
        res[d] = e.errno
root = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/"][0]
res["root_options"] = root[5]
print(json.dumps(res))
""",
    )
    for directory in ("/", "/usr", "/etc", "/usr/bin"):
        assert out[directory] != "written"
    assert "ro" in out["root_options"].split(",")


def test_writable_scratch_space_is_only_the_tmpfs(box: DockerSandbox) -> None:
    """The working directory and /tmp are writable (tmpfs); code runs as uid 1000."""
    result = box.run("id -u && touch /tmp/ok ./ok && echo wrote")
    assert result.stdout.split() == ["1000", "wrote"]


def test_fork_bomb_is_stopped_by_the_pids_limit(runtime: str) -> None:
    """Forking without end stops at the pids limit (gVisor: the sandbox dies, the host is fine)."""
    config = SandboxConfig(runtime=runtime, pids_limit=64, timeout_seconds=60)
    with DockerSandbox(config) as bomb_box:
        result = bomb_box.run_python(
            """
import os, time
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
    print("forked", n)
except OSError as e:
    print("stopped", n, e.errno)
"""
        )
    if result.exit_code == 0:
        words = result.stdout.split()
        assert words[0] == "stopped"
        assert int(words[1]) < 64
    else:
        # gVisor counts its own threads against the limit: the sandbox is ended (137),
        # or runsc loses the exec'd process as the sentry runs out of threads (128).
        assert runtime == "runsc"
        assert result.exit_code in (128, 137)
        assert "forked" not in result.stdout


def test_memory_bomb_is_killed_and_reported_as_oom(runtime: str) -> None:
    """Allocating past the memory limit gets the code killed, reported as OOM."""
    with DockerSandbox(SandboxConfig(runtime=runtime, memory_limit="128m")) as bomb_box:
        result = bomb_box.run_python(
            "x = []\nwhile True:\n    x.append(bytearray(10 * 1024 * 1024))\n"
        )
    assert result.oom_killed
    assert result.exit_code == 137
    assert not result.ok


def test_cpu_hog_is_held_to_its_share(runtime: str) -> None:
    """Two busy processes for 3 s on a 0.5-CPU sandbox use about half a CPU, not two."""
    with DockerSandbox(SandboxConfig(runtime=runtime, cpu_limit=0.5)) as hog_box:
        result = hog_box.run_python(
            """
import multiprocessing, time
def spin():
    end = time.time() + 3
    while time.time() < end:
        pass
procs = [multiprocessing.Process(target=spin) for _ in range(2)]
[p.start() for p in procs]; [p.join() for p in procs]
"""
        )
    assert result.exit_code == 0, result.stderr
    assert result.cpu_time_seconds is not None
    # Unconstrained this would be ~2 CPU-seconds per second of wall time.
    assert result.cpu_time_seconds / result.duration_seconds < 0.5 * 1.5


@pytest.fixture(scope="module")
def setuid_image(docker_client: Any) -> Iterator[str]:
    """The sandbox image plus a setuid-root copy of python (a real escalation vector)."""
    tag = f"wflo-sandbox-setuid-test:{uuid.uuid4().hex[:8]}"
    dockerfile = (
        "FROM wflo-sandbox:latest\nUSER 0\n"
        "RUN cp /usr/bin/python3 /usr/local/bin/supy && chmod 4755 /usr/local/bin/supy\n"
        "USER 1000:1000\n"
    )
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_setuid_binary_does_not_escalate(runtime: str, setuid_image: str) -> None:
    """A setuid-root python runs with euid 1000 (no new privileges), so it cannot write /etc."""
    with DockerSandbox(SandboxConfig(runtime=runtime, image=setuid_image)) as su_box:
        mode = su_box.run("stat -c %a:%u /usr/local/bin/supy").stdout.strip()
        result = su_box.run(
            [
                "/usr/local/bin/supy",
                "-c",
                "import os\ntry:\n open('/etc/wflo-owned','w'); w='wrote'\n"
                "except OSError as e:\n w=str(e.errno)\nprint(os.geteuid(), w)",
            ]
        )
    if runtime == "runc":
        assert mode == "4755:0"
    # gVisor's file server does not even stat the setuid file (EINVAL); it still runs, unprivileged.
    euid, wrote = result.stdout.split()
    assert euid == "1000"
    assert wrote != "wrote"


def test_mount_is_refused(box: DockerSandbox, runtime: str) -> None:
    """mount(2) fails; runc also refuses new namespaces, gVisor keeps them in its own kernel."""
    out = run(
        box,
        """
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/m", exist_ok=True)
res = {"mount": libc.mount(b"wflo-probe", b"/tmp/m", b"tmpfs", 0, None)}
res["unshare"] = libc.unshare(0x10000000 | 0x00020000)
res["mount_in_ns"] = libc.mount(b"wflo-probe", b"/tmp/m", b"tmpfs", 0, None)
res["kernel"] = os.uname().release
print(json.dumps(res))
""",
    )
    assert out["mount"] == -1
    if runtime == "runc":
        assert out["unshare"] == -1
    else:
        assert out["kernel"] == "4.4.0"  # gVisor's user-space kernel, not the host's
    assert out["mount_in_ns"] == -1
    assert "wflo-probe" not in Path("/proc/mounts").read_text()


def test_raw_sockets_cannot_reach_anything(box: DockerSandbox, runtime: str, gateway: str) -> None:
    """Raw sockets are refused (runc); under gVisor they exist but have no network to send on."""
    out = run(
        box,
        """
import json, socket
res = {}
for name, args in (("icmp", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
                   ("packet", (socket.AF_PACKET, socket.SOCK_RAW, 0))):
    try:
        s = socket.socket(*args)
    except OSError as e:
        res[name] = "refused"; continue
    try:
        if name == "icmp":
            s.sendto(b"\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00", (inputs["gw"], 0))
        else:
            s.bind(("eth0", 0))
        res[name] = "sent"
    except OSError as e:
        res[name] = "unreachable"
print(json.dumps(res))
""",
        gw=gateway,
    )
    if runtime == "runc":
        assert out == {"icmp": "refused", "packet": "refused"}
    else:
        assert "sent" not in out.values()


def test_host_files_are_not_visible(box: DockerSandbox, tmp_path_factory: Any) -> None:
    """A secret file on the host is not at its path nor anywhere in the container."""
    secret_dir = tmp_path_factory.mktemp("host-secret")
    marker = f"wflo-host-secret-{uuid.uuid4().hex}"
    (secret_dir / marker).write_text("top secret")
    out = run(
        box,
        """
import json, os
found = []
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root.startswith(("/proc", "/sys")):
        dirs[:] = []; continue
    if inputs["marker"] in files:
        found.append(root)
print(json.dumps({"exists": os.path.exists(inputs["path"]), "found": found,
                  "host_pid1": open("/proc/1/cmdline").read()}))
""",
        marker=marker,
        path=str(secret_dir / marker),
    )
    assert out["exists"] is False
    assert out["found"] == []
    # PID 1 is the container's own init, not the host's.
    assert out["host_pid1"].startswith(("/sbin/docker-init", "sleep", "/dev/init"))


def test_no_docker_socket_inside(box: DockerSandbox) -> None:
    """Neither the Docker socket nor a DOCKER_HOST is there to take over the engine."""
    out = run(
        box,
        """
import json, os
paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"]
print(json.dumps({"sockets": [p for p in paths if os.path.exists(p)],
                  "env": [k for k in os.environ if "DOCKER" in k]}))
""",
    )
    assert out == {"sockets": [], "env": []}


def test_proc_sys_is_not_writable(box: DockerSandbox) -> None:
    """Kernel parameters under /proc/sys cannot be written."""
    out = run(
        box,
        """
import json
res = {}
for p in ("/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"):
    try:
        open(p, "w").write("1"); res[p] = "written"
    except OSError as e:
        res[p] = e.errno
print(json.dumps(res))
""",
    )
    assert "written" not in out.values()


def test_ptrace_of_another_process_is_contained(box: DockerSandbox, runtime: str) -> None:
    """runc: ptrace is refused (seccomp). gVisor: it only reaches the sandbox's own processes."""
    out = run(
        box,
        """
import ctypes, json, os, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen(["sleep", "30"]); time.sleep(0.2)
res = {"attach": libc.ptrace(16, child.pid, 0, 0)}
child.kill()
cmdlines = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmdlines.append(open("/proc/%s/cmdline" % pid).read().replace("\\0", " "))
        except OSError:
            pass
res["processes"] = cmdlines
print(json.dumps(res))
""",
    )
    if runtime == "runc":
        assert out["attach"] == -1
    assert len(out["processes"]) < 10
    assert not any("pytest" in c or "dockerd" in c for c in out["processes"])


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"privileged": True}, "privileged"),
        ({"container_create_kwargs": {"cap_add": ["SYS_ADMIN"]}}, "cap_add"),
        ({"volumes": ["/:/host"]}, "volumes"),
        ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "volumes"),
        ({"volumes": ["another-workloads-volume:/data"]}, "volumes"),
        ({"network_mode": "host"}, "network_mode"),
        ({"container_create_kwargs": {"pid_mode": "host"}}, "pid_mode"),
        ({"container_create_kwargs": {"devices": ["/dev/sda:/dev/sda"]}}, "devices"),
        ({"container_create_kwargs": {"security_opt": ["seccomp=unconfined"]}}, "security_opt"),
    ],
)
def test_job_variables_that_loosen_the_sandbox_are_refused(
    variables: dict[str, Any], refused: str
) -> None:
    """The docker-sandbox job configuration refuses privileged, caps, host volumes, host network."""
    with pytest.raises(ValueError, match=f"refuses job variable `[a-z_.]*{refused}"):
        DockerSandboxJobConfiguration(**variables)


def test_sandbox_config_cannot_express_loosening_options() -> None:
    """privileged / cap_add / host mounts / devices / host network are not SandboxConfig fields."""
    for option, value in [
        ("privileged", True),
        ("cap_add", ["SYS_ADMIN"]),
        ("volumes", {"/": {"bind": "/host"}}),
        ("devices", ["/dev/kmsg"]),
        ("network_mode", "host"),
        ("pid_mode", "host"),
        ("ipc_mode", "host"),
    ]:
        with pytest.raises(SandboxConfigError, match=f"cannot express `{option}`"):
            SandboxConfig(**{option: value})
