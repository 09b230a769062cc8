"""What every benchmark shares: a meetnow server in its own process, the load generator in another,
CPU time and memory read from /proc, percentiles, and the machine's description.

Everything listens on 127.0.0.1 and every process started here is stopped by the code that
started it (``try``/``finally``), also when a run fails.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20

SERVER_ENV = {
    "MEETNOW_ICE_HOST_ADDRESSES": "127.0.0.1",
    # One relay process (one core), if the setting exists; unknown MEETNOW_ variables are ignored.
    "MEETNOW_RELAY_WORKERS": "0",
    "MEETNOW_ROOM_MAX_PARTICIPANTS": "200",
    "MEETNOW_METRICS_LISTEN": "",  # several servers may run at once; none takes the default port
    # Never the developer's data dir: a run makes thousands of rooms, and a store filled by earlier
    # runs would turn this run's rooms away (the durable store is off the forwarding path).
    "MEETNOW_STORE": "memory",
    "PYTHONUNBUFFERED": "1",
}


class InvalidMeasurement(RuntimeError):
    """A benchmark measured something other than what it names (refused commands, cards never
    posted): it fails rather than report a figure."""


CPU_WINDOW_SECONDS = 10
"""Server and generator CPU are read over the last this many seconds of the loadtest's window."""

PROGRESS_LINE = re.compile(r"^\s*\d+s\s+video streams")
"""A per-second line of ``meetnow loadtest`` (the measured window); "joined k/N" lines come before."""


def say(text: str) -> None:
    """Print a figure or a step as it happens."""
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """This process's environment without MEETNOW_ settings, with the repository importable from
    any working directory: a benchmark measures the defaults it states, not the shell's."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("MEETNOW_")}
    return {**kept, "PYTHONPATH": str(REPO)}


def meetnow_command() -> list[str]:
    """The ``meetnow`` console script of this interpreter's environment (or the module)."""
    script = Path(PYTHON).parent / "meetnow"
    return [str(script)] if script.exists() else [PYTHON, "-m", "meetnow.cli"]


