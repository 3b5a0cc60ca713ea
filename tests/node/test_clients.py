"""The aws CLI, s5cmd and rclone against a real node: upload, download, list, sync, delete."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
MiB = 1024 * 1024
SIZES = {"empty": 0, "small": 1000, "chunk": 4 * MiB, "multi": 50 * MiB}


def run(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("upload")
    for name, size in SIZES.items():
        (root / name).write_bytes(os.urandom(size))
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "deeper" / "leaf.txt").write_bytes(b"leaf")
    return root


def client_env(node) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANODE_"))}
    env.update(AWS_ACCESS_KEY_ID=node.access_key, AWS_SECRET_ACCESS_KEY=node.secret_key,
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               RCLONE_CONFIG="/dev/null")
    return env


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert hashlib.sha256((a / rel).read_bytes()).digest() == \
            hashlib.sha256((b / rel).read_bytes()).digest(), rel


def test_aws_cli_cp_sync_ls_rm(node, s3, bucket, files, tmp_path):
    env = client_env(node)
    aws = [str(BIN / "aws"), "--endpoint-url", node.s3_url]
    for name in SIZES:
        run([*aws, "s3", "cp", str(files / name), f"s3://{bucket}/cp/{name}"], env)
    run([*aws, "s3", "sync", str(files), f"s3://{bucket}/sync/"], env)
    listing = run([*aws, "s3", "ls", "--recursive", f"s3://{bucket}/"], env).stdout
    assert "sync/nested/deeper/leaf.txt" in listing and "cp/multi" in listing
    for name, size in SIZES.items():
        head = s3.head_object(Bucket=bucket, Key=f"cp/{name}")
        assert head["ContentLength"] == size
    down = tmp_path / "down"
    run([*aws, "s3", "sync", f"s3://{bucket}/sync/", str(down)], env)
    same_tree(files, down)
    run([*aws, "s3", "cp", f"s3://{bucket}/cp/multi", str(tmp_path / "multi")], env)
    assert (tmp_path / "multi").read_bytes() == (files / "multi").read_bytes()
    out = run([*aws, "s3api", "head-object", "--bucket", bucket, "--key", "cp/small"], env)
    assert '"ContentLength": 1000' in out.stdout
    run([*aws, "s3", "rm", "--recursive", f"s3://{bucket}/"], env)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_s5cmd(node, s3, bucket, files, tmp_path):
    env = client_env(node)
    s5 = [str(BIN / "s5cmd"), "--endpoint-url", node.s3_url]
    for name in SIZES:
        run([*s5, "cp", str(files / name), f"s3://{bucket}/s5/{name}"], env)
    listing = run([*s5, "ls", f"s3://{bucket}/s5/*"], env).stdout
    for name in SIZES:
        assert f"s5/{name}" in listing or name in listing
    run([*s5, "cp", f"s3://{bucket}/s5/*", str(tmp_path) + "/"], env)
    for name in SIZES:
        assert (tmp_path / name).read_bytes() == (files / name).read_bytes()
    etag = s3.head_object(Bucket=bucket, Key="s5/small")["ETag"].strip('"')
    assert etag == hashlib.md5((files / "small").read_bytes()).hexdigest()
    run([*s5, "rm", f"s3://{bucket}/s5/*"], env)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_rclone(node, s3, bucket, files, tmp_path):
    env = client_env(node)
    env.update(RCLONE_CONFIG_ANODE_TYPE="s3", RCLONE_CONFIG_ANODE_PROVIDER="Other",
               RCLONE_CONFIG_ANODE_ACCESS_KEY_ID=node.access_key,
               RCLONE_CONFIG_ANODE_SECRET_ACCESS_KEY=node.secret_key,
               RCLONE_CONFIG_ANODE_ENDPOINT=node.s3_url, RCLONE_CONFIG_ANODE_REGION="us-east-1")
    remote = "anode:"
    rclone = [str(BIN / "rclone"), "--config", "/dev/null"]
    run([*rclone, "copy", str(files), f"{remote}{bucket}/rc"], env)
    run([*rclone, "check", str(files), f"{remote}{bucket}/rc"], env)
    listing = run([*rclone, "ls", f"{remote}{bucket}/rc"], env).stdout
    assert "nested/deeper/leaf.txt" in listing
    run([*rclone, "copy", f"{remote}{bucket}/rc", str(tmp_path / "down")], env)
    same_tree(files, tmp_path / "down")
    run([*rclone, "purge", f"{remote}{bucket}/rc"], env)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
