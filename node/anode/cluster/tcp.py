"""pysyncobj's TCP transport, with frames authenticated before anything is buffered.

pysyncobj's own connection reads a 4-byte length and buffers that many bytes (appending to an
immutable `bytes`, so quadratic) before it checks anything: one connection without the secret
that declared 2 GiB and kept sending stalled the Raft thread of the member it reached
(issue 12). Here a connection reads a fixed-size header whose MAC needs the cluster secret
(`wire.SealedFrames.open_header`) and only then the body it declares, never more than the
frame limit, and much less before the connection's first frame has been opened. A peer without
the secret is dropped on its first header, and costs at most `HEADER_SIZE` bytes meanwhile.
Connections that have not proved the secret are few and short-lived: each must deliver a
sealed frame within `handshake_timeout`, and beyond `max_unauthenticated` of them the oldest is
dropped. A frame that stops arriving halfway is dropped after the connection timeout.

The classes keep pysyncobj's interfaces (`TcpConnection`, `TcpServer`), so `TCPTransport` runs
unchanged apart from the factories overridden in `GuardedTransport`.
"""

from __future__ import annotations

import errno
import functools
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import pysyncobj.pickle as pickle
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.monotonic import monotonic
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE, _getAddrType, set_keepalive
from pysyncobj.transport import TCPTransport

from .wire import HEADER_SIZE, FrameError, FrameHeader, SealedFrames

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 5.0  # to deliver the first sealed frame after connecting
MAX_UNAUTHENTICATED = 16  # per listener; members need one each, briefly
FIRST_FRAME_LIMIT = 4096  # the first message each way is a 32-byte random key
_RW = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE | POLL_EVENT_TYPE.ERROR
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK)


