"""A small OpenAI-compatible chat server over any backend (``python -m limo.serve --model <dir>`` serves hf).

Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on a stdlib ``ThreadingHTTPServer``. Requests
are generated one at a time under a lock (the model is not thread-safe); each honours ``seed``,
``temperature``, ``top_p``, ``max_tokens`` and ``stop`` through the hf backend's per-row sampler, so the
``openai`` backend pointed at this server returns exactly what the ``hf`` backend returns in process.
It exists for tests (a real HTTP server on 127.0.0.1) and for users who want to put a local checkpoint
behind the OpenAI API without installing a serving stack; for throughput use vLLM's server. The command
line is `limo.serve`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eval.backends.base import Backend, GenerationRequest, SamplingParams

log = logging.getLogger(__name__)


class BadRequest(ValueError):
    """A request body the server cannot serve (answered with HTTP 400)."""


def parse_chat_request(body: Mapping[str, Any], default_max_tokens: int) -> GenerationRequest:
    """Turn an OpenAI chat-completions body into a `GenerationRequest`.

    Raises:
        BadRequest: Missing or malformed ``messages``, or ``n`` other than 1.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
            raise BadRequest(f"messages[{number}] needs 'role' and a string 'content'")
    if int(body.get("n", 1)) != 1:
        raise BadRequest("only n=1 is supported")
    stop = body.get("stop") or ()
    sampling = SamplingParams(
        temperature=float(body.get("temperature", 1.0)),
        top_p=float(body.get("top_p", 1.0)),
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or default_max_tokens),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
    )
    messages = tuple({"role": str(m["role"]), "content": m["content"]} for m in messages)
    seed = int(body.get("seed") or 0)
    return GenerationRequest(f"chatcmpl-{uuid.uuid4().hex[:24]}", messages, sampling, seed)


class ChatServer(ThreadingHTTPServer):
    """HTTP server holding one backend; generation is serialised with a lock."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: Backend, model_name: str, default_max_tokens: int = 512):
        super().__init__(address, ChatHandler)
        self.backend = backend
        self.model_name = model_name
        self.default_max_tokens = default_max_tokens
        self.lock = threading.Lock()
        self.served = 0

    def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        request = parse_chat_request(body, self.default_max_tokens)
        with self.lock:
            generation = self.backend.generate([request])[0]
            self.served += 1
        return {
            "id": request.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": generation.text},
                    "finish_reason": generation.finish_reason,
                }
            ],
            "usage": {"completion_tokens": generation.num_tokens},
        }

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            self._send(200, self.server.complete(body))
        except (BadRequest, json.JSONDecodeError, TypeError, ValueError) as err:
            self._send(400, {"error": {"message": str(err), "type": "invalid_request_error"}})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s - %s", self.address_string(), format % args)


def start_server(backend: Backend, model_name: str, host: str = "127.0.0.1", port: int = 0) -> ChatServer:
    """Start a server in a daemon thread (``port=0``: a free port); ``server.shutdown()`` stops it."""
    server = ChatServer((host, port), backend, model_name)
    threading.Thread(target=server.serve_forever, daemon=True, name="limo-serve").start()
    return server
