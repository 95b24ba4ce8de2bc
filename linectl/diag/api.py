"""The running daemon's HTTP API (http.md), as diag asks it: a small blocking client.

The address is `--url`, else the config's `[http] listen`, else http.md's
default 127.0.0.1:8080; `https://` when the config sets `[http] cert_file`. The token is `--token`, else `$LINECTL_TOKEN`, sent as
`Authorization: Bearer`. Failures are `ApiError` with a kind (`unreachable`,
`unauthorized`, `forbidden`, `http`) and one line for a technician.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any

from linectl.config import load_site_config, parse_listen

DEFAULT_LISTEN = "127.0.0.1:8080"
TOKEN_ENV = "LINECTL_TOKEN"
TIMEOUT_S = 5.0


class ApiError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def base_url(url: str | None, config: str | None) -> str:
    """Where the daemon's API is: --url, the config's [http] listen, or the default.
    A daemon listening on every address is asked on this PC's loopback."""
    if url:
        return url.rstrip("/")
    listen, scheme = DEFAULT_LISTEN, "http"
    if config:
        http = load_site_config(config).http
        if not http.enabled:
            raise ApiError(
                "disabled", f"{config} has [http] enabled = false: the daemon has no API to ask"
            )
        listen, scheme = http.listen, "https" if http.cert_file else "http"
    host, port = parse_listen(listen)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def token_of(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or None


def get_json(base: str, path: str, token: str | None, timeout_s: float = TIMEOUT_S) -> Any:
    """GET base+path with the bearer token; the decoded JSON body, or ApiError."""
    req = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as rsp:
            return json.loads(rsp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = _error_message(e)
        if e.code == 401:
            hint = (
                "the token was refused"
                if token
                else f"no token given: use --token or set {TOKEN_ENV}"
            )
            raise ApiError(
                "unauthorized",
                f"the daemon at {base} answered 401: {hint} "
                "(`linectl user token NAME` prints one for a technician's account)",
            ) from None
        if e.code == 403:
            raise ApiError(
                "forbidden",
                f"the daemon at {base} answered 403: this token's account lacks the right "
                f"for {path} (it needs the technician role){detail}",
            ) from None
        raise ApiError(
            "http", f"the daemon at {base} answered {e.code} to {path}{detail}"
        ) from None
    except urllib.error.URLError as e:
        raise ApiError("unreachable", _unreachable(base, e.reason, timeout_s)) from None
    except TimeoutError:
        raise ApiError(
            "unreachable", f"the daemon at {base} did not answer in {timeout_s * 1000:g} ms"
        ) from None
    except ConnectionError as e:
        raise ApiError("unreachable", _unreachable(base, e, timeout_s)) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            "http", f"the daemon at {base} answered {path} with something not JSON"
        ) from None


def _unreachable(base: str, reason: object, timeout_s: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return (
            f"no daemon answers at {base}: connection refused "
            "(is `linectl run` running, with [http] enabled, on that address?)"
        )
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"the daemon at {base} did not answer in {timeout_s * 1000:g} ms"
    return f"cannot reach the daemon at {base}: {reason}"


def _error_message(e: urllib.error.HTTPError) -> str:
    """http.md's `{"error": {"message"}}`, when the body has one."""
    try:
        doc = json.loads(e.read().decode("utf-8"))
        return f": {doc['error']['message']}"
    except Exception:
        return ""