class FramedConnection:
    """One Raft connection (pysyncobj's `TcpConnection` interface)."""

    def __init__(
        self,
        poller: Any,
        *,
        sock: socket.socket | None = None,
        timeout: float = 10.0,
        send_buffer: int = 2**13,
        recv_buffer: int = 2**13,
        keepalive: tuple[int, int, int] | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        # pysyncobj's transport sets these (the random keys bind messages to the connection)
        self.encryptor: SealedFrames | None = None
        self.sendRandKey: bytes | None = None
        self.recvRandKey: bytes | None = None
        self.recvLastTimestamp = 0
        self.authenticated = False  # a frame has been opened on this connection
        self._poller = poller
        self._timeout = timeout
        self._handshake_timeout = handshake_timeout
        self._send_buffer, self._recv_buffer = send_buffer, recv_buffer
        self._keepalive = keepalive
        self._on_message: Callable[[Any], None] | None = None
        self._on_connected: Callable[[], None] | None = None
        self._on_disconnected: Callable[[], None] | None = None
        self._read = bytearray()
        self._write = bytearray()
        self._header: FrameHeader | None = None
        self._last_read = self._opened = monotonic()
        self._sock = sock
        self._fileno: int | None = None
        self._state = CONNECTION_STATE.DISCONNECTED
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
            self._fileno = sock.fileno()
            self._state = CONNECTION_STATE.CONNECTED
            self._set_keepalive()
            poller.subscribe(self._fileno, self._process, _RW)

    # ---- pysyncobj's interface ------------------------------------------------------------

    @property
    def state(self) -> int:
        return self._state

    def fileno(self) -> int | None:
        return self._fileno

    def setOnConnectedCallback(self, callback: Callable[[], None]) -> None:
        self._on_connected = callback

    def setOnMessageReceivedCallback(self, callback: Callable[[Any], None]) -> None:
        self._on_message = callback

    def setOnDisconnectedCallback(self, callback: Callable[[], None]) -> None:
        self._on_disconnected = callback

    def getSendBufferSize(self) -> int:
        return len(self._write)

    def connect(self, host: str | None, port: int) -> bool:
        if host is None:
            return False
        self._reset()
        self._sock = socket.socket(_getAddrType(host), socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_buffer)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._set_keepalive()
        self._sock.setblocking(False)
        self._last_read = self._opened = monotonic()
        try:
            self._sock.connect((host, port))
        except OSError as e:
            if e.errno not in (errno.EINPROGRESS, *_AGAIN):
                return False
        self._fileno = self._sock.fileno()
        self._state = CONNECTION_STATE.CONNECTING
        self._poller.subscribe(self._fileno, self._process, _RW)
        return True

    def send(self, message: Any) -> None:
        assert self.encryptor is not None, "Raft connections are always sealed"
        if self.sendRandKey:
            message = (self.sendRandKey, message)
        self._write += self.encryptor.seal(pickle.dumps(message), int(monotonic()))
        self._try_send()

    def disconnect(self) -> None:
        connected = self._state != CONNECTION_STATE.DISCONNECTED
        self.sendRandKey = self.recvRandKey = None
        self.recvLastTimestamp = 0
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        self._reset()
        self._state = CONNECTION_STATE.DISCONNECTED
        if connected and self._on_disconnected is not None:
            self._on_disconnected()

    # ---- limits ---------------------------------------------------------------------------

    def expired(self, now: float) -> bool:
        """Connected too long without proving the secret, or a frame stalled halfway."""
        if self._state == CONNECTION_STATE.DISCONNECTED:
            return False
        if not self.authenticated and now - self._opened > self._handshake_timeout:
            return True
        stalled = self._header is not None or bool(self._read)
        return stalled and now - self._last_read > self._timeout

    # ---- I/O ------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._read = bytearray()
        self._write = bytearray()
        self._header = None
        self.authenticated = False

    def _set_keepalive(self) -> None:
        if self._sock is not None and self._keepalive is not None:
            set_keepalive(self._sock, *self._keepalive)

    def _process(self, descr: int, event: int) -> None:
        if descr != self._fileno:
            self._poller.unsubscribe(descr)
            return
        if event & POLL_EVENT_TYPE.ERROR:
            self.disconnect()
            return
        if monotonic() - self._last_read > self._timeout:
            self.disconnect()
            return
        assert self._sock is not None
        if event & (POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.WRITE):
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()
                return
            if self._state == CONNECTION_STATE.CONNECTING:
                if self._on_connected is not None:
                    self._on_connected()
                if self._state != CONNECTION_STATE.DISCONNECTED:
                    self._state = CONNECTION_STATE.CONNECTED
                    self._last_read = monotonic()
                return
        if event & POLL_EVENT_TYPE.WRITE:
            self._try_send()
            if self._state == CONNECTION_STATE.DISCONNECTED:
                return
            wanted = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
            if self._write:
                wanted |= POLL_EVENT_TYPE.WRITE
            self._poller.subscribe(descr, self._process, wanted)
        if event & POLL_EVENT_TYPE.READ:
            self._receive()

    def _try_send(self) -> None:
        while self._write and self._sock is not None:
            try:
                sent = self._sock.send(self._write)
            except OSError as e:
                if e.errno not in _AGAIN:
                    self.disconnect()
                return
            if sent <= 0:
                return
            del self._write[:sent]

    def _receive(self) -> None:
        """Read what is there and deliver every complete frame, one frame buffered at most."""
        while self._sock is not None:
            try:
                incoming = self._sock.recv(self._recv_buffer)
            except OSError as e:
                if e.errno not in _AGAIN:
                    self.disconnect()
                return
            if not incoming:
                self.disconnect()
                return
            self._last_read = monotonic()
            self._read += incoming
            try:
                while (message := self._next_message()) is not _NOTHING:
                    if self._on_message is not None:
                        self._on_message(message)
                    if self._state == CONNECTION_STATE.DISCONNECTED:
                        return
            except FrameError as e:
                log.info("raft connection dropped: %s", e)
                self.disconnect()
                return

    def _next_message(self) -> Any:
        assert self.encryptor is not None
        if self._header is None:
            if len(self._read) < HEADER_SIZE:
                return _NOTHING
            limit = None if self.authenticated else FIRST_FRAME_LIMIT
            header = self.encryptor.open_header(bytes(self._read[:HEADER_SIZE]), max_length=limit)
            if header.timestamp < self.recvLastTimestamp:
                raise FrameError("frame older than the previous one")
            del self._read[:HEADER_SIZE]
            self._header = header
        header = self._header
        if len(self._read) < header.length:
            return _NOTHING
        body = bytes(self._read[: header.length])
        del self._read[: header.length]
        self._header = None
        data = self.encryptor.open_body(header, body)
        self.authenticated = True
        self.recvLastTimestamp = header.timestamp
        message = pickle.loads(data)
        if self.recvRandKey:
            if not (isinstance(message, tuple) and len(message) == 2):
                raise FrameError("message without the connection's key")
            key, message = message
            if key != self.recvRandKey:
                raise FrameError("message sealed for another connection")
        return message


_NOTHING = object()


class GuardedServer:
    """The Raft listener (pysyncobj's `TcpServer` interface), with `max_unauthenticated`."""

    def __init__(
        self,
        poller: Any,
        host: str,
        port: int,
        on_connection: Callable[[FramedConnection], None],
        *,
        connection: Callable[..., FramedConnection],
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
    ) -> None:
        self._poller = poller
        self._address = (host, int(port))
        self._family = _getAddrType(host)
        self._on_connection = on_connection
        self._connection = connection
        self._max_unauthenticated = max_unauthenticated
        self._pending: deque[FramedConnection] = deque()
        self._sock: socket.socket | None = None

    def bind(self) -> None:
        self._sock = socket.socket(self._family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setblocking(False)
        self._sock.bind(self._address)
        self._sock.listen(64)
        self._poller.subscribe(
            self._sock.fileno(), self._accept, POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
        )

    def unbind(self) -> None:
        if self._sock is not None:
            self._poller.unsubscribe(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _accept(self, descr: int, event: int) -> None:
        if event & POLL_EVENT_TYPE.ERROR:
            self.unbind()
            return
        assert self._sock is not None
        try:
            sock, _ = self._sock.accept()
        except OSError as e:
            if e.errno not in _AGAIN:  # e.g. EMFILE: try again on the next event
                log.warning("raft listener: accept failed: %s", e)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        pending = self._pending
        for conn in list(pending):
            if conn.authenticated or conn.state == CONNECTION_STATE.DISCONNECTED:
                pending.remove(conn)
        while len(pending) >= self._max_unauthenticated:
            pending.popleft().disconnect()
        conn = self._connection(sock=sock)
        pending.append(conn)
        self._on_connection(conn)


class GuardedTransport(TCPTransport):
    """pysyncobj's TCP transport on `FramedConnection`s and a `GuardedServer`."""

    def _new_connection(self, **kwargs: Any) -> FramedConnection:
        conf = self._syncObj.conf
        conn = FramedConnection(
            self._syncObj._poller,
            timeout=conf.connectionTimeout,
            send_buffer=conf.sendBufferSize,
            recv_buffer=conf.recvBufferSize,
            keepalive=conf.tcp_keepalive,
            **kwargs,
        )
        conn.encryptor = self._syncObj.encryptor
        return conn

    def _createServer(self) -> None:
        address = self._syncObj.conf.bindAddress or self._selfNode.address
        host, port = address.rsplit(":", 1)
        if self._syncObj.conf.bindAddress is None:
            host = "::" if ":" in host else "0.0.0.0"
        if host not in ("0.0.0.0", "::"):
            host = globalDnsResolver().resolve(host)
        self._server = GuardedServer(
            self._syncObj._poller,
            host,
            int(port),
            self._onNewIncomingConnection,
            connection=self._new_connection,
        )

    def addNode(self, node: Any) -> None:
        self._nodes.add(node)
        self._nodeAddrToNode[node.address] = node
        if self._shouldConnect(node):
            conn = self._new_connection()
            conn.setOnConnectedCallback(functools.partial(self._onOutgoingConnected, conn))
            conn.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
            conn.setOnDisconnectedCallback(functools.partial(self._onDisconnected, conn))
            self._connections[node] = conn

    def _onTick(self) -> None:
        super()._onTick()
        now = monotonic()
        for conn in [*self._unknownConnections, *self._connections.values()]:
            if conn.expired(now):
                conn.disconnect()
