"""The one configuration schema: TOML file, then `ANODE_<SECTION>_<KEY>` environment overrides.

Validated once at start-up; a bad value stops the process with a message naming the key
(`storage.chunk_size: expected a size like 4MiB, got 'big'`). See docs/config.md.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import socket
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .audit.record import CATEGORIES as AUDIT_CATEGORIES
from .tls import peer_context, server_context

# S3's storage classes (x-amz-storage-class), all accepted; `cluster.erasure_classes` names
# those whose chunks are erasure-coded
STORAGE_CLASSES = {
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
}
MAX_ERASURE_WIDTH = 32  # k + m: ISA-L's limit is far above what a cluster spreads one chunk over


def parse_erasure(text: str) -> tuple[int, int]:
    """`"4+2"` -> (4, 2): k data and m parity fragments, as `cluster.erasure_coding` says."""
    match = re.fullmatch(r"\s*(\d+)\s*\+\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"erasure coding {text!r}: expected 'k+m', e.g. '4+2'")
    k, m = int(match[1]), int(match[2])
    if k < 1 or m < 1 or k + m > MAX_ERASURE_WIDTH:
        raise ValueError(f"erasure coding {text!r}: need k >= 1, m >= 1, k + m <= 32")
    return k, m


class ConfigError(ValueError):
    """A configuration problem, phrased for the operator of the node."""


class Size(int):
    """A byte count written as `4MiB`, `4MB` or `4194304`."""


class Duration(float):
    """Seconds written as `30s`, `10m`, `1h` or a number."""


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_DURATION_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(value: Any) -> Size:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Size(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"expected a size like 4MiB, got {value!r}")
    return Size(int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]))


def parse_duration(value: Any) -> Duration:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Duration(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(value))
    if not m or m.group(2) not in _DURATION_UNITS:
        raise ValueError(f"expected a duration like 30s or 10m, got {value!r}")
    return Duration(float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def parse_addr(value: str) -> tuple[str, int]:
    host, sep, port = str(value).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass
class NodeConfig:
    id: str = field(default_factory=socket.gethostname)
    s3_addr: str = "0.0.0.0:8080"
    admin_addr: str = "0.0.0.0:8081"
    cluster_addr: str = "0.0.0.0:9090"
    data_addr: str = "0.0.0.0:9091"
    advertise_host: str = ""
    domains: list[str] = field(default_factory=lambda: ["localhost"])
    region: str = "us-east-1"
    # PEM files; both set: S3, admin and (internode_tls) chunk transfer listen with TLS (1.2+)
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # chunk transfer between members over TLS: true, false, or "auto" (when the files are set)
    internode_tls: bool | str = "auto"
    # what a peer's certificate must chain to; default: tls_cert_file (one cert for all members)
    tls_ca_file: str = ""
    # every listener (S3, admin, internode): see http_guard.py
    header_timeout: Duration = Duration(15)  # to send a request head, from its first byte
    body_timeout: Duration = Duration(30)  # a request body may pause at most this long
    idle_timeout: Duration = Duration(60)  # a connection without a request is closed
    max_connections: int = 1024  # S3 port; the internode port half, the admin port 64


@dataclass
class ClusterConfig:
    name: str = "anode"
    replication_factor: int = 3
    placement_groups: int = 1
    peers: list[str] = field(default_factory=list)
    secret: str = ""
    # true: join as a learner; "auto": a learner unless `peers` names this node (the operator's
    # way: peers are the initial voters, and a pod outside them joins to be promoted)
    learner: bool | str = False
    # "existing": a member that finds no Raft state on its volume rejoins as a learner rather
    # than as the voter `peers` names (a lost volume must not vote: cluster/rejoin.py); the
    # operator sets it once the cluster has formed. "new": the initial members' first start.
    initial_state: str = "new"
    repair_interval: Duration = Duration(30)
    scrub_interval: Duration = Duration(86400)
    snapshot_entries: int = 5000  # Raft log entries kept before a metadata snapshot replaces them
    # Reed-Solomon "k+m" (e.g. "4+2"): chunks of at least `erasure_min_size` bytes are stored
    # as k data + m parity fragments on k + m members instead of replicated; "" (default): off.
    erasure_coding: str = ""
    erasure_min_size: Size = Size(256 * 1024)
    # the storage classes (x-amz-storage-class) erasure coding applies to; "*": all of them
    erasure_classes: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class StorageConfig:
    data_dir: str = "/var/lib/anode"
    chunk_size: Size = Size(4 * 1024 * 1024)
    gc_grace: Duration = Duration(600)
    gc_interval: Duration = Duration(300)
    chunk_cache: Size = Size(128 * 1024 * 1024)  # small verified chunks kept in memory
    inline_max: Size = Size(32 * 1024)  # bodies up to this size live in the metadata; 0: never
    # SSE-S3 master key, base64 of 32 bytes; empty: generated once, kept in the metadata
    master_key: str = ""
    lifecycle_interval: Duration = Duration(3600)  # how often the leader applies lifecycle rules
    lifecycle_day_seconds: Duration = Duration(86400)  # a lifecycle "day" (short in tests)
    # free space writes never take, and as much again in a file released when space runs out
    # (space.py): deletes, expiry, collection and restarts keep working on a full volume
    reserve: Size = Size(256 * 1024 * 1024)


@dataclass
class ParquetConfig:
    enable_cache: bool = True
    cache_size: Size = Size(256 * 1024 * 1024)
    enable_predicate_pushdown: bool = True
    enable_column_pruning: bool = True


@dataclass
class SelectConfig:
    max_query_cpu: Duration = Duration(120)  # CPU time one S3 Select query may use
    workers: int = 2  # threads running S3 Select queries (more queries wait their turn)


@dataclass
class S3Config:
    # AWS refuses SSE-C keys over plain HTTP; only for tests and TLS-terminating proxies
    sse_c_allow_insecure: bool = False


@dataclass
class AuditConfig:
    """One JSON line per S3 and admin request (audit/): to a rotated file, stdout, a webhook."""

    enabled: bool = False
    categories: list[str] = field(default_factory=lambda: list(AUDIT_CATEGORIES))
    file: str = "audit.log"  # relative: in storage.data_dir; empty: no file
    max_size: Size = Size(100 * 1024 * 1024)  # the file is rotated at this size
    backups: int = 5  # rotated files kept (audit.log.1 ... audit.log.N)
    stdout: bool = False  # also to the process's stdout (a container's logs)
    webhook_url: str = ""  # also POSTed there in batches (newline-delimited JSON)
    webhook_queue: int = 10000  # records waiting for the webhook; beyond, dropped and counted
    webhook_timeout: Duration = Duration(5)


@dataclass
class ConsoleConfig:
    """The web console on the admin port, under /console/ (console/)."""

    enabled: bool = True
    writes: bool = False  # upload and delete objects; read-only by default
    session_ttl: Duration = Duration(1800)  # a login lasts this long, then log in again
    max_upload: Size = Size(16 * 1024 * 1024)  # the largest file the browser may upload
    page_size: int = 100  # objects per page of the bucket browser


@dataclass
class RootConfig:
    access_key: str = ""
    secret_key: str = ""


@dataclass
class UserConfig:
    name: str = ""
    access_key: str = ""
    secret_key: str = ""
    email: str = ""  # optional: lets ACL grants name this user by e-mail address


@dataclass
class Config:
    node: NodeConfig = field(default_factory=NodeConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    parquet: ParquetConfig = field(default_factory=ParquetConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    s3: S3Config = field(default_factory=S3Config)
    root: RootConfig = field(default_factory=RootConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    users: list[UserConfig] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)

    @property
    def tls(self) -> bool:
        return bool(self.node.tls_cert_file)

    @property
    def scheme(self) -> str:
        """Of the S3 and admin URLs this node publishes."""
        return "https" if self.tls else "http"

    @property
    def internode_tls(self) -> bool:
        """Whether members send each other chunks over TLS (`node.internode_tls` resolved)."""
        mode = self.node.internode_tls
        return self.tls if mode == "auto" else bool(mode)

    @property
    def peer_ca_file(self) -> str:
        """What other members' certificates must chain to."""
        return self.node.tls_ca_file or self.node.tls_cert_file

    @property
    def clustered(self) -> bool:
        return bool(self.cluster.peers) or self.is_learner

    @property
    def is_learner(self) -> bool:
        """Whether this node starts as a Raft learner (`cluster.learner`, "auto" resolved)."""
        if self.cluster.learner == "auto":
            ids = {entry.partition("=")[0] for entry in self.cluster.peers}
            return bool(ids) and self.node.id not in ids
        return bool(self.cluster.learner)

    def advertised(self, addr: str) -> str:
        """host:port at which peers and clients reach one of this node's listeners."""
        host, port = parse_addr(addr)
        if self.node.advertise_host:
            host = self.node.advertise_host
        elif host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        return f"{host}:{port}"

    def erasure_scheme(self, storage_class: str = "STANDARD") -> tuple[int, int] | None:
        """(k, m) chunks of this storage class are coded with; None: they are replicated."""
        cluster = self.cluster
        if not cluster.erasure_coding:
            return None
        if "*" not in cluster.erasure_classes and storage_class not in cluster.erasure_classes:
            return None
        return parse_erasure(cluster.erasure_coding)

    def peer_addresses(self) -> dict[str, str]:
        """Raft addresses of the other voters, from `cluster.peers` ("id=host:port")."""
        peers = {}
        for entry in self.cluster.peers:
            node_id, sep, addr = entry.partition("=")
            if not sep or not node_id:
                raise ValueError(f"expected id=host:port, got {entry!r}")
            parse_addr(addr)
            if node_id != self.node.id:
                peers[node_id] = addr
        return peers


