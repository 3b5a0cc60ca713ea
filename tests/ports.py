"""A free TCP port on 127.0.0.1, for the processes the tests start.

Shared by tests/node, tests/cluster and tests/operator: pytest's `pythonpath` puts tests/ on
sys.path (as for selfsigned.py).
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
