"""Network trouble in words: what an httpx exception means, and whether to retry it.

httpx maps httpcore's exceptions once; this maps httpx's once more, into the `error` a
user reads in a page-error's detail ("connect timeout after 30s", "connection refused").
"""

from __future__ import annotations

import socket

import httpx


def secs(value: float) -> str:
    """A duration as the messages write it: 30s, 2.5s."""
    return f"{value:g}s"


def describe_failure(
    exc: httpx.HTTPError, timeout_s: float, *, started: bool, bytes_read: int
) -> str:
    """What an httpx exception means, in words a user can act on (`started`: a response
    had begun, `bytes_read` of its body had arrived)."""
    if started:
        if isinstance(exc, httpx.TimeoutException):
            return f"read timeout after {secs(timeout_s)} mid-body ({bytes_read} bytes read)"
        return f"connection lost mid-body after {bytes_read} bytes{_why(exc)}"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timeout after {secs(timeout_s)}"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timeout after {secs(timeout_s)}"
    if isinstance(exc, httpx.WriteTimeout):
        return f"write timeout after {secs(timeout_s)}"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection within {secs(timeout_s)}"
    if isinstance(exc, httpx.ConnectError):
        return _connect_problem(exc)
    if isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc):
        return "server closed the connection without a response"
    if isinstance(exc, httpx.NetworkError):
        return f"connection lost before a response{_why(exc)}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL{_why(exc)}"
    return f"{type(exc).__name__}{_why(exc)}"


def _why(exc: Exception) -> str:
    return f" ({exc})" if str(exc) else ""


def _connect_problem(exc: httpx.ConnectError) -> str:
    """Why a connection failed: httpx's message hides the cause (anyio wraps it), so dig."""
    cause: BaseException | None = exc
    for _ in range(10):  # the chain is short; the bound guards against a cycle
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host ({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect ({exc})"


def is_transient(exc: httpx.HTTPError) -> bool:
    """A failure worth retrying: a timeout, a network error, a broken response."""
    transient = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    return isinstance(exc, transient)
