"""Real network partitions: each node in a network namespace of its own, all joined by a bridge
in a hub namespace, and the test process reaching them through one more veth from the host.

    host (10.213.T.1) ── veth ── hub ns [bridge] ── veth ── node ns i (10.213.T.(10+i))

A partition drops (iptables, inside the node namespaces) every packet between a minority and a
majority at once, both ways, while the host still reaches every node; healing flushes those
rules. Only namespaces and links this module creates are touched, all named with a random tag,
and `close()` deletes them all (also after a failure). The subnet is one no host route uses.
The bridge lives in the hub namespace, not the host's, so the host's firewall (e.g. Docker's
FORWARD policy) never sees the traffic between nodes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable_reason() -> str | None:
    """Why partitions cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip") or not shutil.which("iptables"):
        return "needs the `ip` and `iptables` commands"
    probe = f"anode-probe-{secrets.token_hex(4)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Lab:
    """`n` node namespaces on one bridge; `addresses[i]` is node i's address."""

    n: int
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: int = 0
    namespaces: list[str] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)

    @property
    def hub(self) -> str:
        return f"anode-{self.tag}-hub"

    @property
    def host_address(self) -> str:
        return f"10.213.{self.subnet}.1"

    def address(self, i: int) -> str:
        return f"10.213.{self.subnet}.{10 + i}"

    def launcher(self, i: int) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.namespaces[i])

    def open(self) -> Lab:
        self.subnet = self._free_subnet()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _free_subnet(self) -> int:
        used = _ip("-4", "route", "show").stdout + _ip("-4", "addr", "show").stdout
        for third in sorted(range(1, 255), key=lambda _: secrets.randbelow(1 << 16)):
            if f"10.213.{third}." not in used:
                return third
        raise RuntimeError("no free 10.213.x.0/24 subnet")

    def _build(self) -> None:
        hub = self.hub
        self.namespaces.append(hub)
        _ip("netns", "add", hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        host_end, hub_end = f"anh{self.tag}", f"anq{self.tag}"
        _ip("link", "add", host_end, "type", "veth", "peer", "name", hub_end)
        _ip("link", "set", hub_end, "netns", hub)
        _ip("-n", hub, "link", "set", hub_end, "master", "br0", "up")
        _ip("addr", "add", f"{self.host_address}/24", "dev", host_end)
        _ip("link", "set", host_end, "up")
        for i in range(self.n):
            ns = f"anode-{self.tag}-n{i}"
            self.namespaces.insert(i, ns)
            _ip("netns", "add", ns)
            outer, inner = f"anv{self.tag}{i}", f"anp{self.tag}{i}"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", outer, "netns", hub)
            _ip("-n", hub, "link", "set", outer, "master", "br0", "up")
            _ip("link", "set", inner, "netns", ns)
            _ip("-n", ns, "link", "set", inner, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def partition(self, minority: list[int]) -> None:
        """Cut `minority` off from the other nodes (both ways, at once); the host reaches all."""
        majority = [i for i in range(self.n) if i not in minority]
        for side, other in ((minority, majority), (majority, minority)):
            for i in side:
                ns = self.namespaces[i]
                for j in other:
                    for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
                        subprocess.run(
                            [
                                "ip",
                                "netns",
                                "exec",
                                ns,
                                "iptables",
                                "-A",
                                chain,
                                flag,
                                self.address(j),
                                "-j",
                                "DROP",
                            ],
                            check=True,
                            timeout=30,
                        )
                self.cut.add(ns)

    def heal(self) -> None:
        for ns in sorted(self.cut):
            subprocess.run(["ip", "netns", "exec", ns, "iptables", "-F"], check=True, timeout=30)
        self.cut.clear()

    def close(self) -> None:
        """Delete every namespace made (their links go with them) and the host's veth end."""
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", f"anh{self.tag}", check=False)
        self.namespaces.clear()
