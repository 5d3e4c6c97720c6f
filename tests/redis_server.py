"""A real ``redis-server`` for the fleet tests: started on a free loopback port,
without persistence (a restart empties it, as a Redis without persistence
does), stopped and restarted on the same port at will.

``make test`` installs Debian's ``redis-server`` when it is not on ``PATH``
(``scripts/ensure-redis-server``); a machine without it fails these tests
with that message, rather than skipping them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not on PATH: `make test` installs it "
                "(scripts/ensure-redis-server), or install your system's redis-server"
            )
        self.executable = executable
        self.port = port if port is not None else free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None
        self.start()

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.ping():
                    return
            except redis.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def restart(self) -> None:
        """Stop and start again on the same port: every claim is lost."""
        self.stop()
        self.start()

    # Typed views of the few commands the tests use (redis-py leaves their
    # keyword arguments untyped).
    def ping(self) -> bool:
        return bool(self.client().ping())  # pyright: ignore[reportUnknownMemberType]

    def flush(self) -> None:
        self.client().flushall()  # pyright: ignore[reportUnknownMemberType]

    def get(self, key: str) -> str | None:
        value = self.client().get(key)
        return None if value is None else str(value)

    def keys(self, pattern: str) -> list[str]:
        keys = self.client().keys(pattern)  # pyright: ignore[reportUnknownMemberType]
        return [str(key) for key in keys]

    def client(self) -> redis.Redis:
        """One client per server run (closed by `stop()`: no socket left to the GC)."""
        if self._client is None:
            self._client = redis.Redis(
                host="127.0.0.1",
                port=self.port,
                password=self.password,
                decode_responses=True,
                socket_timeout=5,
            )
        return self._client
