#!/usr/bin/env python3
"""Conformance driver: talks to a generated service the way the reference
orchestrator does (the contract in svcgen-runtime/docs/contract.md), then checks the gRPC side.

The control client and its pydantic models mirror the AI-Effect workflow
orchestrator (IRESI-EU/ai-effect-wp3):
  orchestrator/src/services/control_client.py  ExecuteRequest/ExecuteResponse/
      StatusResponse/OutputResponse, one httpx.Client(timeout=30) per call,
      `json=request.model_dump(mode="json")`, status >= 400 is an error, the
      body is validated with `model_validate` and any exception fails the task
  orchestrator/src/services/worker.py          execute -> failed | complete
      (output taken from the execute response) | running (poll status with the
      returned task_id until complete, then GET output; failed raises)
  orchestrator/src/models/data_reference.py    DataReference (frozen, Protocol
      enum, validators for uri/size_bytes/checksum/uri-per-protocol)
On top of what the orchestrator validates, this driver is stricter where
the contract is (integer progress 0..100 that never decreases, running carries a
URL-safe task_id, error bodies are {"detail": ...}).

One divergence is deliberate and reported: the indexed orchestrator versions
type DataReference.format as an enum (json|csv|parquet|protobuf|binary|xml),
while the contract makes `format` the method name. By default `format` is a
string here (the contract); --orchestrator-format-enum makes the enum a check.

Usage:
  python3 orchestrator.py --base-url http://127.0.0.1:8080 --method TrainModel \
      --proto proto/demo_svc.proto --proto-package demo_svc --proto-service DemoSvc \
      [--grpc-addr 127.0.0.1:50051] [--api-key KEY] [--timeout 60]
Prints `ok: ...` / `FAIL: ...` per check and `N passed, M failed`; exit 0 only
if every check passed (2 on bad usage).
"""

from __future__ import annotations

import argparse
import base64
import importlib
import ipaddress
import json
import re
import sys
import tempfile
import time
import uuid
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

POLL_INTERVAL = 0.2  # seconds (the orchestrator's worker uses 5 s)
REQUEST_TIMEOUT = 30.0  # ControlClient default
GRPC_CALL_TIMEOUT = 10.0
POLL_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
LOOPBACK_NAMES = {"localhost"}


# --------------------------------------------------------------------------
# Models mirrored from orchestrator/src/models/data_reference.py
# --------------------------------------------------------------------------


class Protocol(str, Enum):
    S3 = "s3"
    HTTP = "http"
    HTTPS = "https"
    NFS = "nfs"
    GRPC = "grpc"
    MQTT = "mqtt"
    VILLAS = "villas"
    INLINE = "inline"
    FILE = "file"


