"""The HTTP sandbox: where the local stack's webhooks and fetches go instead of the internet.

Workflows call real services (`https://recommendations.example.com/similar`). On one
machine those are unreachable or must not be called, so the stack sets the connector's
`HTTP_SANDBOX_URL` to this server: a call to `https://<host>/<path>` arrives here as
`/<host>/<path>` and is answered from `demo/http/<host>/<path>.json` when that file exists
(what a fetch step saves), else with `{}` and 200 (a webhook accepted). The calls
themselves are in the outbox, which records every connector invocation.

Only 127.0.0.1 is served.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["HttpSandbox"]

logger = logging.getLogger("journeys.local.sandbox")


class HttpSandbox:
    def __init__(self, answers: Path, port: int = 0) -> None:
        self.answers = answers.resolve()
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = sandbox.answer_for(urlsplit(self.path).path)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                logger.debug(format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer_for(self, path: str) -> object:
        """The sample answer for `/<host>/<path>`, or {}."""
        relative = unquote(path).strip("/")
        candidate = (self.answers / f"{relative}.json").resolve()
        if self.answers not in candidate.parents or not candidate.is_file():
            return {}
        try:
            loaded: object = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("sample answer %s is not JSON: %s", candidate, error)
            return {}
        return loaded

    def start(self) -> HttpSandbox:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="journeys-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