_SECTIONS = {
    "node": NodeConfig,
    "cluster": ClusterConfig,
    "storage": StorageConfig,
    "parquet": ParquetConfig,
    "select": SelectConfig,
    "s3": S3Config,
    "root": RootConfig,
    "audit": AuditConfig,
    "console": ConsoleConfig,
}


def _coerce(name: str, kind: Any, value: Any, *, from_env: bool) -> Any:
    try:
        if kind is Size:
            return parse_size(value)
        if kind is Duration:
            return parse_duration(value)
        if kind == bool | str:  # cluster.learner: a bool or "auto"
            if isinstance(value, str) and value.lower() == "auto":
                return "auto"
            if isinstance(value, bool) or from_env:
                return _coerce(name, bool, value, from_env=from_env)
            raise ValueError(f'expected true, false or "auto", got {value!r}')
        if kind is bool:
            if isinstance(value, bool):
                return value
            if from_env and str(value).lower() in (
                "1",
                "true",
                "yes",
                "on",
                "0",
                "false",
                "no",
                "off",
            ):
                return str(value).lower() in ("1", "true", "yes", "on")
            raise ValueError(f"expected true or false, got {value!r}")
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(f"expected an integer, got {value!r}")
            if isinstance(value, int) or (from_env and str(value).lstrip("-").isdigit()):
                return int(value)
            raise ValueError(f"expected an integer, got {value!r}")
        if kind == list[str]:
            if from_env and isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise ValueError(f"expected a list of strings, got {value!r}")
        if kind is str:
            if isinstance(value, str):
                return value
            raise ValueError(f"expected a string, got {value!r}")
    except ValueError as e:
        raise ConfigError(f"{name}: {e}") from None
    raise ConfigError(f"{name}: unsupported type")  # pragma: no cover - schema bug


