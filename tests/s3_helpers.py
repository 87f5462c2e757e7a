"""Pointing s3fs at an S3 endpoint through the environment, as a pod's environment would (shared by the
``s3_bucket`` fixture and tests that put something between s3fs and the server)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fsspec.config


def s3_env(endpoint: str, key: str = "testing", secret: str = "testing") -> dict[str, str]:
    return {"FSSPEC_S3_ENDPOINT_URL": endpoint, "FSSPEC_S3_KEY": key, "FSSPEC_S3_SECRET": secret}


def use_s3_endpoint(monkeypatch, endpoint: str, key: str = "testing", secret: str = "testing") -> None:
    """Point s3fs at ``endpoint`` (with these credentials) through the environment, as a pod's would."""
    import s3fs

    for name, value in s3_env(endpoint, key, secret).items():
        monkeypatch.setenv(name, value)
    # fsspec reads FSSPEC_* once, at import: rebuild its config from the environment we just set.
    conf: dict = {}
    fsspec.config.set_conf_env(conf)
    monkeypatch.setattr(fsspec.config, "conf", conf)
    s3fs.S3FileSystem.clear_instance_cache()


SLOW_DOWN = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Slow down</Message></Error>"
)


class FlakyS3(BaseHTTPRequestHandler):
    """A loopback proxy in front of the S3 server that injects faults: the next ``server.failures`` requests of
    ``server.method`` (any method if empty) whose query contains ``server.query`` get ``server.fault``:
    ``503`` (SlowDown, a throttling store), ``drop`` (the connection closed without an answer) or ``delay``
    (no answer for ``server.delay_s`` seconds, past the client's read timeout)."""

    protocol_version = "HTTP/1.1"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        srv = self.server
        if self._faulty(srv):
            srv.failures -= 1
            srv.injected += 1
            if srv.fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            if srv.fault == "delay":
                time.sleep(srv.delay_s)
                self.close_connection = True
                return None
            return self._send(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
        upstream = http.client.HTTPConnection(srv.upstream.hostname, srv.upstream.port, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        resp = upstream.getresponse()
        headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection")}
        self._send(resp.status, headers, resp.read())

    def _faulty(self, srv):
        if srv.failures <= 0 or (srv.method and self.command != srv.method):
            return False
        return srv.query in urllib.parse.urlsplit(self.path).query

    def _send(self, status, headers, data):
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() != "content-length":
                self.send_header(k, v)
        # A HEAD answer has no body but tells the object's size.
        size = headers.get("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", size)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    def log_message(self, *args):
        pass


def start_flaky_s3(upstream: str) -> ThreadingHTTPServer:
    """A :class:`FlakyS3` proxy to ``upstream`` on a free loopback port, serving from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyS3)
    server.daemon_threads = True
    server.upstream = urllib.parse.urlsplit(upstream)
    server.method, server.query, server.fault, server.failures = "GET", "", "503", 0
    server.delay_s, server.injected = 3.0, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
