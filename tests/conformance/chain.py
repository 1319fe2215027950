"""Drives a pipeline of two generated services the way the orchestrator does.

Service A (producer, method Produce) and service B (consumer, methods Consume
and ConsumePython) run on loopback ports. The orchestrator never carries data:
it executes A, polls it, reads A's output reference and passes it to B as an
input; B fetches A's result over gRPC itself (`ctx.fetch` in its handler).

Checks (each prints `ok:` or `FAIL:`; the last line is `N passed, M failed`):
  1. two A tasks run at once with different values; two B tasks, each given
     one A output, return exactly their own A's value (x-task-id), fetched
     from B over gRPC;
  2. a Python producer (a grpcio server built from a platform-style proto,
     no x-task-id support, no metadata in the input): B's ConsumePython
     fetches by `format` and returns its value;
  3. an upstream that is down: B's task fails within a bound with one line
     naming the address and the rpc, and B stays healthy.

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import httpx

POLL = 0.1


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, cond: bool, what: str, detail: str = "") -> bool:
        if cond:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f" ({detail})" if detail else ""))
        return cond


def compile_proto(proto: Path, out: Path, includes: list[Path]):
    """Compiles `proto` with grpc_tools and imports its _pb2 and _pb2_grpc modules."""
    from grpc_tools import protoc
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto.parent}"] + [f"-I{d}" for d in includes] + [
        f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", str(proto)]
    for inc in includes:
        for dep in inc.glob("*.proto"):
            args.append(str(dep))
    if protoc.main(args) != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on {proto}")
    sys.path.insert(0, str(out))
    pb2 = importlib.import_module(proto.stem + "_pb2")
    pb2_grpc = importlib.import_module(proto.stem + "_pb2_grpc")
    return pb2, pb2_grpc


def execute(http: httpx.Client, method: str, task_id: str, inputs: list, parameters: dict) -> dict:
    body = {"method": method, "workflow_id": "wf-chain", "task_id": task_id,
            "inputs": inputs, "parameters": parameters}
    resp = http.post("/control/execute", json=body)
    resp.raise_for_status()
    return resp.json()


def wait(http: httpx.Client, poll_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/control/status/{poll_id}").json()
        if status["status"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(POLL)


def output(http: httpx.Client, poll_id: str) -> dict:
    resp = http.get(f"/control/output/{poll_id}")
    resp.raise_for_status()
    return resp.json()["output"]


def fetch_b(stub, pb2, rpc: str, poll_id: str):
    request = getattr(pb2, f"{rpc}Request")()
    return getattr(stub, rpc)(request, metadata=[("x-task-id", poll_id)], timeout=10)


def serve_python_producer(pb2, pb2_grpc, value: str):
    """A platform-style Python producer: answers its latest result whatever
    x-task-id says (the Python templates have no such support)."""

    class Servicer(pb2_grpc.DataGeneratorServiceServicer):
        def GenerateData(self, request, context):
            return pb2.GenerateDataResponse(success=True, message=value)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb2_grpc.add_DataGeneratorServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: argparse.Namespace, rep: Report) -> None:
    a = httpx.Client(base_url=f"http://{args.producer_http}", timeout=30)
    b = httpx.Client(base_url=f"http://{args.consumer_http}", timeout=30)
    work = Path(tempfile.mkdtemp(prefix="chain-"))
    consumer_pb2, consumer_grpc = compile_proto(Path(args.consumer_proto), work, [])
    channel = grpc.insecure_channel(args.consumer_grpc)
    stub = getattr(consumer_grpc, f"{args.consumer_service}Stub")(channel)

    # 1. Two A tasks at once, two B tasks each chained to one of them.
    values = ["alpha", "beta"]
    a_ids = [execute(a, "Produce", f"task_a{i}", [], {"value": v, "steps": 4})["task_id"]
             for i, v in enumerate(values)]
    a_done = [wait(a, i, args.timeout) for i in a_ids]
    rep.check(all(d["status"] == "complete" for d in a_done), "both A tasks complete", str(a_done))
    a_outputs = [output(a, i) for i in a_ids]
    rep.check(all(o["metadata"]["task_id"] == i for o, i in zip(a_outputs, a_ids)),
              "A's outputs name their own poll ids")
    b_ids = [execute(b, "Consume", f"task_b{i}", [o], {})["task_id"] for i, o in enumerate(a_outputs)]
    b_done = [wait(b, i, args.timeout) for i in b_ids]
    rep.check(all(d["status"] == "complete" for d in b_done), "both B tasks complete", str(b_done))
    for value, b_id in zip(values, b_ids):
        got = fetch_b(stub, consumer_pb2, "Consume", b_id).summary
        rep.check(got == value, f"B task {b_id} returns its own A's value {value!r}", f"got {got!r}")

    # 2. A Python producer, no metadata: fetched by format.
    py_pb2, py_grpc = compile_proto(Path(args.python_proto), work, [Path(d) for d in args.python_include])
    server, port = serve_python_producer(py_pb2, py_grpc, "from python")
    try:
        ref = {"protocol": "grpc", "uri": f"127.0.0.1:{port}", "format": "GenerateData"}
        b_id = execute(b, "ConsumePython", "task_py", [ref], {})["task_id"]
        done = wait(b, b_id, args.timeout)
        rep.check(done["status"] == "complete", "B fetches from a Python producer by format", str(done))
        if done["status"] == "complete":
            got = fetch_b(stub, consumer_pb2, "ConsumePython", b_id).summary
            rep.check(got == "from python", "B returns the Python producer's value", f"got {got!r}")
    finally:
        server.stop(0)

    # 3. An upstream that is down.
    uri = f"127.0.0.1:{closed_port()}"
    ref = {"protocol": "grpc", "uri": uri, "format": "Produce", "metadata": {"task_id": "task_x.k3f9.1"}}
    started = time.monotonic()
    b_id = execute(b, "Consume", "task_down", [ref], {})["task_id"]
    done = wait(b, b_id, args.timeout)
    elapsed = time.monotonic() - started
    error = done.get("error") or ""
    rep.check(done["status"] == "failed", "B's task fails when its upstream is down", str(done))
    rep.check(uri in error and "Produce" in error and "\n" not in error,
              "the error is one line naming the address and the rpc", error)
    rep.check(elapsed < args.down_bound, f"it fails within {args.down_bound}s", f"{elapsed:.1f}s")
    health = b.get("/health")
    rep.check(health.status_code == 200, "B stays healthy", str(health.status_code))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--producer-http", required=True)
    p.add_argument("--consumer-http", required=True)
    p.add_argument("--consumer-grpc", required=True)
    p.add_argument("--consumer-proto", required=True)
    p.add_argument("--consumer-service", required=True)
    p.add_argument("--python-proto", required=True)
    p.add_argument("--python-include", action="append", default=[])
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--down-bound", type=float, default=20)
    args = p.parse_args()
    for addr in [args.producer_http, args.consumer_http, args.consumer_grpc]:
        if not addr.startswith("127.0.0.1:"):
            print(f"refusing a non-loopback address {addr}")
            return 2
    rep = Report()
    try:
        run(args, rep)
    except Exception as e:  # a crash is a failure, with its reason
        rep.check(False, "the drive ran to the end", f"{type(e).__name__}: {e}")
    print(f"{rep.passed} passed, {rep.failed} failed")
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
