"""Installing a Raft dump another member sent: safe unpacking on every Python the project claims
(3.11.0 on; ``extractall(filter=...)`` only exists from 3.11.4), and a dump that cannot be
installed is remembered for the node's status. Real RocksDB checkpoints, real tar files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from anode.cluster.snapshot import CheckpointSnapshots, UnsafeSnapshot, extract_db
from anode.meta import commands as c
from anode.meta.state import StateMachine
from anode.meta.store import open_db

REPO = Path(__file__).resolve().parents[2]
# The oldest CPython 3.11 at hand: Debian 12's own is 3.11.2 (`apt-get install python3.11`).
OLD_PYTHON = Path("/usr/bin/python3.11")


def _dump(tmp_path: Path, entries: int = 20) -> Path:
    source = StateMachine(open_db(tmp_path / "source"))
    bucket = c.CreateBucket(bucket="b", owner="o", created=0.0)
    source.apply_many([bucket], index=entries)
    (tmp_path / "work-source").mkdir()
    CheckpointSnapshots(state_machine=source, work_dir=tmp_path / "work-source").serialize(
        str(tmp_path / "dump"), ("raft", entries)
    )
    return tmp_path / "dump"


def _tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "data"),
    [
        (_info("/tmp/evil"), b"x"),
        (_info("db/../../evil"), b"x"),
        (_info("../evil"), b"x"),
        (_info("db/link", tarfile.SYMTYPE, "/etc/passwd"), None),
        (_info("db/hard", tarfile.LNKTYPE, "raft"), None),
        (_info("db/fifo", tarfile.FIFOTYPE), None),
        (_info("db/dev", tarfile.CHRTYPE), None),
    ],
    ids=["absolute", "dotdot-in-db", "dotdot", "symlink", "hardlink", "fifo", "device"],
)
def test_unsafe_members_are_refused_and_nothing_lands_outside(tmp_path, member, data):
    dump = _tar_with(tmp_path / "bad.tar", (_info("db/CURRENT"), b"ok"), (member, data))
    dest = tmp_path / "out" / "inner"
    dest.mkdir(parents=True)
    with tarfile.open(dump) as tar, pytest.raises(UnsafeSnapshot):
        extract_db(tar, dest)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "evil").exists()
    assert not Path("/tmp/evil").exists()
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_a_repeated_member_is_refused(tmp_path):
    dump = _tar_with(tmp_path / "dup.tar", (_info("db/CURRENT"), b"a"), (_info("db/CURRENT"), b"b"))
    with tarfile.open(dump) as tar, pytest.raises(FileExistsError):
        extract_db(tar, tmp_path)


def test_failed_install_is_remembered_until_one_succeeds(tmp_path):
    good = _dump(tmp_path)
    bad = tmp_path / "bad.tar"  # the same dump with a symlink slipped in
    bad.write_bytes(good.read_bytes())
    with tarfile.open(bad, "a") as tar:
        tar.addfile(_info("db/evil", tarfile.SYMTYPE, "/etc/passwd"))
    target = StateMachine(open_db(tmp_path / "target"))
    (tmp_path / "work").mkdir()
    snaps = CheckpointSnapshots(state_machine=target, work_dir=tmp_path / "work")
    for attempt in (1, 2):
        with pytest.raises(UnsafeSnapshot):
            snaps.deserialize(str(bad))
        assert snaps.install_error["failures"] == attempt
        assert snaps.install_error["error"].startswith("UnsafeSnapshot: snapshot member 'db/evil'")
    assert target.raft_position() == (0, 0)  # nothing of the bad dump was applied
    assert snaps.deserialize(str(good)) == ("raft", 20)
    assert snaps.install_error is None and snaps.restored == 1
    assert target.raft_position()[0] == 20
    assert os.listdir(tmp_path / "work") == []  # the unpacked copy is gone


@pytest.mark.skipif(not OLD_PYTHON.exists(), reason=f"{OLD_PYTHON} not installed")
def test_snapshot_installs_on_the_oldest_python_at_hand(tmp_path):
    """The dump written here installs under Debian 12's Python (3.11.2 on these machines), in a
    process of its own with this venv's packages: the case that failed on every retry."""
    dump = _dump(tmp_path)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from anode.cluster.snapshot import CheckpointSnapshots
        from anode.meta.store import MetaStore, open_db
        meta = MetaStore(open_db(Path({str(tmp_path / "old")!r})))
        Path({str(tmp_path / "old-work")!r}).mkdir()
        snaps = CheckpointSnapshots(state_machine=meta.state_machine,
                                    work_dir=Path({str(tmp_path / "old-work")!r}))
        assert snaps.deserialize({str(dump)!r}) == ("raft", 20)
        assert snaps.restored == 1 and meta.bucket("b") is not None
        print(sys.version.split()[0])
        """
    )
    out = subprocess.run(
        [str(OLD_PYTHON), "-c", script],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "node"), site])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().startswith("3.11.")
