"""Storage verification: stream objects and compare them with their stored checksums; the canary
restore test. Works on any boto3-style S3 client (no Airflow here), so the benchmark and the
operator run the same code.

Per object, one GET (ChecksumMode=ENABLED) streamed in fixed-size chunks:
- x-amz-checksum-sha256 when present: full-object SHA-256, or a composite "<b64>-N" (SHA-256 of
  the parts' SHA-256 digests);
- else the ETag: MD5 of a single-part upload, or "<md5>-N" for a multipart upload, verified part
  by part (MD5 of the parts' MD5 digests) with the part size from HEAD ?partNumber=1, and the
  exact part sizes from HEAD ?partNumber=i when the parts are not all the same size;
- anything else (an ETag that is not an MD5, e.g. SSE-KMS) is reported unverifiable.
botocore also validates a full-object checksum itself on the way (FlexibleChecksumError): that
counts as a mismatch too. Concurrency is a bounded thread pool; memory is concurrency x chunk.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from maintenance.results import CheckResult

CHUNK = 1024 * 1024
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTI = re.compile(r"^([0-9a-f]{32})-(\d+)$")


@dataclass
class Outcome:
    key: str
    status: str                 # verified | mismatch | unverifiable | error
    method: str = ""            # sha256 | sha256-composite | md5 | md5-multipart
    detail: str = ""
    size: int = 0


@dataclass
class _Parts:
    """Hashes of a stream cut at part boundaries: per-part digests plus whole-object digests."""

    sizes: list[int] | None          # None: one part (the whole object)
    algorithms: tuple[str, ...]
    whole: dict[str, Any] = field(default_factory=dict)
    done: list[dict[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.whole = {a: hashlib.new(a) for a in self.algorithms}
        self._current = {a: hashlib.new(a) for a in self.algorithms}
        self._index, self._left = 0, (self.sizes[0] if self.sizes else -1)

    def update(self, data: bytes) -> None:
        for h in self.whole.values():
            h.update(data)
        if self.sizes is None:
            return
        view = memoryview(data)
        last = len(self.sizes) - 1
        while view:
            if self._left <= 0 and self._index < last:
                self.done.append({a: h.digest() for a, h in self._current.items()})
                self._current = {a: hashlib.new(a) for a in self.algorithms}
                self._index += 1
                self._left = self.sizes[self._index]
            n = len(view) if self._index >= last else min(self._left, len(view))
            for h in self._current.values():
                h.update(view[:n])
            view = view[n:]
            self._left -= n

    def part_digests(self) -> list[dict[str, bytes]]:
        return self.done + [{a: h.digest() for a, h in self._current.items()}]


def _composite(parts: list[dict[str, bytes]], algorithm: str) -> bytes:
    return hashlib.new(algorithm, b"".join(p[algorithm] for p in parts)).digest()


def _part_sizes(client: Any, bucket: str, key: str, size: int, count: int, exact: bool) -> list[int] | None:
    """Part sizes of a multipart object: from part 1 (equal parts), or each part's HEAD (exact)."""
    first = int(client.head_object(Bucket=bucket, Key=key, PartNumber=1)["ContentLength"])
    if not exact:
        last = size - first * (count - 1)
        return [first] * (count - 1) + [last] if 0 < last <= first else None
    sizes = [first] + [int(client.head_object(Bucket=bucket, Key=key, PartNumber=i)["ContentLength"])
                       for i in range(2, count + 1)]
    return sizes if sum(sizes) == size else None


def verify_object(client: Any, bucket: str, key: str, *, chunk: int = CHUNK) -> Outcome:
    """Stream one object and compare it with its stored checksum. Never raises."""
    try:
        return _verify(client, bucket, key, chunk)
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never a crash of the sweep
        name = type(exc).__name__
        if name == "FlexibleChecksumError":
            return Outcome(key, "mismatch", "botocore", "content does not match its stored checksum "
                           "(botocore response validation)")
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        return Outcome(key, "error", "", f"{code or name}")


