"""Web service benchmark: N concurrent clients posting a 640x480 photo to `deeproot serve`.

Builds a 240 px multi-head EfficientNet-B1 bundle with random weights (no trained 240 px bundle is
shipped; latency does not depend on weight values; the exporter is `benchmarks/diagnose.py`'s,
torch.onnx from `deeproot.training.models.MultiHead`) and the demo catalog, starts
`deeproot serve --workers W` on loopback, and for each (workers, clients) pair runs closed-loop
clients (each sends its next request when the last answer arrives, keep-alive) for a fixed time.
The clients are coroutines of one event loop in this process sending one pre-built request, so
they take little of the cores the server runs on; their CPU per request is printed. Every answer
is read whole and checked: HTTP 200 and a `deeproot.diagnose/1` document with six symptoms.

- throughput (diagnoses/s answered 200), p50/p95 latency, errors (anything else);
- how the connections ended up spread over the workers, and how often the server asked a
  client to reconnect (`Connection: close` from `deeproot.web.balance`; `--no-rebalance` turns
  that off);
- memory per worker (peak RSS, VmHWM, of each worker process);
- "others": cores the rest of the machine used meanwhile (from /proc/stat, less the server and
  the clients), to tell a quiet run from one that shared the cores;
- the model alone (input -> probabilities) and the library call `diagnose()` in this process
  with the same photo and catalog, run in turn with one HTTP request to the 1-worker server
  (model, diagnose(), HTTP, model, ...: load drifting on a shared machine weighs on all three
  alike), so the server's own overhead (HTTP, multipart, queueing, JSON) = HTTP p50 -
  `diagnose()` p50, as a share of the model-only p50; and, per answer, the time the client
  waited beyond the server's own `diagnose()` call (its `Server-Timing` header), which leaves
  out what differs between two processes (caches, the other process's copy of the weights).

    .venv/bin/python benchmarks/serve.py [--seconds 10] [--clients 1,8] [--workers 1,2]
        [--no-rebalance] [--bundle DIR] [--db FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deeproot.cli.main"]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] if xs else float("nan")


def export_bundle(root: Path) -> Path:
    spec = importlib.util.spec_from_file_location("bench_diagnose", REPO / "benchmarks/diagnose.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.export_bundle(root, "multihead", 240)


def request_bytes(photo: bytes) -> bytes:
    b = uuid.uuid4().hex
    fields = [("survey_type", "건성"), ("concerns", "hair_loss"), ("categories", "shampoo"),
              ("categories", "scalp_tonic")]
    body = b"".join(
        f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields
    )
    body += (f'--{b}\r\nContent-Disposition: form-data; name="photos"; filename="scalp.jpg"\r\n'
             "Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{b}--\r\n".encode()
    head = (f"POST /api/diagnose HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data;"
            f" boundary={b}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def check_answer(status: int, body: bytes) -> str | None:
    """None when the answer is a complete diagnosis document, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}"
    try:
        doc = json.loads(body)
        photo = doc["photos"][0]
        symptoms = photo["diagnosis"]["symptoms"]
        ok = (doc["schema"] == "deeproot.diagnose/1" and photo["status"] == "diagnosed"
              and len(symptoms) == 6 and all(len(s["probabilities"]) == 3 for s in symptoms))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"not a diagnosis document ({type(exc).__name__})"
    return None if ok else "incomplete diagnosis document"


