"""The committed generated code matches protos/: regenerate and compare, byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

GENERATED = ("decisioning_pb2.py", "decisioning_pb2.pyi", "decisioning_pb2_grpc.py")


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(REPO / "protos"),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(REPO / "protos" / "nba" / "v1" / "decisioning.proto"),
        ],
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "nba" / "v1" / name).read_text()
        committed = (REPO / "nba" / "v1" / name).read_text()
        assert committed == fresh, (
            f"nba/v1/{name} is stale: regenerate with `python -m grpc_tools.protoc -I protos"
            " --python_out=. --pyi_out=. --grpc_python_out=. protos/nba/v1/decisioning.proto`"
        )