def _verify(client: Any, bucket: str, key: str, chunk: int, exact_parts: bool = False) -> Outcome:
    response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    body = response["Body"]
    try:
        size = int(response.get("ContentLength") or 0)
        etag = str(response.get("ETag", "")).strip('"').lower()
        sha = response.get("ChecksumSHA256")
        sizes: list[int] | None = None
        if sha and "-" in sha:
            method, algorithms, count = "sha256-composite", ("sha256",), int(sha.rsplit("-", 1)[1])
        elif sha:
            method, algorithms, count = "sha256", ("sha256",), 1
        elif _MD5.match(etag):
            method, algorithms, count = "md5", ("md5",), 1
        elif (multi := _MULTI.match(etag)) is not None:
            method, algorithms, count = "md5-multipart", ("md5",), int(multi.group(2))
        else:
            return Outcome(key, "unverifiable", "", f"no SHA-256 checksum and the ETag {etag[:40]!r} is not an MD5 "
                           "(e.g. SSE-KMS encryption)", size)
        if count > 1:
            sizes = _part_sizes(client, bucket, key, size, count, exact_parts)
            if sizes is None:
                if not exact_parts:
                    body.close()
                    return _verify(client, bucket, key, chunk, exact_parts=True)
                return Outcome(key, "unverifiable", method, f"the sizes of its {count} parts are not readable", size)
        hashes = _Parts(sizes, algorithms)
        read = 0
        while data := body.read(chunk):
            read += len(data)
            hashes.update(data)
    finally:
        body.close()
    if read != size:
        return Outcome(key, "mismatch", method, f"read {read} bytes, the object says {size}", read)
    algorithm = algorithms[0]
    if count == 1:
        actual = hashes.whole[algorithm].digest()
    else:
        parts = hashes.part_digests()
        if len(parts) != count:
            return Outcome(key, "mismatch", method, f"{len(parts)} parts read, the checksum says {count}", read)
        actual = _composite(parts, algorithm)
    if algorithm == "sha256":
        expected = base64.b64decode(sha.split("-")[0])
    else:
        expected = bytes.fromhex(etag.split("-")[0])
    if actual == expected:
        return Outcome(key, "verified", method, "", read)
    if count > 1 and not exact_parts:
        # The parts may have had different sizes: recompute with the exact boundaries before calling it corrupt.
        return _verify(client, bucket, key, chunk, exact_parts=True)
    return Outcome(key, "mismatch", method, "content does not match its stored "
                   + ("x-amz-checksum-sha256" if algorithm == "sha256" else "ETag (MD5)"), read)


def verify_objects(client: Any, bucket: str, keys: Iterable[str], *, concurrency: int = 16,
                   chunk: int = CHUNK) -> list[Outcome]:
    """verify_object over many keys with at most `concurrency` objects in flight."""
    keys = list(keys)
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(keys))),
                            thread_name_prefix="verify") as pool:
        return list(pool.map(lambda k: verify_object(client, bucket, k, chunk=chunk), keys))


def select_keys(client: Any, bucket: str, prefix: str, *, newest: int | None, limit: int,
                exclude_prefix: str | None = None) -> tuple[list[str], bool]:
    """Keys under a prefix: the newest N (of at most `limit` listed) or all up to `limit`.
    Returns (keys, truncated): truncated when the listing stopped at the limit."""
    found: list[tuple[Any, str]] = []
    truncated = False
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            if exclude_prefix and item["Key"].startswith(exclude_prefix):
                continue
            if len(found) >= limit:
                truncated = True
                break
            found.append((item.get("LastModified"), item["Key"]))
        if truncated:
            break
    if newest is not None:
        found.sort(key=lambda pair: (pair[0] is not None, pair[0]), reverse=True)
        found = found[:newest]
    return [key for _, key in found], truncated