async def client(port: int, req: bytes, stop_at: float, out: list, errors: list,
                 reconnects: list[int]) -> None:
    """One closed-loop client on one keep-alive connection: send the pre-built request, read the
    whole answer, check it, send the next."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length, close, inside = 0, False, float("nan")
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    k = k.strip().lower()
                    if k == b"content-length":
                        length = int(v)
                    elif k == b"connection":
                        close = v.strip().lower() == b"close"
                    elif k == b"server-timing" and v.strip().startswith(b"diagnose;dur="):
                        inside = float(v.strip()[13:])  # ms in diagnose() itself
                body = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError, IndexError) as exc:
                errors.append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            t1 = time.perf_counter()
            problem = check_answer(status, body)
            if problem is None:
                out.append((t1, t1 - t0, inside))
            else:
                errors.append(problem)
            if close:  # the server asked for a new connection (balance.py): open one
                writer.close()
                reconnects[0] += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def connections(port: int, pids: list[int]) -> list[int]:
    """Established connections to `port` held by each of `pids` (from /proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":
                inodes.add(f[9])
    counts = []
    for pid in pids:
        n = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            n += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(n)
    return counts


def load(port: int, req: bytes, clients: int, seconds: float, warmup: float,
         pids: list[int]) -> dict:
    """`clients` closed-loop clients as coroutines of one event loop in this process (uvloop
    when installed): the load generator's own CPU is measured and reported per request."""
    import asyncio

    results: list[list] = [[] for _ in range(clients)]
    errors: list = []
    spread: list[int] = []
    reconnects = [0]

    async def run() -> None:
        t_start = time.perf_counter()
        stop_at = t_start + warmup + seconds
        tasks = [asyncio.ensure_future(client(port, req, stop_at, results[i], errors,
                                              reconnects)) for i in range(clients)]
        await asyncio.sleep(warmup)
        spread.extend(connections(port, pids))  # after the warm-up: settled
        await asyncio.gather(*tasks)

    try:
        import uvloop

        loop_run = uvloop.run
    except ImportError:
        loop_run = asyncio.run
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    loop_run(run())
    client_cpu = time.process_time() - cpu0
    lo, hi = t0 + warmup, t0 + warmup + seconds
    lat = [dt * 1000 for r in results for (t, dt, _) in r if lo <= t <= hi]
    # per answer: what the client waited beyond the diagnose() call (Server-Timing)
    beyond = [dt * 1000 - ms for r in results for (t, dt, ms) in r if lo <= t <= hi and ms == ms]
    total = sum(len(r) for r in results)
    return {"n": len(lat), "total": total, "rps": len(lat) / seconds,
            "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "p99": pct(lat, 0.99),
            "beyond_diagnose_p50": pct(beyond, 0.5),
            "errors": len(errors), "error_kinds": sorted(set(map(str, errors)))[:5],
            "client_cpu_ms": 1000 * client_cpu / max(1, total), "connections": spread,
            "reconnects": reconnects[0]}


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids = (task / "children").read_text().split()
        out += [int(k) for k in kids]
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (contention changes wall time, far less this)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_s() -> float:
    """CPU seconds all processes of this machine have used (from /proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def worker_pids(proc: subprocess.Popen, workers: int) -> list[int]:
    if workers == 1:
        return [proc.pid]
    kids = [k for k in children(proc.pid)
            if "multiprocessing" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")
            and "resource_tracker" not in Path(f"/proc/{k}/cmdline").read_text(errors="replace")]
    return kids


def serve(bundle: Path, db: Path, workers: int, port: int, queue: int,
          rebalance: bool = True) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DEEPROOT_THREADS"}
    env["DEEPROOT_SERVE_REBALANCE"] = "1" if rebalance else "0"
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--models", str(bundle), "--db", str(db),
         "--workers", str(workers), "--device", "cpu", "--queue", str(queue)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
    )
    deadline = time.monotonic() + 120
    import http.client

    ready = 0
    while ready < 3:  # a few answers in a row: every worker has started
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/health")
            ready += c.getresponse().status == 200
            c.close()
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start: {proc.stderr.read()[-2000:]}") from None
            time.sleep(0.2)
    time.sleep(1.0 if workers > 1 else 0.2)
    return proc


def in_process(bundle: Path, db: Path, photo: bytes) -> dict:
    """The model alone and `diagnose()` in this process (cores threads, as one worker has)."""
    os.environ["DEEPROOT_THREADS"] = str(len(os.sched_getaffinity(0)))
    from deeproot.diagnose import infer
    from deeproot.diagnose.bundle import load_bundle
    from deeproot.diagnose.images import PhotoInput, load_photo
    from deeproot.diagnose.service import diagnose

    b = load_bundle(bundle)
    eng = infer.engine(b, "cpu")
    img = load_photo(PhotoInput("scalp.jpg", photo), min_size=480).image
    return {
        "model": lambda: eng.predict([img]),
        "diagnose": lambda: diagnose(
            [PhotoInput("scalp.jpg", photo)], models=bundle, device="cpu", db=db,
            survey_type="건성", concerns=["hair_loss"], categories=["shampoo", "scalp_tonic"]),
    }


def http_once(port: int, req: bytes, inside: list[float]) -> Callable[[], None]:
    """One request at a time on one keep-alive connection (a plain blocking socket); the
    server's own diagnose() time of each answer (Server-Timing) goes to `inside`."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()

    def once() -> None:
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            buf.extend(s.recv(65536))
        i = buf.index(b"\r\n\r\n")
        head = bytes(buf[:i])
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        del buf[: i + 4]
        while len(buf) < length:
            buf.extend(s.recv(65536))
        body = bytes(buf[:length])
        del buf[:length]
        timing = head.lower().split(b"server-timing: diagnose;dur=")
        inside.append(float(timing[1].split(b"\r\n")[0]) if len(timing) > 1 else float("nan"))
        problem = check_answer(int(head.split(b" ", 2)[1]), body)
        if problem:
            raise SystemExit(f"overhead run: {problem}")

    return once


def interleaved(fns: dict[str, Callable[[], object]], runs: int, block: int = 10) -> dict:
    """p50/p95 (ms) of each function, run in turns of `block` calls (a x 10, b x 10, c x 10, a x
    10 ...) so that load changing on a shared machine weighs on all of them alike. The first call
    of each turn is not counted: the server and this process each hold their own copy of the
    model's weights (~30 MB for B1), and the first call after the other process ran reads them
    back into the caches (measured: 1-2 ms more when the calls alternate one by one)."""
    for _ in range(3):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, runs // (block - 1))):
        for k, fn in fns.items():
            for i in range(block):
                t = time.perf_counter()
                fn()
                if i:
                    times[k].append((time.perf_counter() - t) * 1000)
    out = {}
    for k, xs in times.items():
        out[f"{k}_p50"], out[f"{k}_p95"] = pct(xs, 0.5), pct(xs, 0.95)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--runs", type=int, default=60, help="interleaved runs for the overhead")
    ap.add_argument("--bundle", type=Path, help="a bundle instead of the random 240 px B1")
    ap.add_argument("--no-rebalance", action="store_true",
                    help="DEEPROOT_SERVE_REBALANCE=0: leave connections where the kernel put them")
    ap.add_argument("--db", type=Path, help="a catalog instead of building the demo catalog")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from deeproot.web.democatalog import build_demo_catalog

    print(f"load average {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} cores")
    tmp = Path(tempfile.mkdtemp(prefix="deeproot-bench-serve-"))
    photo = (REPO / "src/deeproot/data/demo_photo.jpg").read_bytes()  # 640x480 JPEG
    bundle = args.bundle or export_bundle(tmp / "b1-240")
    db = args.db or build_demo_catalog(tmp / "catalog")
    req = request_bytes(photo)
    fns = in_process(bundle, db, photo)
    workers = [int(x) for x in args.workers.split(",")]
    figures: dict = {"served": []}

    def show(ip: dict) -> None:
        figures["in_process"] = ip
        print(f"in process ({len(os.sched_getaffinity(0))} threads): model only p50 "
              f"{ip['model_p50']:.1f} ms (p95 {ip['model_p95']:.1f}), diagnose() with catalog p50 "
              f"{ip['diagnose_p50']:.1f} ms (p95 {ip['diagnose_p95']:.1f})")
        if "http_p50" in ip:
            over = ip["http_p50"] - ip["diagnose_p50"]
            figures["overhead_ms"] = over
            print(f"one request at a time to 1 worker, interleaved with the two above: p50"
                  f" {ip['http_p50']:.1f} ms (p95 {ip['http_p95']:.1f}); server overhead"
                  f" {ip['http_p50']:.1f} - {ip['diagnose_p50']:.1f} = {over:.1f} ms ="
                  f" {100 * over / ip['model_p50']:.0f}% of the model-only time"
                  f" ({100 * over / ip['diagnose_p50']:.0f}% of diagnose())")
            print(f"  the same requests' diagnose() call inside the server (Server-Timing): p50"
                  f" {ip['served_diagnose_p50']:.1f} ms, so they waited"
                  f" {ip['http_p50'] - ip['served_diagnose_p50']:.1f} ms beyond it")

    if 1 not in workers:
        show(interleaved(fns, args.runs))
    header = (f"{'workers':>7} {'clients':>7} {'diag/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'errors':>6} {'CPU ms/diag':>11} {'client CPU ms':>13} {'conns/worker':>12} "
              f"{'peak RSS/worker MB':>19} {'others':>6}")
    if 1 not in workers:
        print(header)
    for w in workers:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = serve(bundle, db, w, port, queue=64, rebalance=not args.no_rebalance)
        try:
            pids = worker_pids(proc, w)
            if w == 1:  # the server's own overhead: HTTP against the library, interleaved
                inside: list[float] = []
                ip = interleaved({**fns, "http": http_once(port, req, inside)}, args.runs)
                ip["served_diagnose_p50"] = pct([x for x in inside if x == x], 0.5)
                show(ip)
                print(header)
            for c in [int(x) for x in args.clients.split(",")]:
                cpu0, all0, t0 = sum(cpu_s(p) for p in pids), busy_s(), time.perf_counter()
                r = load(port, req, c, args.seconds, args.warmup, pids)
                cpu1, all1, t1 = sum(cpu_s(p) for p in pids), busy_s(), time.perf_counter()
                r["cpu_ms"] = 1000 * (cpu1 - cpu0) / max(1, r["total"])  # warm-up included
                # what the rest of the machine took meanwhile (a shared box): cores in use
                r["others_cores"] = max(0.0, (all1 - all0) - (cpu1 - cpu0)
                                        - r["client_cpu_ms"] * r["total"] / 1000) / (t1 - t0)
                mem = [hwm_kb(p) / 1024 for p in pids]
                r.update(workers=w, clients=c, rss_mb=mem)
                figures["served"].append(r)
                print(f"{w:>7} {c:>7} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} "
                      f"{r['errors']:>6} {r['cpu_ms']:>11.1f} {r['client_cpu_ms']:>13.1f} "
                      f"{'/'.join(map(str, r['connections'])):>12} "
                      f"{' / '.join(f'{m:.0f}' for m in mem):>19} {r['others_cores']:>6.2f}")
                if r["errors"]:
                    print(f"        errors: {', '.join(r['error_kinds'])}")
                if r["reconnects"]:
                    print(f"        {r['reconnects']} reconnections asked for by the server"
                          " (Connection: close, to even out the workers)")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    one = next((r for r in figures["served"] if r["workers"] == 1 and r["clients"] == 1), None)
    ip = figures.get("in_process", {})
    if one and one["beyond_diagnose_p50"] == one["beyond_diagnose_p50"] and "model_p50" in ip:
        b = one["beyond_diagnose_p50"]
        figures["overhead_per_answer_ms"] = b
        print(f"1 worker, 1 client: each answer waited p50 {b:.2f} ms beyond its own diagnose()"
              f" call (Server-Timing) = {100 * b / ip['model_p50']:.0f}% of the model-only time")
    best = min(r["cpu_ms"] for r in figures["served"])
    print(f"server CPU per diagnosis: {best:.1f} ms at best -> on {len(os.sched_getaffinity(0))}"
          f" idle cores at most {1000 * len(os.sched_getaffinity(0)) / best:.0f} diagnoses/s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(f"(median of stats: {statistics.median([r['rps'] for r in figures['served']]):.1f}"
          " diag/s over all runs)")


if __name__ == "__main__":
    main()
