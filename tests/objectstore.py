"""A real S3 server for the tests: moto in server mode, on loopback, behind a TCP proxy
that can be cut (the store gone away) and restored (back, its objects intact)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def start_moto(port: int, auth: bool = False) -> subprocess.Popen:
    """``moto_server`` on 127.0.0.1:``port``; with ``auth``, credentials are checked once
    a user is made (``make_user``)."""
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "4"} if auth else {})}
    server = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(port)
    return server


def make_user(port: int) -> tuple[str, str]:
    """On an ``auth`` server: a user allowed everything; its access key and secret."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="runner")
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="runner", PolicyName="all", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="runner")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def s3(port: int, key: str = "testing", secret: str = "testing") -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=key,
        secret_key=secret,
        endpoint_override=f"127.0.0.1:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` refuses connections and drops
    the open ones, ``restore()`` listens again."""

    def __init__(self, port: int, target: int):
        self.port, self.target = port, target
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