def _fill(section_name: str, cls: type, values: Mapping[str, Any], *, from_env: bool) -> Any:
    hints = get_type_hints(cls)
    obj = cls()
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{section_name}.{key}: unknown key (known keys: {known})")
        setattr(obj, key, _coerce(f"{section_name}.{key}", hints[key], value, from_env=from_env))
    return obj


def _merge_env(cfg: Config, env: Mapping[str, str]) -> None:
    for var, value in env.items():
        if not var.startswith("ANODE_"):
            continue
        rest = var[len("ANODE_") :].lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS:
            continue  # other ANODE_* variables (e.g. ANODE_K8S_HOME) are not ours
        hints = get_type_hints(_SECTIONS[section])
        if key not in hints:
            raise ConfigError(f"{var}: unknown key {section}.{key}")
        setattr(
            getattr(cfg, section),
            key,
            _coerce(f"{var} ({section}.{key})", hints[key], value, from_env=True),
        )


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (optional), apply env overrides, validate, and return the config."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from None
    cfg = Config()
    for name, value in raw.items():
        if name == "users":
            if not isinstance(value, list):
                raise ConfigError("users: expected [[users]] tables")
            cfg.users = [
                _fill(f"users[{i}]", UserConfig, u, from_env=False) for i, u in enumerate(value)
            ]
        elif name in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a [{name}] table")
            setattr(cfg, name, _fill(name, _SECTIONS[name], value, from_env=False))
        else:
            raise ConfigError(
                f"{name}: unknown section (known: {', '.join([*_SECTIONS, 'users'])})"
            )
    _merge_env(cfg, os.environ if env is None else env)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Checks that span keys or need ranges; raises ConfigError naming the key."""
    for key in ("s3_addr", "admin_addr", "cluster_addr", "data_addr"):
        try:
            parse_addr(getattr(cfg.node, key))
        except ValueError as e:
            raise ConfigError(f"node.{key}: {e}") from None
    if not cfg.node.id or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", cfg.node.id):
        raise ConfigError(
            f"node.id: must be 1-63 letters, digits, '.', '_' or '-', got {cfg.node.id!r}"
        )
    if not 64 * 1024 <= cfg.storage.chunk_size <= 64 * 1024 * 1024:
        raise ConfigError("storage.chunk_size: must be between 64KiB and 64MiB")
    if cfg.storage.inline_max > 256 * 1024:  # it travels in a Raft entry (4 MiB batches)
        raise ConfigError("storage.inline_max: must be at most 256KiB")
    if cfg.storage.lifecycle_day_seconds <= 0 or cfg.storage.lifecycle_interval <= 0:
        raise ConfigError("storage.lifecycle_interval and lifecycle_day_seconds: must be positive")
    if cfg.select.max_query_cpu <= 0 or cfg.select.workers < 1:
        raise ConfigError("select.max_query_cpu and select.workers: must be positive")
    if cfg.storage.master_key:
        try:
            key = base64.b64decode(cfg.storage.master_key, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError("storage.master_key: expected base64 of 32 random bytes")
    for key in ("header_timeout", "body_timeout", "idle_timeout"):
        if getattr(cfg.node, key) <= 0:
            raise ConfigError(f"node.{key}: must be positive")
    if cfg.node.max_connections < 1:
        raise ConfigError("node.max_connections: must be at least 1")
    if bool(cfg.node.tls_cert_file) != bool(cfg.node.tls_key_file):
        raise ConfigError("node.tls_cert_file and node.tls_key_file: set both, or neither")
    if cfg.tls:
        try:
            server_context(cert_file=cfg.node.tls_cert_file, key_file=cfg.node.tls_key_file)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.internode_tls and not cfg.tls:
        raise ConfigError("node.internode_tls: needs node.tls_cert_file and tls_key_file")
    if cfg.node.tls_ca_file:
        try:
            peer_context(cert_file=cfg.node.tls_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"node.tls_ca_file: not a readable PEM certificate ({e})") from None
    if cfg.cluster.replication_factor < 1:
        raise ConfigError("cluster.replication_factor: must be at least 1")
    try:
        peers = cfg.peer_addresses()
    except ValueError as e:
        raise ConfigError(f"cluster.peers: {e}") from None
    if (peers or cfg.is_learner) and len(cfg.cluster.secret) < 16:
        raise ConfigError("cluster.secret: a cluster needs a shared secret of 16+ characters")
    if cfg.cluster.initial_state not in ("new", "existing"):
        raise ConfigError('cluster.initial_state: "new" or "existing"')
    if cfg.cluster.snapshot_entries < 10:
        raise ConfigError("cluster.snapshot_entries: must be at least 10")
    if cfg.cluster.placement_groups < 1:
        raise ConfigError("cluster.placement_groups: must be at least 1")
    _validate_erasure(cfg, peers)
    _validate_audit(cfg.audit)
    if cfg.console.session_ttl <= 0 or not 1 <= cfg.console.page_size <= 1000:
        raise ConfigError("console.session_ttl: must be positive; console.page_size: 1 to 1000")
    if bool(cfg.root.access_key) != bool(cfg.root.secret_key):
        raise ConfigError("root: set both access_key and secret_key, or neither")
    seen: set[str] = {cfg.root.access_key} if cfg.root.access_key else set()
    for i, user in enumerate(cfg.users):
        for key in ("name", "access_key", "secret_key"):
            if not getattr(user, key):
                raise ConfigError(f"users[{i}].{key}: required")
        if user.access_key in seen:
            raise ConfigError(f"users[{i}].access_key: duplicate access key {user.access_key!r}")
        seen.add(user.access_key)


def _validate_erasure(cfg: Config, peers: dict[str, str]) -> None:
    """`cluster.erasure_coding` must parse and be possible: k + m members to put fragments on."""
    cluster = cfg.cluster
    if not cluster.erasure_coding:
        return
    try:
        k, m = parse_erasure(cluster.erasure_coding)
    except ValueError as e:
        raise ConfigError(f"cluster.erasure_coding: {e}") from None
    scheme, width = f"{k}+{m}", k + m
    if not cfg.clustered:
        raise ConfigError(
            f"cluster.erasure_coding: {scheme} needs a cluster of at least {width} "
            "members (cluster.peers); a single node cannot spread fragments"
        )
    members = len(peers) + (0 if cfg.is_learner else 1)
    if not cfg.is_learner and members < width:
        raise ConfigError(
            f"cluster.erasure_coding: {scheme} puts each chunk on {width} members, "
            f"but cluster.peers names {members}"
        )
    unknown = set(cluster.erasure_classes) - STORAGE_CLASSES - {"*"}
    if unknown:
        raise ConfigError(f"cluster.erasure_classes: unknown storage classes {sorted(unknown)}")


def _validate_audit(audit: AuditConfig) -> None:
    unknown = set(audit.categories) - set(AUDIT_CATEGORIES)
    if unknown:
        raise ConfigError(f"audit.categories: unknown {sorted(unknown)} "
                          f"(known: {', '.join(AUDIT_CATEGORIES)})")
    if audit.enabled and not (audit.file or audit.stdout or audit.webhook_url):
        raise ConfigError("audit.enabled: set audit.file, audit.stdout or audit.webhook_url")
    if audit.webhook_url and not re.match(r"https?://", audit.webhook_url):
        raise ConfigError("audit.webhook_url: expected an http:// or https:// URL")
    if audit.max_size < 1024 or audit.backups < 0:
        raise ConfigError("audit.max_size: at least 1KiB; audit.backups: 0 or more")
    if audit.webhook_queue < 1 or audit.webhook_timeout <= 0:
        raise ConfigError("audit.webhook_queue and webhook_timeout: must be positive")


def as_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
