"""Checks an export's blueprint.json and dockerinfo.json the way the AI-Effect
orchestrator reads them: its pydantic models (mirrored here, extra keys
forbidden everywhere), then its graph rules: every connection names an
existing node operation, some operation has no incoming connection (a start
node), and there is no cycle. dockerinfo's port must be a string holding a
port number, and every blueprint container must have an entry.

Usage: python blueprint_check.py EXPORT_DIR
Prints `ok: ...` and exits 0, or `FAIL: ...` and exits 1.
"""

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator


def _required(value):
    if value is None or not str(value).strip():
        raise ValueError("must not be empty")
    return value


def _required_fields(*names):
    """A validator refusing an empty or blank value in each of `names`."""
    return field_validator(*names)(classmethod(lambda cls, v: _required(v)))


def _non_empty(name, message):
    """A validator refusing an empty list in field `name` with `message`."""

    def check(cls, v):
        if not v:
            raise ValueError(message)
        return v

    return field_validator(name)(classmethod(check))


def _key(container_name, operation_signature):
    """The orchestrator's key of a node operation: `container:operation`."""
    return f"{container_name}:{operation_signature.operation_name}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperationSignature(Strict):
    operation_name: str
    input_message_name: str | None = None
    output_message_name: str | None = None
    input_message_stream: bool = False
    output_message_stream: bool = False

    check_name = _required_fields("operation_name")


class TargetOperation(Strict):
    operation_name: str

    check_name = _required_fields("operation_name")


class Target(Strict):
    container_name: str
    operation_signature: TargetOperation

    check_name = _required_fields("container_name")


class Operation(Strict):
    operation_signature: OperationSignature
    connected_to: list[Target] = []


class BlueprintNode(Strict):
    container_name: str
    proto_uri: str
    image: str
    node_type: str
    operation_signature_list: list[Operation]

    check_fields = _required_fields("container_name", "proto_uri", "image", "node_type")
    some_operation = _non_empty("operation_signature_list", "a node needs at least one operation")


class Blueprint(Strict):
    name: str
    pipeline_id: str
    creation_date: str
    type: str
    version: str
    nodes: list[BlueprintNode]

    check_fields = _required_fields("name", "pipeline_id", "type", "version")
    some_node = _non_empty("nodes", "a blueprint needs at least one node")


class DockerEntry(Strict):
    container_name: str
    ip_address: str
    port: str

    check_fields = _required_fields("container_name", "ip_address", "port")


class DockerInfo(Strict):
    docker_info_list: list[DockerEntry]

    some_entry = _non_empty("docker_info_list", "dockerinfo needs at least one entry")


def check_graph(blueprint: Blueprint) -> None:
    """Connections to known operations, a start operation, no cycle."""
    keys = {
        _key(node.container_name, op.operation_signature)
        for node in blueprint.nodes
        for op in node.operation_signature_list
    }
    edges: dict[str, list[str]] = {key: [] for key in keys}
    incoming: set[str] = set()
    for node in blueprint.nodes:
        for op in node.operation_signature_list:
            source = _key(node.container_name, op.operation_signature)
            for target in op.connected_to:
                key = _key(target.container_name, target.operation_signature)
                if key not in keys:
                    raise ValueError(f"connection to an unknown operation {key}")
                edges[source].append(key)
                incoming.add(key)
    starts = [key for key in keys if key not in incoming]
    if not starts:
        raise ValueError("no start node")
    state: dict[str, int] = {}

    def visit(key: str) -> None:
        state[key] = 1
        for nxt in edges[key]:
            if state.get(nxt) == 1:
                raise ValueError(f"cycle through {nxt}")
            if nxt not in state:
                visit(nxt)
        state[key] = 2

    for key in sorted(keys):
        if key not in state:
            visit(key)


def check_ports(blueprint: Blueprint, dockerinfo: DockerInfo) -> None:
    """Each port a number 1-65535 in a string; each container reachable."""
    entries = {e.container_name: e for e in dockerinfo.docker_info_list}
    for entry in dockerinfo.docker_info_list:
        if not entry.port.isdigit() or not 0 < int(entry.port) <= 65535:
            raise ValueError(f"port {entry.port!r} of {entry.container_name}")
    for node in blueprint.nodes:
        if node.container_name not in entries:
            raise ValueError(f"no dockerinfo entry for {node.container_name}")


def main() -> int:
    export = Path(sys.argv[1])
    try:
        raw_blueprint = json.loads((export / "blueprint.json").read_text(encoding="utf-8"))
        raw_dockerinfo = json.loads((export / "dockerinfo.json").read_text(encoding="utf-8"))
        blueprint = Blueprint.model_validate(raw_blueprint, strict=True)
        dockerinfo = DockerInfo.model_validate(raw_dockerinfo, strict=True)
        check_graph(blueprint)
        check_ports(blueprint, dockerinfo)
    except Exception as error:  # report any refusal as one line
        print(f"FAIL: {' '.join(str(error).split())}")
        return 1
    print(f"ok: {len(blueprint.nodes)} nodes, {len(dockerinfo.docker_info_list)} endpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
