"""Apply the commands about the cluster rather than the data: users (CreateUser, DeleteUser),
members (RegisterNode, SetNodeState), keys (InitMasterKey, CreateKmsKey, SetKmsKeyEnabled),
erasure-coded chunks (RecordCoded) and the collector's ForgetGarbage. Dispatched from
`meta/state.py`'s `APPLY` table.
"""

from __future__ import annotations

from typing import Any

from . import commands as c
from . import layout as L
from .tx import Tx


def create_user(tx: Tx, cmd: c.CreateUser) -> Any:
    existing = tx.get(L.user_key(cmd.name))
    owner_of_key = tx.get(L.access_key_key(cmd.access_key))
    if existing is not None:
        if (
            existing["access_key"] == cmd.access_key
            and existing["secret_key"] == cmd.secret_key
            and existing.get("email", "") == cmd.email
        ):
            return existing
        if existing.get("managed") != "config" or cmd.managed != "config":
            return c.Rejected("UserExists", f"user {cmd.name} already exists")
        tx.delete(L.access_key_key(existing["access_key"]))  # config changed its keys
    if owner_of_key is not None and owner_of_key != cmd.name:
        return c.Rejected("UserExists", "access key already in use")
    record = {
        "name": cmd.name,
        "access_key": cmd.access_key,
        "secret_key": cmd.secret_key,
        "owner_id": existing["owner_id"] if existing else cmd.owner_id,
        "created": existing["created"] if existing else cmd.created,
        "managed": cmd.managed,
    }
    if cmd.email:
        record["email"] = cmd.email
    tx.put(L.user_key(cmd.name), record)
    tx.put(L.access_key_key(cmd.access_key), cmd.name)
    return record


def delete_user(tx: Tx, cmd: c.DeleteUser) -> Any:
    existing = tx.get(L.user_key(cmd.name))
    if existing is None:
        return c.Rejected("NoSuchUser")
    tx.delete(L.user_key(cmd.name))
    tx.delete(L.access_key_key(existing["access_key"]))
    return None


def register_node(tx: Tx, cmd: c.RegisterNode) -> Any:
    existing = tx.get(L.node_key(cmd.node_id)) or {"state": "active"}
    record = {
        **existing,
        "s3_url": cmd.s3_url,
        "admin_url": cmd.admin_url,
        "data_url": cmd.data_url,
    }
    tx.put(L.node_key(cmd.node_id), record)
    return record


def set_node_state(tx: Tx, cmd: c.SetNodeState) -> Any:
    if cmd.state not in ("active", "draining", "removed"):
        return c.Rejected("InvalidArgument", f"unknown node state {cmd.state!r}")
    existing = tx.get(L.node_key(cmd.node_id))
    if existing is None:
        return c.Rejected("InvalidArgument", f"unknown node {cmd.node_id!r}")
    if cmd.state == "removed":
        tx.delete(L.node_key(cmd.node_id))
    else:
        tx.put(L.node_key(cmd.node_id), {**existing, "state": cmd.state})
    return None


def forget_garbage(tx: Tx, cmd: c.ForgetGarbage) -> Any:
    for digest in cmd.digests:
        tx.delete(L.garbage_key(digest))
        if tx.get(L.chunk_key(digest)) is not None:
            continue
        if tx.has(L.inline_key(digest)):
            tx.delete(L.inline_key(digest))
            tx.stat("inline_chunks", -1)
        coded = tx.get(L.coded_key(digest))
        if coded is not None:
            tx.delete(L.coded_key(digest))
            for fragment in coded["digests"]:
                tx.delete(L.fragment_key(fragment))
            tx.stat("coded_chunks", -1)
            tx.stat("coded_bytes", -coded["size"])
            tx.stat("fragment_bytes", -coded["raw"])
    return None


def record_coded(tx: Tx, cmd: c.RecordCoded) -> Any:
    existing = tx.get(L.coded_key(cmd.digest))
    if existing is not None:  # coded before (dedup): the same fragments, placed again now
        tx.put(L.coded_key(cmd.digest), {**existing, "at": cmd.coded.get("at", 0.0)})
    else:
        tx.put(L.coded_key(cmd.digest), cmd.coded)
        for fragment in cmd.coded["digests"]:
            tx.put(L.fragment_key(fragment), cmd.digest)
        tx.stat("coded_chunks", 1)
        tx.stat("coded_bytes", cmd.coded["size"])
        tx.stat("fragment_bytes", cmd.coded["raw"])
    if tx.get(L.chunk_key(cmd.digest)) is None:  # abandoned unless a version refers to it
        tx.put(L.garbage_key(cmd.digest), L.CODED_MARKER)
    return None


def init_master_key(tx: Tx, cmd: c.InitMasterKey) -> Any:
    existing = tx.get(L.MASTER_KEY)
    if existing is not None:
        return existing
    tx.put(L.MASTER_KEY, cmd.key)
    return cmd.key


def create_kms_key(tx: Tx, cmd: c.CreateKmsKey) -> Any:
    existing = tx.get(L.kms_key_key(cmd.name))
    if existing is not None:
        return existing
    record = {"name": cmd.name, "wrapped": cmd.wrapped, "created": cmd.created, "enabled": True}
    tx.put(L.kms_key_key(cmd.name), record)
    return record


def set_kms_key_enabled(tx: Tx, cmd: c.SetKmsKeyEnabled) -> Any:
    record = tx.get(L.kms_key_key(cmd.name))
    if record is None:
        return c.Rejected("KMS_NotFoundException", f"Invalid keyId {cmd.name}")
    record = {**record, "enabled": cmd.enabled}
    tx.put(L.kms_key_key(cmd.name), record)
    return record
