"""Package registries: the latest version of a package on PyPI (JSON API) and npm, and lock
files read from a URL (a raw file URL of the app's repository, with an optional token).

PyPI: GET {base}/pypi/{name}/json -> info.version. npm: GET {base}/{name} (scoped names as
@scope%2fname) with the abbreviated-metadata Accept header -> dist-tags.latest.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from maintenance.hooks.http_policy import MALFORMED, ProviderError, redact
from maintenance.hooks.public import PublicApiHook, by_deadline, read_limited

NPM_ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"


class PyPIHook(PublicApiHook):
    def __init__(self, base_url: str = "https://pypi.org", **kwargs: Any) -> None:
        super().__init__(None, base_url=base_url, **kwargs)

    def latest(self, name: str) -> str:
        body = self.get_json(f"/pypi/{name}/json")
        version = (body.get("info") or {}).get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            raise ProviderError(MALFORMED, f"PyPI {name}: no info.version in the answer")
        return version


class NpmHook(PublicApiHook):
    def __init__(self, base_url: str = "https://registry.npmjs.org", **kwargs: Any) -> None:
        super().__init__(None, base_url=base_url, **kwargs)

    def latest(self, name: str) -> str:
        path = "/" + name.replace("/", "%2f") if name.startswith("@") else f"/{name}"
        body = self.get_json(path, headers={"Accept": NPM_ABBREVIATED})
        latest = (body.get("dist-tags") or {}).get("latest") if isinstance(body, dict) else None
        if not isinstance(latest, str) or not latest:
            raise ProviderError(MALFORMED, f"npm {name}: no dist-tags.latest in the answer")
        return latest


def latest_versions(lookup: Callable[[str], str], names: list[str], workers: int = 8,
                    ) -> tuple[dict[str, str | None], dict[str, str]]:
    """Look many names up a few at a time: (name -> latest, name -> error)."""
    latest: dict[str, str | None] = {}
    errors: dict[str, str] = {}

    def one(name: str) -> None:
        try:
            latest[name] = lookup(name)
        except ProviderError as exc:
            latest[name] = None
            errors[name] = exc.reason if exc.status == 404 else str(exc)

    if names:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
            list(pool.map(one, names))
    return latest, errors


MAX_FILE_BYTES = 50 * 1024 * 1024     # a lock file larger than this is not read (a 2 GB answer never is)
FETCH_SECONDS = 300.0                 # the whole download, however slowly the server sends it


class FileFetchHook(PublicApiHook):
    """GET a file by absolute URL; with a connection, its password is sent as a Bearer token."""

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, base_url="http://unused.invalid", **kwargs)

    def content(self, url: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """The file's bytes, streamed: past max_bytes or FETCH_SECONDS it is a ProviderError, never read whole."""
        safe = redact(url, self._secrets)
        deadline = time.monotonic() + FETCH_SECONDS
        response = by_deadline(lambda: self.request("GET", url, expect_json=False, stream=True), deadline, f"GET {safe}")
        body, more = read_limited(response, max_bytes, deadline=deadline, what=f"GET {safe}")
        if more:
            raise ProviderError("too_large", f"GET {safe}: larger than {max_bytes:,} bytes, not read further")
        return body