# ------------------------------------------------------------------ /proc


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: split after its closing one.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now (relay worker processes, if any)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_total_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``, its descendants alive now, and every descendant already reaped
    (counted in its parent's cutime/cstime), so a child that exits does not make the sum drop."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLOCK_TICKS


class OtherLoad:
    """CPU used on this machine by everything that is not this benchmark or a process it started
    (another user's build or test, the kernel's own work): a noisy neighbour shows up here."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        busy, _ = machine_cpu_seconds()
        return time.monotonic(), busy, tree_total_cpu_seconds(os.getpid())

    def percent(self) -> float:
        """Since construction, % of one core."""
        end = self._read()
        seconds = end[0] - self._start[0]
        if seconds <= 0:
            return 0.0
        other = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, 100 * other / seconds)


def rss_mib(pid: int) -> float:
    """Resident memory of one process (VmRSS), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mib(pid: int) -> float:
    return sum(rss_mib(p) for p in process_tree(pid))


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return inodes


def udp_drops(pids: list[int]) -> dict[str, int]:
    """Datagrams the kernel dropped so far on each of these processes' open UDP sockets (receive
    buffer full: the process did not read fast enough), by socket inode, from the ``drops``
    column of /proc/net/udp."""
    inodes = _socket_inodes(pids)
    drops: dict[str, int] = {}
    for table_file in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for row in Path(table_file).read_text().splitlines()[1:]:
                fields = row.split()
                if len(fields) > 12 and fields[9] in inodes:
                    drops[fields[9]] = int(fields[12])
    return drops


def drops_between(before: dict[str, int], after: dict[str, int]) -> int:
    """Drops in between, on the sockets open at the end (a socket closed meanwhile is left out)."""
    return sum(count - before.get(inode, 0) for inode, count in after.items())


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS
    return 0.0, 0.0


def udp_receive_errors() -> int:
    """Datagrams dropped machine-wide because a socket's receive buffer was full (/proc/net/snmp)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        rows = [r for r in Path("/proc/net/snmp").read_text().splitlines() if r.startswith("Udp:")]
        names, values = rows[0].split(), rows[1].split()
        return int(values[names.index("RcvbufErrors")])
    return 0


NOISY_PERCENT = 25.0
"""Other load (% of a core) above which a measurement is taken again once the machine is quiet."""


WAIT_BUDGET_SECONDS = 180.0
"""All waits for a quiet machine in one run together, at most: the suite stays bounded."""
_waited = [0.0]


def wait_for_quiet(max_wait: float, threshold: float = NOISY_PERCENT) -> float:
    """Wait (at most ``max_wait`` seconds, and within the run's ``WAIT_BUDGET_SECONDS``) until
    other processes use less than ``threshold`` % of a core over 3 s; returns the last reading.
    Shared machines run other people's tests."""
    started = time.monotonic()
    deadline = started + min(max_wait, max(0.0, WAIT_BUDGET_SECONDS - _waited[0]))
    try:
        while True:
            other = OtherLoad()
            time.sleep(3)
            load = other.percent()
            if load < threshold or time.monotonic() >= deadline:
                return load
            say(f"  (other processes use {load:.0f}% of a core: waiting for a quieter machine)")
            time.sleep(5)
    finally:
        _waited[0] += time.monotonic() - started


def waited_seconds() -> float:
    """Time spent so far waiting for a quiet machine."""
    return _waited[0]


# ------------------------------------------------------------------ the server


@dataclass
class ServerProcess:
    """A meetnow server in its own process, listening on 127.0.0.1."""

    base_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time of the server and any worker processes it started."""
        return tree_cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return tree_rss_mib(self.pid)

    def process_count(self) -> int:
        return len(process_tree(self.pid))

    def create_room(self, topic: str | None = None) -> str:
        """POST /api/rooms; returns the room link."""
        body = json.dumps({"topic": topic} if topic else {}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/api/rooms",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /api/rooms: HTTP {response.status}")
            room_id: str = json.loads(response.read())["id"]
        return f"{self.base_url}/r/{room_id}"

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGINT (Ctrl-C), then SIGKILL after ``grace`` seconds; children of it too."""
    if process.poll() is None:
        descendants = [p for p in process_tree(process.pid) if p != process.pid]
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_server(
    module: str | None = None, env: dict[str, str] | None = None, timeout: float = 30.0
) -> ServerProcess:
    """Start ``meetnow serve`` (or ``python -m module --port P``, a wrapper that runs it) and wait
    for "meetnow is running" on its first line of output."""
    port = free_port()
    command = (
        [PYTHON, "-m", module, "--port", str(port)]
        if module
        else [*meetnow_command(), "serve", "--port", str(port)]
    )
    process = subprocess.Popen(
        command,
        cwd=tempfile.gettempdir(),  # no .env of the developer's is read
        env={**clean_environment(), **SERVER_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"server did not start within {timeout:.0f} s") from None
            if line is None:
                raise RuntimeError("server exited at start:\n" + "".join(server.output[-20:]))
            if "meetnow is running" in line:
                return server
    except BaseException:
        server.stop()
        raise


@contextlib.contextmanager
def running_server(
    module: str | None = None, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = start_server(module, env)
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ the load generator


@dataclass
class Sample:
    """Taken when the load generator printed a progress line."""

    at: float
    line: str
    server_cpu: float
    generator_cpu: float
    server_rss_mib: float
    server_drops: dict[str, int]
    generator_drops: dict[str, int]
    machine_busy: float
    steal: float
    machine_drops: int


HELD_MIN_FPS = 28.0
"""Least fps over the measured window of every single video stream of a room held at 30 fps."""

HELD_MAX_LOSS_PERCENT = 1.0
"""Most packet loss over the measured window of a room held at 30 fps."""


@dataclass
class LoadRun:
    """One ``meetnow loadtest`` run against a server, and what the server used meanwhile."""

    participants: int
    summary: dict[str, Any] | None
    """The loadtest's ``--json`` output (None if it printed none)."""
    window_s: float
    """Length of the window CPU was sampled over (the loadtest's measured window, less ~1 s)."""
    server_cpu_percent: float
    """Server CPU over the window, % of one core (all its processes)."""
    generator_cpu_percent: float
    """Load generator CPU over the window, % of one core."""
    server_rss_before_mib: float
    """Server RSS with the room created and nobody in it."""
    server_rss_during_mib: float
    """Server RSS at the end of the measured window, everyone connected."""
    server_processes: int
    server_udp_drops: int
    """Datagrams dropped by the kernel on the server's sockets during the window (buffer full)."""
    generator_udp_drops: int
    """The same on the load generator's sockets."""
    machine_udp_drops: int
    """Receive-buffer drops on every socket of the machine during the window."""
    other_cpu_percent: float
    """CPU used by everything but the server and the generator during the window, % of one core
    (this benchmark process, the kernel, anything else running: a noisy neighbour shows here)."""
    steal_percent: float
    """CPU stolen by the hypervisor during the window, % of one core (machine-wide)."""
    returncode: int | None
    wall_s: float
    stderr_tail: list[str]

    @property
    def video_streams(self) -> int:
        return self.participants * (self.participants - 1)

    def held(self, min_fps: float = HELD_MIN_FPS) -> bool:
        """Whether the room held 30 fps: see :func:`room_failures`, the one rule."""
        return self.summary is not None and not room_failures(self.summary, min_fps)

    def failure(self, min_fps: float = HELD_MIN_FPS) -> str:
        """Why it did not hold ("" if it did)."""
        if self.summary is None:
            return f"no result (exit {self.returncode}): {' | '.join(self.stderr_tail[-3:])}"
        return ", ".join(room_failures(self.summary, min_fps))


def room_failures(
    summary: dict[str, Any],
    min_fps: float = HELD_MIN_FPS,
    max_loss_percent: float = HELD_MAX_LOSS_PERCENT,
) -> list[str]:
    """Why a ``meetnow loadtest --json`` summary is not a room held at 30 fps (empty: held).

    Held means, over the loadtest's measured window: every video stream at ``min_fps`` or more
    (the slowest stream, not the mean), no freeze (gaps over 0.5 s, trailing ones at the end of
    the window included), every expected stream arrived, loss at most ``max_loss_percent``, and
    no error message from the server."""
    why = []
    if summary["video_fps_min"] < min_fps:
        why.append(f"fps min {summary['video_fps_min']} (mean {summary['video_fps_mean']})")
    if summary["freezes"]:
        frozen = summary.get("freeze_seconds")
        why.append(f"{summary['freezes']} freezes" + (f" ({frozen} s)" if frozen else ""))
    if summary["streams_received"] != summary["streams_expected"]:
        why.append(f"streams {summary['streams_received']}/{summary['streams_expected']}")
    elif summary["video_streams_received"] != summary["video_streams_expected"]:
        why.append(
            f"video streams {summary['video_streams_received']}/{summary['video_streams_expected']}"
        )
    if summary["loss_percent"] > max_loss_percent:
        why.append(f"loss {summary['loss_percent']}%")
    if summary["errors"]:
        why.append(f"{summary['errors']} errors")
    return why


def run_load(
    server: ServerProcess,
    room_url: str,
    participants: int,
    duration: float,
    extra_args: Sequence[str] = (),
) -> LoadRun:
    """Run ``meetnow loadtest ROOM_URL -n N --duration S --json`` (and ``extra_args``) in its own
    process and sample the server's and the generator's CPU on each of its per-second progress
    lines."""
    rss_before = server.rss_mib()
    command = [
        *meetnow_command(),
        "loadtest",
        room_url,
        "-n",
        str(participants),
        "--duration",
        str(duration),
        "--json",
        *extra_args,
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    samples: list[Sample] = []
    stderr: list[str] = []
    stdout: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line.rstrip())
            if PROGRESS_LINE.match(line):
                samples.append(
                    Sample(
                        time.monotonic(),
                        line.strip(),
                        server.cpu_seconds(),
                        cpu_seconds(process.pid),
                        server.rss_mib(),
                        udp_drops(process_tree(server.pid)),
                        udp_drops([process.pid]),
                        *machine_cpu_seconds(),
                        udp_receive_errors(),
                    )
                )

    def read_stdout() -> None:
        assert process.stdout is not None
        stdout.extend(process.stdout)

    readers = [
        threading.Thread(target=read_stderr, daemon=True),
        threading.Thread(target=read_stdout, daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=90 + 2.5 * participants + duration)
    except subprocess.TimeoutExpired:
        stderr.append("benchmark: loadtest timed out")
    finally:
        stop_process(process, grace=5)
        for reader in readers:
            reader.join(timeout=5)
    summary: dict[str, Any] | None = None
    for line in stdout:
        if line.startswith("{"):
            summary = json.loads(line)
    # The last CPU_WINDOW_SECONDS of the loadtest's window: the first seconds after the last join
    # still carry its renegotiations, keyframe requests and retransmissions.
    window = server_cpu = generator_cpu = steal = other = 0.0
    server_drops = generator_drops = machine_drops = 0
    if len(samples) >= 2:
        first, last = samples[max(0, len(samples) - 1 - CPU_WINDOW_SECONDS)], samples[-1]
        window = last.at - first.at
        server_drops = drops_between(first.server_drops, last.server_drops)
        generator_drops = drops_between(first.generator_drops, last.generator_drops)
        machine_drops = last.machine_drops - first.machine_drops
        if window > 0:
            steal = 100 * (last.steal - first.steal) / window
            busy = 100 * (last.machine_busy - first.machine_busy) / window
            server_cpu = 100 * (last.server_cpu - first.server_cpu) / window
            generator_cpu = 100 * (last.generator_cpu - first.generator_cpu) / window
            other = max(0.0, busy - server_cpu - generator_cpu)
    return LoadRun(
        participants=participants,
        summary=summary,
        window_s=window,
        server_cpu_percent=server_cpu,
        generator_cpu_percent=generator_cpu,
        server_rss_before_mib=rss_before,
        server_rss_during_mib=samples[-1].server_rss_mib if samples else 0.0,
        server_processes=server.process_count(),
        server_udp_drops=server_drops,
        generator_udp_drops=generator_drops,
        machine_udp_drops=machine_drops,
        other_cpu_percent=other,
        steal_percent=steal,
        returncode=process.returncode,
        wall_s=time.monotonic() - started,
        stderr_tail=stderr[-5:],
    )


def measure_room(
    participants: int,
    duration: float,
    module: str | None = None,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> LoadRun:
    """A fresh server, one room, one loadtest (with ``extra_args``)."""
    with running_server(module, env) as server:
        room_url = server.create_room(f"benchmark {participants}")
        time.sleep(0.5)  # let the server settle before the empty-room RSS is read
        return run_load(server, room_url, participants, duration, extra_args)


# ------------------------------------------------------------------ numbers


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ the machine


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def source_commit() -> str:
    """The commit the measured code is at (``+ local changes`` if the tree differs from it)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" + local changes" if dirty else "")


def chromium_version() -> str:
    try:
        out = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * PAGE_MIB / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "aiortc": _version("aiortc"),
        "aiohttp": _version("aiohttp"),
        "PyAV": _version("av"),
        "Playwright": _version("playwright"),
        "Chromium": chromium_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "meetnow commit": source_commit(),
    }
