"""`meta/state.py` dispatches from one table: every command type has exactly one apply function,
and each apply function lives in the module of its record family."""

from __future__ import annotations

from typing import get_args

from anode.meta import commands as c
from anode.meta.state import APPLY

FAMILIES = {
    "anode.meta.apply_buckets": {
        "CreateBucket",
        "DeleteBucket",
        "SetBucketConfig",
        "SetBucketQuota",
        "SetBucketVersioning",
        "SetBucketTagging",
    },
    "anode.meta.apply_objects": {
        "PutObject",
        "DeleteObjects",
        "SetObjectAcl",
        "SetObjectTagging",
        "SetObjectLock",
    },
    "anode.meta.apply_uploads": {"CreateUpload", "PutPart", "CompleteUpload", "AbortUpload"},
    "anode.meta.apply_cluster": {
        "CreateUser",
        "DeleteUser",
        "RegisterNode",
        "SetNodeState",
        "ForgetGarbage",
        "RecordCoded",
        "InitMasterKey",
        "CreateKmsKey",
        "SetKmsKeyEnabled",
    },
}


def test_every_command_type_has_exactly_one_apply_function():
    command_types = set(get_args(c.Command))
    assert set(APPLY) == command_types
    functions = list(APPLY.values())
    assert len(set(functions)) == len(functions), "one function applies two command types"


def test_each_apply_function_lives_in_its_record_family_module():
    placed = {cls.__name__: fn.__module__ for cls, fn in APPLY.items()}
    assert placed == {name: module for module, names in FAMILIES.items() for name in names}
