"""Benchmark of the storage verifier (plugins/maintenance/checks/object_checksums.py).

A program, not a test:  .venv/bin/python benchmarks/backup_verify.py [--objects 1000] [--big-mb 1024]

Set-up: moto's S3 server in its own process, behind a small HTTP proxy (another process) that
adds 30 ms to every request, as a real object store's round trip does (without it moto itself
is the bottleneck). Objects are uploaded straight to moto; every measured request goes through
the proxy.
1. N small objects: our verifier (bounded thread pool) against a sequential boto3 loop
   (GET, read, MD5 against the ETag) through the same proxy: speedup, target >= 5x.
2. One big object (multipart upload, 8 MiB parts) verified part by part in a fresh process:
   its peak RSS (ru_maxrss), target <= 150 MB.
The last line printed is one JSON object: objects, wall_s, sequential_s, speedup,
big_object_peak_rss_mb (plus a few details).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

BUCKET = "bench-backups"
MB = 1024 * 1024
CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret", "region_name": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


# -- the delaying proxy (runs in its own process) ------------------------------------------------
def run_proxy(listen: int, upstream: int, delay_ms: float) -> None:
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            time.sleep(delay_ms / 1000)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=300)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=300)
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
            declared = response.getheader("Content-Length")
            data = None if declared is not None or self.command == "HEAD" else response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", declared if declared is not None else str(len(data or b"")))
            self.end_headers()
            if self.command == "HEAD":
                response.read()
                return
            if data is not None:
                self.wfile.write(data)
                return
            while block := response.read(MB):
                self.wfile.write(block)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", listen), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.serve_forever()


# -- one big object in a fresh process: peak RSS -----------------------------------------------------
def verify_one(endpoint: str, key: str, concurrency: int) -> None:
    import boto3
    from botocore.config import Config

    from maintenance.checks.object_checksums import verify_objects

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=concurrency), **CREDS)
    started = time.perf_counter()
    [outcome] = verify_objects(client, BUCKET, [key], concurrency=concurrency)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
    print(json.dumps({"status": outcome.status, "method": outcome.method, "detail": outcome.detail,
                      "bytes": outcome.size, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1)}))


# -- the benchmark -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the big object (0: skip)")
    parser.add_argument("--proxy", nargs=3, metavar=("LISTEN", "UPSTREAM", "DELAY_MS"), help=argparse.SUPPRESS)
    parser.add_argument("--verify-one", nargs=2, metavar=("ENDPOINT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.proxy:
        return run_proxy(int(args.proxy[0]), int(args.proxy[1]), float(args.proxy[2]))
    if args.verify_one:
        return verify_one(args.verify_one[0], args.verify_one[1], args.concurrency)

    import boto3
    from botocore.config import Config

    from maintenance.checks.object_checksums import select_keys, verify_objects

    moto_port, proxy_port = free_port(), free_port()
    children = [
        subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, __file__, "--proxy", str(proxy_port), str(moto_port), str(args.delay_ms)]),
    ]
    try:
        wait_for(moto_port)
        wait_for(proxy_port)
        direct_url, proxy_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{proxy_port}"
        direct = boto3.client("s3", endpoint_url=direct_url, config=Config(max_pool_connections=16), **CREDS)
        direct.create_bucket(Bucket=BUCKET)

        keys = [f"small/{i:05d}.bin" for i in range(args.objects)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: direct.put_object(Bucket=BUCKET, Key=k, Body=os.urandom(2048 + hash(k) % 6000)),
                          keys))
        print(f"uploaded {len(keys)} small objects; proxy adds {args.delay_ms:g} ms per request", file=sys.stderr)

        # ours: listing + bounded-concurrency streamed verification, through the proxy
        ours = boto3.client("s3", endpoint_url=proxy_url, config=Config(max_pool_connections=args.concurrency), **CREDS)
        started = time.perf_counter()
        listed, _ = select_keys(ours, BUCKET, "small/", newest=None, limit=args.objects)
        outcomes = verify_objects(ours, BUCKET, listed, concurrency=args.concurrency)
        wall = time.perf_counter() - started
        verified = sum(o.status == "verified" for o in outcomes)
        print(f"ours: {verified}/{len(outcomes)} verified in {wall:.2f} s", file=sys.stderr)

        # baseline: the obvious sequential boto3 loop through the same proxy
        plain = boto3.client("s3", endpoint_url=proxy_url, **CREDS)
        started = time.perf_counter()
        ok = 0
        for page in plain.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="small/"):
            for item in page.get("Contents", []):
                response = plain.get_object(Bucket=BUCKET, Key=item["Key"])
                ok += hashlib.md5(response["Body"].read()).hexdigest() == response["ETag"].strip('"')
        sequential = time.perf_counter() - started
        print(f"sequential: {ok} verified in {sequential:.2f} s", file=sys.stderr)

        big: dict = {}
        if args.big_mb:
            key = "big/object.bin"
            part = 8 * MB
            upload = direct.create_multipart_upload(Bucket=BUCKET, Key=key)
            parts, left, number = [], args.big_mb * MB, 1
            started = time.perf_counter()
            block = os.urandom(part)
            while left > 0:
                size = min(part, left)
                data = block[:size] if number % 2 else block[::-1][:size]   # not all parts identical
                etag = direct.upload_part(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=number,
                                          Body=data)["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                left -= size
                number += 1
            direct.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                             MultipartUpload={"Parts": parts})
            print(f"uploaded {args.big_mb} MiB in {len(parts)} parts in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            done = subprocess.run([sys.executable, __file__, "--verify-one", proxy_url, key],
                                  capture_output=True, text=True, check=True)
            big = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"big object: {big}", file=sys.stderr)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)

    print(json.dumps({
        "objects": len(outcomes), "wall_s": round(wall, 2), "sequential_s": round(sequential, 2),
        "speedup": round(sequential / wall, 2), "big_object_peak_rss_mb": big.get("peak_rss_mb"),
        "verified": verified, "concurrency": args.concurrency, "delay_ms": args.delay_ms,
        "big_object_mb": args.big_mb, "big_object_status": big.get("status"), "big_object_s": big.get("seconds"),
    }))


if __name__ == "__main__":
    main()
