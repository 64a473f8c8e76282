"""Regenerate ``world_model_pb2.py`` and ``world_model_pb2_grpc.py`` from ``world_model.proto``.

    python -m plray.serve.grpc.generate

Needs ``grpcio-tools`` (only for this step; the server and clients need ``grpcio`` and ``protobuf``,
which Ray installs). Pick the grpcio-tools release not newer than the installed grpcio (the
generated stubs refuse an older grpcio) and whose protobuf requirement the installed protobuf meets.
The proto is compiled by its path from the repository root, so the messages are registered (and
pickled, as Serve does) under ``plray.serve.grpc.world_model_pb2``. Both modules get ``# ruff: noqa``
(then ``ruff format plray/serve/grpc`` formats them).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run protoc (from grpcio-tools) on the .proto next to this file; return its exit status."""
    from grpc_tools import protoc

    root = HERE.parents[2]  # the proto's path from the repository root names the generated modules
    rel = (HERE / "world_model.proto").relative_to(root)
    rc = protoc.main(["grpc_tools.protoc", f"-I{root}", f"--python_out={root}", f"--grpc_python_out={root}", str(rel)])
    if rc == 0:
        for name in ("world_model_pb2.py", "world_model_pb2_grpc.py"):  # generated: not linted
            path = HERE / name
            path.write_text("# ruff: noqa\n" + path.read_text())
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