class Format(str, Enum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    PROTOBUF = "protobuf"
    BINARY = "binary"
    XML = "xml"


class _DataReferenceBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    uri: str
    schema_uri: str | None = None
    size_bytes: int | None = None
    checksum: str | None = None
    metadata: dict[str, Any] = {}

    @field_validator("uri")
    @classmethod
    def validate_uri_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("uri must not be empty")
        return v

    @field_validator("size_bytes")
    @classmethod
    def validate_size_bytes(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("size_bytes must be non-negative")
        return v

    @field_validator("checksum")
    @classmethod
    def validate_checksum(cls, v: str | None) -> str | None:
        if v is not None:
            if ":" not in v:
                raise ValueError("checksum must be algorithm:value format")
            alg, val = v.split(":", 1)
            if not alg or not val:
                raise ValueError("checksum algorithm and value required")
        return v

    @model_validator(mode="after")
    def validate_uri_for_protocol(self):
        uri, protocol = self.uri, self.protocol
        if protocol == Protocol.S3 and not uri.startswith("s3://"):
            raise ValueError("S3 URI must start with s3://")
        if protocol == Protocol.HTTP and not uri.startswith("http://"):
            raise ValueError("HTTP URI must start with http://")
        if protocol == Protocol.HTTPS and not uri.startswith("https://"):
            raise ValueError("HTTPS URI must start with https://")
        if protocol == Protocol.NFS and ":" not in uri:
            raise ValueError("NFS URI must be host:path format")
        if protocol == Protocol.MQTT and not uri.startswith(("mqtt://", "mqtts://")):
            raise ValueError("MQTT URI must start with mqtt:// or mqtts://")
        if protocol == Protocol.INLINE:
            try:
                base64.b64decode(uri, validate=True)
            except Exception as e:
                raise ValueError("INLINE uri must be valid base64") from e
        return self


class OrchestratorDataReference(_DataReferenceBase):
    """Exactly the indexed orchestrator's model: `format` is the Format enum."""

    format: Format


class DataReference(_DataReferenceBase):
    """contract: `format` is a string (the method name for grpc outputs)."""

    format: str


# --------------------------------------------------------------------------
# Models mirrored from orchestrator/src/services/control_client.py
# --------------------------------------------------------------------------


class ExecuteRequest(BaseModel):
    """Body of POST /control/execute. The orchestrator sends no `parameters`."""

    model_config = ConfigDict(frozen=True)

    method: str
    workflow_id: str
    task_id: str
    inputs: list[OrchestratorDataReference] = []

    @field_validator("method")
    @classmethod
    def method_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("method is required")
        return v

    @field_validator("workflow_id")
    @classmethod
    def workflow_id_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("workflow_id is required")
        return v

    @field_validator("task_id")
    @classmethod
    def task_id_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("task_id is required")
        return v


def _response_models(ref: type[BaseModel]):
    class ExecuteResponse(BaseModel):
        model_config = ConfigDict(frozen=True)
        status: Literal["complete", "running", "failed"]
        task_id: str | None = None
        output: ref | None = None  # type: ignore[valid-type]
        error: str | None = None

    class StatusResponse(BaseModel):
        model_config = ConfigDict(frozen=True)
        status: Literal["running", "complete", "failed"]
        progress: int | None = None
        error: str | None = None

    class OutputResponse(BaseModel):
        model_config = ConfigDict(frozen=True)
        output: ref  # type: ignore[valid-type]

    return ExecuteResponse, StatusResponse, OutputResponse


ExecuteResponse, StatusResponse, OutputResponse = _response_models(DataReference)
OrchExecuteResponse, OrchStatusResponse, OrchOutputResponse = _response_models(
    OrchestratorDataReference
)


# Stricter layer (the contract), applied to the raw JSON after the above.
class StrictStatus(BaseModel):
    model_config = ConfigDict(strict=True)
    status: Literal["running", "complete", "failed"]
    progress: StrictInt = Field(ge=0, le=100)
    error: StrictStr | None = None


class StrictRunning(BaseModel):
    model_config = ConfigDict(strict=True)
    status: Literal["running"]
    task_id: StrictStr = Field(pattern=POLL_ID_RE.pattern)


class ErrorBody(BaseModel):
    model_config = ConfigDict(strict=True)
    detail: StrictStr


class ControlClientError(Exception):
    pass


# --------------------------------------------------------------------------
# Control client (same calls and error handling as the orchestrator's)
# --------------------------------------------------------------------------


class ControlClient:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = REQUEST_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _headers(self, auth: bool | str = True) -> dict[str, str]:
        if isinstance(auth, str):
            return {"Authorization": f"Bearer {auth}"}
        if auth and self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def raw(self, verb: str, path: str, auth: bool | str = True, **kw) -> httpx.Response:
        # trust_env=False: never route loopback traffic through a proxy.
        with httpx.Client(timeout=self.timeout, trust_env=False) as c:
            return c.request(verb, self.base_url + path, headers=self._headers(auth) | kw.pop("headers", {}), **kw)

    def _call(self, verb: str, path: str, model: type[BaseModel], **kw):
        try:
            resp = self.raw(verb, path, **kw)
        except httpx.ConnectError as e:
            raise ControlClientError(f"Connection failed: {e}") from e
        except httpx.TimeoutException as e:
            raise ControlClientError(f"Request timed out: {e}") from e
        except httpx.RequestError as e:
            raise ControlClientError(f"Request failed: {e}") from e
        if resp.status_code >= 400:
            raise ControlClientError(f"HTTP {resp.status_code}: {resp.text}")
        try:
            data = resp.json()
            return model.model_validate(data), data
        except Exception as e:
            raise ControlClientError(f"Invalid response: {e}") from e

    def execute(self, req: ExecuteRequest):
        return self._call("POST", "/control/execute", ExecuteResponse, json=req.model_dump(mode="json"))

    def get_status(self, poll_id: str):
        if not poll_id or not poll_id.strip():
            raise ControlClientError("task_id is required (the orchestrator raises ValueError here)")
        return self._call("GET", f"/control/status/{poll_id}", StatusResponse)

    def get_output(self, poll_id: str):
        return self._call("GET", f"/control/output/{poll_id}", OutputResponse)


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, cond: bool, what: str, detail: str = "") -> bool:
        detail = " ".join(str(detail).split())  # one line per check
        if cond:
            self.passed += 1
            print(f"ok: {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f" ({detail})" if detail else ""), flush=True)
        return cond

    @staticmethod
    def note(msg: str) -> None:
        msg = " ".join(msg.split())
        print(f"note: {msg}", flush=True)


def _short(x: Any, n: int = 300) -> str:
    s = x if isinstance(x, str) else json.dumps(x, default=str)
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[:n] + "..."


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_hostport(s: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", s or "")
    if not m:
        return None
    port = int(m.group(2))
    return (m.group(1), port) if 0 < port < 65536 else None


# --------------------------------------------------------------------------
# HTTP checks
# --------------------------------------------------------------------------


def check_error_body(rep: Report, resp: httpx.Response, what: str, must_contain: list[str] | None = None) -> None:
    try:
        body = ErrorBody.model_validate(resp.json())
    except Exception as e:
        rep.check(False, f"{what}: body is JSON {{\"detail\": \"...\"}}", f"{e}; body={_short(resp.text)}")
        return
    missing = [s for s in (must_contain or []) if s not in body.detail]
    rep.check(not missing, f"{what}: JSON detail" + (f" names {must_contain}" if must_contain else ""),
              f"detail={body.detail!r}")


def poll_until_done(rep: Report, cc: ControlClient, poll_id: str, timeout: float, label: str,
                    check_output_not_ready: bool = False) -> tuple[str | None, list[Any]]:
    """Worker._poll_until_complete with a 0.2 s interval, bounded in time and count."""
    deadline = time.monotonic() + timeout
    max_polls = int(timeout / POLL_INTERVAL) + 2
    last_progress = -1
    seen: list[Any] = []
    problems: list[str] = []
    checked_not_ready = False
    final: str | None = None
    for _ in range(max_polls):
        try:
            st, raw = cc.get_status(poll_id)
        except ControlClientError as e:
            problems.append(f"status: {e}")
            break
        try:
            OrchStatusResponse.model_validate(raw)
        except ValidationError as e:
            problems.append(f"orchestrator model rejects status {_short(raw)}: {e.errors()[0]['msg']}")
        try:
            strict = StrictStatus.model_validate(raw)
            if strict.progress < last_progress:
                problems.append(f"progress decreased {last_progress} -> {strict.progress}")
            last_progress = max(last_progress, strict.progress)
        except ValidationError as e:
            problems.append(f"status not strict {_short(raw)}: {e.errors()[0]['loc']} {e.errors()[0]['msg']}")
        seen.append(raw.get("progress"))
        if st.status == "running" and check_output_not_ready and not checked_not_ready:
            checked_not_ready = True
            r = cc.raw("GET", f"/control/output/{poll_id}")
            st2, _ = cc.get_status(poll_id)
            if st2.status == "running":
                rep.check(r.status_code == 400, f"{label}: GET output while running -> 400",
                          f"got {r.status_code} {_short(r.text)}")
            elif r.status_code != 400:
                rep.note(f"{label}: task finished during the output-while-running probe; skipped")
        if st.status in ("complete", "failed"):
            final = st.status
            if st.status == "failed":
                problems.append(f"task failed: {st.error!r}")
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    if final is None and not any(p.startswith("status:") for p in problems):
        problems.append(f"not complete after {timeout}s / {len(seen)} polls (progress seen {seen[-5:]})")
    rep.check(final == "complete" and not problems,
              f"{label}: polled {len(seen)}x until complete; progress ints 0..100, never decreasing",
              "; ".join(problems[:3]))
    return final, seen


def run(args: argparse.Namespace, rep: Report) -> None:
    cc = ControlClient(args.base_url, args.api_key)
    method = args.method
    run_tag = uuid.uuid4().hex[:8]
    workflow_id = f"conf-wf-{run_tag}"
    task_id = f"task_{run_tag}"

    # 1. health ------------------------------------------------------------
    try:
        r = cc.raw("GET", "/health", auth=False)
        ok = r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json") \
            and r.json().get("status") == "ok"
        rep.check(ok, "GET /health -> 200 {\"status\":\"ok\"} (no auth header)", f"{r.status_code} {_short(r.text)}")
    except Exception as e:
        rep.check(False, "GET /health", f"{type(e).__name__}: {e}")
        return

    # 2. execute exactly as the orchestrator does -------------------------
    inputs = [] if args.no_inputs else [
        OrchestratorDataReference(protocol=Protocol.GRPC, uri=args.input_uri, format=Format.PROTOBUF,
                                  metadata={"task_id": f"task_up{run_tag}.1"}),
        OrchestratorDataReference(protocol=Protocol.S3, uri="s3://conformance/input.csv", format=Format.CSV,
                                  size_bytes=12, checksum="sha256:00ff"),
    ]
    req = ExecuteRequest(method=method, workflow_id=workflow_id, task_id=task_id, inputs=inputs)
    body = req.model_dump(mode="json")
    assert "parameters" not in body and all("schema_uri" in i for i in body["inputs"])
    try:
        ex, ex_raw = cc.execute(req)
    except ControlClientError as e:
        rep.check(False, f"POST /control/execute {method}", str(e))
        return
    rep.check(True, f"POST /control/execute {method} -> 200, status={ex.status!r} (orchestrator ExecuteResponse)")
    if ex.status == "failed":
        rep.check(False, f"execute {method} started", f"failed: {ex.error!r}")
        return
    if args.expect_status:
        rep.check(ex.status == args.expect_status,
                  f"execute {method} answers {args.expect_status!r} (a {'quick' if args.expect_status == 'complete' else 'long'} method)",
                  f"got {ex.status!r}")

    poll_id = ex.task_id
    output: DataReference | None = None
    if ex.status == "running":
        try:
            StrictRunning.model_validate(ex_raw)
            rep.check(True, f"running carries a URL-safe task_id ({poll_id})")
        except ValidationError as e:
            rep.check(False, "running carries a URL-safe task_id (<=128 of [A-Za-z0-9_.-])",
                      f"{_short(ex_raw)}: {e.errors()[0]['msg']}")
            if not poll_id:
                return
        # 5a. dedupe: same (workflow_id, task_id, method) while running
        try:
            ex2, _ = cc.execute(req)
            if ex2.status == "running" and ex2.task_id == poll_id:
                rep.check(True, "repeated execute while running -> running, same poll id")
            else:
                st, _ = cc.get_status(poll_id)
                if st.status != "running" and ex2.task_id != poll_id:
                    rep.note("task finished before the repeated execute; dedupe not testable this run")
                    if ex2.status == "running" and ex2.task_id:
                        poll_until_done(rep, cc, ex2.task_id, args.timeout, "second task")
                else:
                    rep.check(False, "repeated execute while running -> running, same poll id",
                              f"got status={ex2.status} task_id={ex2.task_id!r}, first {poll_id!r}")
        except ControlClientError as e:
            rep.check(False, "repeated execute while running", str(e))
        # 3. poll
        final, _ = poll_until_done(rep, cc, poll_id, args.timeout, method, check_output_not_ready=True)
        if final != "complete":
            return
        # 4. output
        try:
            out, out_raw = cc.get_output(poll_id)
            output = out.output
            rep.check(True, "GET /control/output -> 200 (orchestrator OutputResponse)")
        except ControlClientError as e:
            rep.check(False, "GET /control/output", str(e))
            return
        ref_raw = out_raw.get("output")
    else:  # complete at once (quick method)
        rep.check(bool(poll_id) and bool(POLL_ID_RE.match(poll_id or "")),
                  "complete carries a URL-safe task_id", _short(ex_raw))
        rep.check(ex.output is not None, "complete carries output", _short(ex_raw))
        if ex.output is None or not poll_id:
            return
        output = ex.output
        ref_raw = ex_raw.get("output")

    try:
        OrchestratorDataReference.model_validate(ref_raw)
        orch_ok, orch_err = True, ""
    except ValidationError as e:
        orch_ok, orch_err = False, e.errors()[0]["msg"]
    if args.orchestrator_format_enum:
        rep.check(orch_ok, "output accepted by the orchestrator's DataReference (Format enum)", orch_err)
    elif not orch_ok:
        rep.note(f"the indexed orchestrator DataReference (format: Format enum) would reject "
                 f"format={output.format!r}: {orch_err}; the contract makes format the method name")

    hp = _split_hostport(output.uri)
    rep.check(output.protocol == Protocol.GRPC, "output.protocol == 'grpc'", output.protocol.value)
    rep.check(hp is not None and "/" not in output.uri, "output.uri is host:port", output.uri)
    rep.check(output.format == method, f"output.format == {method!r}", repr(output.format))
    rep.check(output.metadata.get("task_id") == poll_id, "output.metadata.task_id == poll id",
              f"{output.metadata!r} vs {poll_id!r}")

    # 5b. error shapes
    unknown_id = f"conf-unknown-{run_tag}"
    for path in (f"/control/status/{unknown_id}", f"/control/output/{unknown_id}"):
        r = cc.raw("GET", path)
        if rep.check(r.status_code == 404, f"GET {path.rsplit('/', 1)[0]}/<unknown> -> 404", f"{r.status_code}"):
            check_error_body(rep, r, f"404 on {path.split('/')[2]}")
    cases = [
        ("not JSON", dict(content=b"{not json", headers={"content-type": "application/json"}), 400, []),
        ("JSON array", dict(content=b"[1,2]", headers={"content-type": "application/json"}), 400, []),
        ("no JSON content type", dict(content=json.dumps(body).encode(), headers={"content-type": "text/plain"}), 400, []),
        ("missing workflow_id", dict(json={"method": method, "task_id": task_id}), 422, ["workflow_id"]),
        ("mistyped task_id", dict(json={"method": method, "workflow_id": workflow_id, "task_id": 7}), 422, ["task_id"]),
        ("mistyped inputs", dict(json=body | {"inputs": {"a": 1}}), 422, ["inputs"]),
        ("input without uri", dict(json=body | {"inputs": [{"protocol": "s3", "format": "csv"}]}), 422, ["uri"]),
    ]
    bogus = f"NoSuchMethod{run_tag}"
    cases.append((f"unknown method {bogus}", dict(json=body | {"method": bogus}), 400, [bogus, method]))
    for name, kw, want, words in cases:
        r = cc.raw("POST", "/control/execute", **kw)
        if rep.check(r.status_code == want, f"execute with {name} -> {want}", f"got {r.status_code} {_short(r.text)}"):
            check_error_body(rep, r, f"{want} for {name}", words)
    r = cc.raw("POST", "/control/execute", json=body | {"method": ""})
    rep.check(400 <= r.status_code < 500 and r.status_code != 401, "execute with empty method -> 4xx",
              f"got {r.status_code}")

    # 6. gRPC
    grpc_checks(rep, args, method, poll_id, output, run_tag)

    # contract: GetLastResult is also a built-in quick method on /control/execute.
    try:
        glr, _ = cc.execute(ExecuteRequest(method="GetLastResult", workflow_id=workflow_id,
                                           task_id=f"task_glr{run_tag}"))
        rep.check(glr.status == "complete" and glr.output is not None and glr.output.protocol == Protocol.GRPC,
                  "execute GetLastResult -> complete with a grpc output", f"{glr.status} {glr.error!r}")
    except ControlClientError as e:
        rep.check(False, "execute GetLastResult", str(e))

    # contract: input fields stay strings, parameters and unknown fields are accepted.
    loose = body | {"task_id": f"task_loose{run_tag}", "parameters": {"epochs": 1}, "unknown_field": True,
                    "inputs": [{"protocol": "villas", "uri": "villas://node/signal", "format": "Produce",
                                "schema_uri": None, "size_bytes": None, "checksum": None,
                                "metadata": {"task_id": "x.1", "nested": {"k": [1]}}}]}
    r = cc.raw("POST", "/control/execute", json=loose)
    try:
        lx = ExecuteResponse.model_validate(r.json()) if r.status_code == 200 else None
    except Exception:
        lx = None
    rep.check(lx is not None and lx.status in ("running", "complete"),
              "execute accepts string formats/protocols, parameters and unknown fields",
              f"{r.status_code} {_short(r.text)}")
    if lx is not None and lx.status == "running" and lx.task_id:
        precondition_check(rep, args, cc, method, lx.task_id)

    # 7. auth
    if args.api_key:
        r = cc.raw("GET", "/health", auth=False)
        rep.check(r.status_code == 200, "auth: /health without bearer -> 200", f"{r.status_code}")
        for name, auth in (("without bearer", False), ("with a wrong key", args.api_key + "x")):
            r = cc.raw("GET", f"/control/status/{poll_id}", auth=auth)
            if rep.check(r.status_code == 401, f"auth: status {name} -> 401", f"{r.status_code}"):
                check_error_body(rep, r, f"401 {name}")
            r = cc.raw("POST", "/control/execute", auth=auth, json=body)
            rep.check(r.status_code == 401, f"auth: execute {name} -> 401", f"{r.status_code}")
        r = cc.raw("GET", f"/control/status/{poll_id}")
        rep.check(r.status_code == 200, "auth: status with bearer -> 200", f"{r.status_code}")


# --------------------------------------------------------------------------
# gRPC checks
# --------------------------------------------------------------------------

_GRPC: dict[str, Any] = {}


def load_proto(args: argparse.Namespace):
    if _GRPC:
        return _GRPC["pb2"], _GRPC["pb2_grpc"]
    from grpc_tools import protoc
    import grpc_tools

    proto = Path(args.proto).resolve()
    out = Path(tempfile.mkdtemp(prefix="svc-conformance-"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{proto.parent}", f"-I{well_known}", f"--python_out={out}",
                      f"--grpc_python_out={out}", str(proto)])
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with {rc} on {proto}")
    sys.path.insert(0, str(out))
    pb2 = importlib.import_module(f"{proto.stem}_pb2")
    pb2_grpc = importlib.import_module(f"{proto.stem}_pb2_grpc")
    _GRPC.update(pb2=pb2, pb2_grpc=pb2_grpc)
    return pb2, pb2_grpc


def grpc_target(rep: Report, args: argparse.Namespace, output: DataReference) -> str | None:
    hp = _split_hostport(output.uri)
    if hp is None:
        return None
    if args.grpc_addr:
        over = _split_hostport(args.grpc_addr)
        rep.check(over is not None and over[1] == hp[1], f"--grpc-addr port matches output uri port ({hp[1]})",
                  f"{args.grpc_addr} vs {output.uri}")
        return args.grpc_addr
    if not _is_loopback(hp[0]):
        rep.check(False, "gRPC address reachable locally",
                  f"uri host {hp[0]!r} is not loopback; pass --grpc-addr 127.0.0.1:{hp[1]}")
        return None
    return output.uri


def data_auth(args, *pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """Call metadata: `pairs`, plus the bearer key when one is configured
    (a key protects the data port as well as the control port)."""
    if args.api_key:
        pairs = pairs + (("authorization", f"Bearer {args.api_key}"),)
    return pairs


def grpc_checks(rep: Report, args, method: str, poll_id: str, output: DataReference, run_tag: str) -> None:
    import grpc
    from google.protobuf import message_factory
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        pb2, pb2_grpc = load_proto(args)
    except Exception as e:
        rep.check(False, "compile proto with grpc_tools.protoc", f"{type(e).__name__}: {e}")
        return
    fd = pb2.DESCRIPTOR
    rep.check(fd.package == args.proto_package, f"proto package == {args.proto_package!r}", fd.package)
    svc = fd.services_by_name.get(args.proto_service)
    if not rep.check(svc is not None, f"proto declares service {args.proto_service}",
                     f"services: {list(fd.services_by_name)}"):
        return
    m = svc.methods_by_name.get(method)
    glr = svc.methods_by_name.get("GetLastResult")
    if not rep.check(m is not None and glr is not None, f"service has rpc {method} and GetLastResult",
                     f"rpcs: {list(svc.methods_by_name)}"):
        return
    rep.check(m.input_type.name == f"{method}Request" and m.output_type.name == f"{method}Response",
              f"rpc {method}({method}Request) returns ({method}Response)",
              f"{m.input_type.full_name} -> {m.output_type.full_name}")
    rep.check(glr.input_type.full_name in ("google.protobuf.Empty", f"{fd.package}.Empty")
              and glr.output_type.name == "LastResult",
              "rpc GetLastResult(Empty) returns (LastResult)",
              f"{glr.input_type.full_name} -> {glr.output_type.full_name}")

    target = grpc_target(rep, args, output)
    args._grpc_target = target
    if target is None:
        return
    Req = message_factory.GetMessageClass(m.input_type)
    Resp = message_factory.GetMessageClass(m.output_type)
    GlrReq = message_factory.GetMessageClass(glr.input_type)
    stub = getattr(pb2_grpc, f"{args.proto_service}Stub")
    with grpc.insecure_channel(target) as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=GRPC_CALL_TIMEOUT)
        except grpc.FutureTimeoutError:
            rep.check(False, f"gRPC connect {target}", f"not ready within {GRPC_CALL_TIMEOUT}s")
            return
        s = stub(ch)
        call = getattr(s, method)

        by_id = None
        try:
            by_id = call(Req(), metadata=data_auth(args, ("x-task-id", poll_id)), timeout=GRPC_CALL_TIMEOUT)
            rep.check(isinstance(by_id, Resp), f"rpc {method} with x-task-id -> {method}Response",
                      type(by_id).__name__)
        except grpc.RpcError as e:
            rep.check(False, f"rpc {method} with x-task-id: {poll_id}", f"{e.code().name}: {e.details()}")

        latest = None
        try:
            latest = call(Req(), metadata=data_auth(args), timeout=GRPC_CALL_TIMEOUT)
            rep.check(isinstance(latest, Resp), f"rpc {method} without x-task-id -> latest {method}Response")
        except grpc.RpcError as e:
            rep.check(False, f"rpc {method} without x-task-id", f"{e.code().name}: {e.details()}")

        try:
            call(Req(), metadata=data_auth(args, ("x-task-id", f"conf-unknown-{run_tag}")),
                 timeout=GRPC_CALL_TIMEOUT)
            rep.check(False, f"rpc {method} with unknown x-task-id -> NOT_FOUND", "call succeeded")
        except grpc.RpcError as e:
            rep.check(e.code() == grpc.StatusCode.NOT_FOUND, f"rpc {method} with unknown x-task-id -> NOT_FOUND",
                      f"{e.code().name}: {e.details()}")

        try:
            lr = s.GetLastResult(GlrReq(), metadata=data_auth(args), timeout=GRPC_CALL_TIMEOUT)
            case = lr.WhichOneof("result")
            payload = getattr(lr, case) if case else None
            rep.check(lr.task_id == poll_id and lr.method == method and case is not None
                      and type(payload).__name__ == f"{method}Response",
                      "GetLastResult -> LastResult{task_id == poll id, method, oneof set}",
                      f"task_id={lr.task_id!r} method={lr.method!r} oneof={case!r}")
            if by_id is not None and payload is not None and lr.task_id == poll_id:
                rep.check(payload == by_id, "GetLastResult payload == result fetched by x-task-id")
            if latest is not None and payload is not None and lr.method == method:
                rep.check(payload == latest, f"{method} without x-task-id == GetLastResult payload")
        except grpc.RpcError as e:
            rep.check(False, "GetLastResult", f"{e.code().name}: {e.details()}")

        if args.api_key:
            try:
                call(Req(), metadata=(("x-task-id", poll_id),), timeout=GRPC_CALL_TIMEOUT)
                rep.check(False, f"rpc {method} without the key -> UNAUTHENTICATED", "call succeeded")
            except grpc.RpcError as e:
                rep.check(e.code() == grpc.StatusCode.UNAUTHENTICATED,
                          f"rpc {method} without the key -> UNAUTHENTICATED", f"{e.code().name}: {e.details()}")

        try:
            h = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""),
                                                     timeout=GRPC_CALL_TIMEOUT)
            rep.check(h.status == health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 Check(\"\") -> SERVING",
                      health_pb2.HealthCheckResponse.ServingStatus.Name(h.status))
        except grpc.RpcError as e:
            rep.check(False, "grpc.health.v1 Check(\"\")", f"{e.code().name}: {e.details()}")


def precondition_check(rep: Report, args, cc: ControlClient, method: str, poll_id: str) -> None:
    """contract: a still-running task's id -> FAILED_PRECONDITION (skipped if it finished meanwhile)."""
    if not _GRPC or not args._grpc_target:
        return
    import grpc
    from google.protobuf import message_factory

    pb2 = _GRPC["pb2"]
    m = pb2.DESCRIPTOR.services_by_name[args.proto_service].methods_by_name[method]
    Req = message_factory.GetMessageClass(m.input_type)
    try:
        st, _ = cc.get_status(poll_id)
    except ControlClientError:
        return
    if st.status != "running":
        return
    with grpc.insecure_channel(args._grpc_target) as ch:
        call = getattr(getattr(_GRPC["pb2_grpc"], f"{args.proto_service}Stub")(ch), method)
        try:
            call(Req(), metadata=data_auth(args, ("x-task-id", poll_id)), timeout=GRPC_CALL_TIMEOUT)
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
    if code != grpc.StatusCode.FAILED_PRECONDITION and cc.get_status(poll_id)[0].status != "running":
        rep.note("task finished during the FAILED_PRECONDITION probe; skipped")
        return
    rep.check(code == grpc.StatusCode.FAILED_PRECONDITION,
              f"rpc {method} with a running task's x-task-id -> FAILED_PRECONDITION", code.name)


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True, help="control base URL, loopback only")
    p.add_argument("--method", required=True, help="long-running or quick method to drive")
    p.add_argument("--proto", required=True)
    p.add_argument("--proto-package", required=True)
    p.add_argument("--proto-service", required=True)
    p.add_argument("--grpc-addr", help="loopback host:port to dial instead of the output uri's host")
    p.add_argument("--api-key")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the task (default 60)")
    p.add_argument("--input-uri", default="upstream.invalid:50051",
                   help="uri of the grpc input sent with execute (default resolves nowhere)")
    p.add_argument("--no-inputs", action="store_true", help="send inputs: []")
    p.add_argument("--expect-status", choices=["running", "complete"],
                   help="the first execute answer the method must give: running (long) or complete (quick)")
    p.add_argument("--orchestrator-format-enum", action="store_true",
                   help="also require the output to pass the orchestrator's Format enum")
    args = p.parse_args(argv)

    u = urlsplit(args.base_url)
    if u.scheme != "http" or not u.hostname or not _is_loopback(u.hostname):
        p.error("--base-url must be http://<loopback>:PORT")
    if args.grpc_addr:
        hp = _split_hostport(args.grpc_addr)
        if hp is None or not _is_loopback(hp[0]):
            p.error("--grpc-addr must be <loopback>:PORT")
    if not Path(args.proto).is_file():
        p.error(f"--proto {args.proto}: no such file")
    if args.timeout <= 0 or args.timeout > 3600:
        p.error("--timeout must be in (0, 3600]")
    args._grpc_target = None

    rep = Report()
    try:
        run(args, rep)
    except Exception as e:  # a crash of the driver is a failure, not a pass
        rep.check(False, "driver ran to the end", f"{type(e).__name__}: {e}")
    print(f"{rep.passed} passed, {rep.failed} failed", flush=True)
    return 0 if rep.failed == 0 and rep.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
