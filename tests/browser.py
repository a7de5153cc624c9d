"""A real browser for tests: headless Chromium driven over the DevTools protocol on a pipe (no extra package).

`Browser` starts Debian's ``chromium`` with ``--remote-debugging-pipe``: the protocol's JSON messages, each ended
by a NUL byte, go in on the child's fd 3 and come back on its fd 4, so no port, websocket client or network is
involved. `Browser.open` loads a page in a fresh tab and returns a `Tab` that records what a person would notice
and a test must not accept: console errors and warnings, uncaught exceptions, log entries of level error (a
Content-Security-Policy violation is one), every network request other than the page itself, and JavaScript
dialogs (``alert``), which it dismisses so the page never hangs.

Where ``chromium`` is missing the ``browser`` fixture skips with the reason, unless ``LIMO_REQUIRE_BROWSER=1``
(set by ``.ci/run`` once it has installed it), which turns the skip into a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

REQUIRE_ENV = "LIMO_REQUIRE_BROWSER"
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium_path() -> str | None:
    return next((path for name in EXECUTABLES if (path := shutil.which(name))), None)


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the environment promises a browser (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI installed chromium, so this must work)")
    pytest.skip(reason)


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number above 9, so that placing the pipes on 3 and 4 in the child cannot clobber them."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium process and its protocol connection."""

    def __init__(self, executable: str, width: int = 1280, height: int = 1600):
        self.profile = tempfile.mkdtemp(prefix="limo-chromium-")
        to_child, self._command_fd = (_high_fd(fd) for fd in os.pipe())
        self._reply_fd, from_child = (_high_fd(fd) for fd in os.pipe())
        log = os.open(Path(self.profile) / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        command = [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]
        # posix_spawn places the pipes on fds 3 and 4 without running Python in the child (a preexec_fn can
        # deadlock when the test process has threads, as pytest-xdist workers do); every other fd is close-on-exec
        dup2 = os.POSIX_SPAWN_DUP2
        actions = [(dup2, null, 0), (dup2, log, 1), (dup2, log, 2), (dup2, to_child, 3), (dup2, from_child, 4)]
        self.pid = os.posix_spawn(executable, [*command, "about:blank"], os.environ, file_actions=actions)
        for fd in (to_child, from_child, log, null):
            os.close(fd)
        self._status: int | None = None
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def exited(self) -> int | None:
        """The browser's exit status once it has exited (reaped once, then remembered), else None."""
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            self._status = os.waitstatus_to_exitcode(status) if pid else None
        return self._status

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 20):
        """Send one command and wait for its result (events that arrive meanwhile are kept in ``events``)."""
        self._next_id += 1
        command_id = self._next_id  # a dismissed dialog sends a command of its own while we wait
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._command_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise BrowserError(f"no answer to {method} within {timeout} s")
            if reply.get("id") == command_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _read(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._reply_fd], [], [], left)[0]:
                return None
            chunk = os.read(self._reply_fd, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed its pipe (exit {self.exited()}; log in {self.profile})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _event(self, message: dict[str, Any]) -> None:
        if "method" not in message:  # the answer to a dialog's dismissal, sent without waiting
            return
        self.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":  # an alert would block the page: dismiss it
            params = {"accept": False}
            self._next_id += 1
            command = {"id": self._next_id, "method": "Page.handleJavaScriptDialog", "params": params}
            os.write(self._command_fd, json.dumps({**command, "sessionId": message["sessionId"]}).encode() + b"\0")

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (message := self._read(deadline)) is not None:
            self._event(message)

    def open(self, url: str, timeout: float = 30) -> Tab:
        """A fresh tab with ``url`` loaded and its script finished (``body[data-ready]``, which the report sets)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session, target, url, len(self.events))
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + timeout
        while not tab.evaluate("document.readyState === 'complete' && document.body.dataset.ready === '1'"):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish drawing within {timeout} s: {tab.problems()}")
            self.pump(0.05)
        return tab

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        deadline, stop = time.monotonic() + 10, signal.SIGTERM
        while self.exited() is None:  # Browser.close ends its helper processes too; a signal is the fallback
            if time.monotonic() > deadline:
                os.kill(self.pid, stop)
                deadline, stop = time.monotonic() + 5, signal.SIGKILL
            time.sleep(0.05)
        for fd in (self._command_fd, self._reply_fd):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class Tab:
    """One page in the browser, and what it did since it was opened."""

    browser: Browser
    session: str
    target: str
    url: str
    first_event: int
    closed: bool = field(default=False)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        result = self.browser.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, self.session
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as a person would (an ``input`` event per insertion)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.browser.send("Input.insertText", {"text": text}, self.session)

    def wait_for(self, expression: str, timeout: float = 10) -> Any:
        """Wait until ``expression`` is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise BrowserError(f"{expression!r} stayed false for {timeout} s")
            self.browser.pump(0.05)
        return value

    def screenshot(self, path: Path, width: int = 1280, height: int = 2000) -> Path:
        import base64

        self.browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )
        shot = self.browser.send("Page.captureScreenshot", {"format": "png"}, self.session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def _events(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events[self.first_event :] if e.get("sessionId") == self.session]

    def problems(self) -> list[str]:
        """Console errors and warnings, exceptions, error log entries (CSP violations), dialogs and requests to
        anything but the page itself, as readable lines (empty: the page behaved)."""
        found = []
        for event in self._events():
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('exception', {}).get('description')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog {params['type']}: {params['message']}")
            elif method == "Network.requestWillBeSent" and unquote(params["request"]["url"]) != unquote(self.url):
                found.append(f"network request: {params['request']['url']}")
        return found

    def close(self) -> None:
        if not self.closed:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
            self.closed = True
