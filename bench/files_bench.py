"""Upload and download throughput of one large file, and chatd's peak memory while it moves.

Starts chatd on its embedded store (a fresh data dir, a free loopback port),
registers a user, makes them a member of a room over the WebSocket (the only
way to join), then for each round uploads a random file of ``--size`` MiB as
``multipart/form-data`` and downloads it back, checking every byte. Reports
MiB/s each way and the peak RSS (VmHWM) of chatd and of its store process,
next to their RSS before the first upload. Standard library only; 127.0.0.1
only; every wait is bounded.

    python bench/files_bench.py                 # 20 MiB, 3 rounds
    python bench/files_bench.py --size 20 --rounds 5
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchserver import ServerProcess, children_of, free_port, status_kib  # the script's directory is on sys.path

ROOM = "files-bench"
BOUNDARY = "chatdBenchBoundary0123456789"
TIMEOUT = 120.0  # seconds for any one request


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def join_room(port: int, token: str) -> None:
    """Open a WebSocket, send join, wait for joined: the user is then a member of ROOM for good."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        payload = json.dumps({"type": "join", "room": ROOM}).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        received = b""
        deadline = time.monotonic() + 30
        while b'"joined"' not in received:
            if time.monotonic() > deadline:
                raise SystemExit("no joined frame within 30 s")
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit(f"the socket closed before joined: {received[:200]!r}")
            received += chunk


def multipart(name: str, data: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20, help="file size in MiB (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="upload+download rounds (default 3)")
    args = parser.parse_args()
    size = args.size * 1024 * 1024

    data_dir = Path(tempfile.mkdtemp(prefix="files-bench-"))
    port = free_port()
    argv = [str(Path(sys.executable).with_name("twistd")), "-n", "--pidfile=", "chatd", "--data-dir", str(data_dir / "data"),
            "--listen", f"tcp:{port}:interface=127.0.0.1", "--bcrypt-cost", "4", "--auth-rate", "0",
            "--max-upload", str(size + 1024)]
    server = ServerProcess(argv, port=port, log_path=data_dir / "chatd.log", name="chatd")
    try:
        server.start()
        server.wait_healthy(60)
        status, body = request(port, "POST", "/api/auth/register",
                               json.dumps({"username": "bencher", "email": "b@bench.example", "password": "bench-password"}).encode(),
                               {"Content-Type": "application/json"})
        if status != 201:
            raise SystemExit(f"register: {status} {body[:200]!r}")
        token = json.loads(body)["token"]
        join_room(port, token)
        store_pid = next(iter(children_of(server.pid)), None)
        before = {"chatd": status_kib(server.pid), "store": status_kib(store_pid)}
        auth = {"Authorization": f"Bearer {token}"}
        ups, downs = [], []
        for round_number in range(args.rounds):
            data = os.urandom(size)
            body = multipart(f"round-{round_number}.bin", data)
            started = time.monotonic()
            status, answer = request(port, "POST", f"/api/rooms/{ROOM}/files", body,
                                     {**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            ups.append(time.monotonic() - started)
            if status != 201:
                raise SystemExit(f"upload: {status} {answer[:300]!r}")
            url = json.loads(answer)["file"]["url"]
            started = time.monotonic()
            status, back = request(port, "GET", url, headers=auth)
            downs.append(time.monotonic() - started)
            if status != 200 or hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
                raise SystemExit(f"download: {status}, {len(back)} bytes, not the file uploaded")
        mib = size / 1024 / 1024
        peak = {"chatd": status_kib(server.pid, "VmHWM"), "store": status_kib(store_pid, "VmHWM")}
        result = {
            "file_mib": args.size, "rounds": args.rounds,
            "upload_mib_per_s": [round(mib / t, 1) for t in ups],
            "download_mib_per_s": [round(mib / t, 1) for t in downs],
            "rss_before_mib": {k: v and round(v / 1024, 1) for k, v in before.items()},
            "peak_rss_mib": {k: v and round(v / 1024, 1) for k, v in peak.items()},
        }
        print(json.dumps(result, indent=2))
        return 0
    finally:
        server.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