def checksum_result(bucket: str, outcomes: list[Outcome], *, target: str, truncated: bool = False,
                    runbook: str | None = "maintenance_monthly") -> CheckResult:
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("verified", "mismatch", "unverifiable", "error")}
    metrics = {**counts, "objects": len(outcomes), "bytes": sum(o.size for o in outcomes)}
    bad = [o for o in outcomes if o.status == "mismatch"]
    errors = [o for o in outcomes if o.status == "error"]
    unverifiable = [o for o in outcomes if o.status == "unverifiable"]
    evidence = {"mismatch": [f"{o.key}: {o.detail}" for o in bad[:50]],
                "error": [f"{o.key}: {o.detail}" for o in errors[:50]],
                "unverifiable": [f"{o.key}: {o.detail}" for o in unverifiable[:50]]}
    note = " (listing stopped at verify_limit)" if truncated else ""
    base = dict(check=f"storage.{bucket}.checksums", target=target, group="backups", runbook=runbook,
                provider="storage", metrics=metrics, evidence=evidence)
    if not outcomes:
        return CheckResult(status="warn", summary="no object found under the configured prefixes", **base)
    if bad or errors:
        names = ", ".join(o.key for o in (bad + errors)[:5])
        return CheckResult(status="fail", reason="checksum_mismatch" if bad else "read_error",
                           summary=f"{len(bad)} object(s) do not match their checksum, {len(errors)} unreadable, "
                                   f"of {len(outcomes)}: {names}{note}", **base)
    if unverifiable:
        return CheckResult(status="warn", summary=f"{counts['verified']} of {len(outcomes)} objects verified; "
                           f"{len(unverifiable)} unverifiable (no usable checksum): "
                           f"{', '.join(o.key for o in unverifiable[:5])}{note}", **base)
    return CheckResult(status="ok", summary=f"all {len(outcomes)} objects match their checksums{note}", **base)


def canary_restore_test(client: Any, bucket: str, prefix: str, *, target: str,
                        runbook: str | None = "maintenance_monthly",
                        token: Callable[[], str] = lambda: uuid.uuid4().hex) -> CheckResult:
    """Write a canary, overwrite it, restore the previous version, verify it, delete every version."""
    check = f"storage.{bucket}.restore_test"
    base = dict(check=check, target=target, group="backups", runbook=runbook, provider="storage")
    status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        return CheckResult(status="fail", reason="versioning_off", summary=(
            f"restore test impossible: versioning is {status or 'off'}, so an overwritten object has no "
            "previous version to restore"), **base)
    key = f"{prefix}{token()}.txt"
    original = f"maintenance canary {key} original".encode()
    outcome: CheckResult
    try:
        first = client.put_object(Bucket=bucket, Key=key, Body=original)
        client.put_object(Bucket=bucket, Key=key, Body=b"overwritten by the restore test")
        previous = first.get("VersionId")
        if not previous:
            versions = client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions") or []
            older = [v for v in versions if v["Key"] == key and not v.get("IsLatest")]
            previous = older[0]["VersionId"] if older else None
        if not previous:
            return CheckResult(status="fail", reason="no_previous_version",
                               summary="the overwritten canary has no previous version", **base)
        client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": previous})
        restored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if restored == original:
            outcome = CheckResult(status="ok", summary="canary written, overwritten and restored from its "
                                  "previous version: content verified", evidence={"key": key}, **base)
        else:
            outcome = CheckResult(status="fail", reason="restore_mismatch", evidence={"key": key}, summary=(
                "the canary restored from its previous version does not have the original content"), **base)
    finally:
        leftovers = _delete_all_versions(client, bucket, key)
    if leftovers:
        outcome.summary += f"; cleanup left {leftovers} version(s) of {key}"
        if outcome.status == "ok":
            outcome.status = "warn"
    return outcome


def _delete_all_versions(client: Any, bucket: str, key: str) -> int:
    left = 0
    try:
        listing = client.list_object_versions(Bucket=bucket, Prefix=key)
        for item in (listing.get("Versions") or []) + (listing.get("DeleteMarkers") or []):
            if item["Key"] != key:
                continue
            try:
                client.delete_object(Bucket=bucket, Key=key, VersionId=item["VersionId"])
            except Exception:  # noqa: BLE001
                left += 1
    except Exception:  # noqa: BLE001
        left += 1
    return left
