"""Drives headless Chromium (Debian's `chromium`) through the Chrome DevTools Protocol, with Tornado's WebSocket
client (Flower already brings Tornado): open a page, type into inputs, click buttons with real mouse events, read
the page. Enough to press Flower's buttons as a user does, with no WebDriver and no extra package."""
import asyncio
import base64
import itertools
import json
import shutil
import socket
import subprocess
import time
import urllib.request

from tornado.websocket import websocket_connect


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PageError(AssertionError):
    """Something on the page was not as the test expected (an element missing, a script that threw)."""


class HeadlessChromium:
    """One headless Chromium with one page; `close()` stops it."""

    def __init__(self, profile_directory, window=(1400, 900)):
        browser = shutil.which("chromium")
        if browser is None:
            raise AssertionError("chromium is not installed: Deploy/install-deps installs it")
        port = _free_port()
        self.socket = None
        self.loop = None
        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--window-size={window[0]},{window[1]}", f"--remote-debugging-port={port}",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile_directory}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        page = None
        while page is None:
            if self.process.poll() is not None or time.time() > deadline:
                self.close()
                raise AssertionError("headless chromium did not open its DevTools port")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    page = next((t for t in json.load(response) if t.get("type") == "page"), None)
            except OSError:
                time.sleep(0.1)
        self.loop = asyncio.new_event_loop()
        self.socket = None
        url = page["webSocketDebuggerUrl"]

        async def connect():
            return await websocket_connect(url, max_message_size=64 << 20)

        try:
            self.socket = self.loop.run_until_complete(connect())
            self.ids = itertools.count(1)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()  # never leave a browser running behind a failed start
            raise

    def call(self, method, **params):
        """Sends one DevTools command and returns its result (events in between are skipped)."""
        request_id = next(self.ids)

        async def exchange():
            await self.socket.write_message(json.dumps({"id": request_id, "method": method, "params": params}))
            while True:
                message = await asyncio.wait_for(self.socket.read_message(), 60)
                if message is None:
                    raise AssertionError(f"chromium closed the DevTools connection during {method}")
                reply = json.loads(message)
                if reply.get("id") == request_id:
                    return reply

        reply = self.loop.run_until_complete(exchange())
        if "error" in reply:
            raise PageError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def evaluate(self, expression):
        """Runs JavaScript in the page and returns its value (awaiting a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise PageError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait_until(self, what, expression, seconds=60):
        """Evaluates `expression` until it is truthy and returns it (the deadline is only a safety net)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                value = self.evaluate(expression)
            except PageError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise PageError(f"timed out waiting for {what} ({expression})")

    def open(self, url):
        """Loads `url` and waits until the document and jQuery (Flower's pages use it) are ready."""
        self.call("Page.navigate", url=url)
        self.wait_until(f"{url} to load",
                        f"document.readyState === 'complete' && location.href === {json.dumps(url)}"
                        " && typeof window.jQuery === 'function'")

    def type_into(self, selector, text):
        """Replaces the value of the input `selector` with `text`, as typed (focus, select all, insert)."""
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      f" if (!e) throw new Error('no ' + {json.dumps(selector)}); e.focus(); e.select(); }})()")
        self.call("Input.insertText", text=text)

    def click(self, selector):
        """Clicks the middle of element `selector` with the mouse (it must be visible: switch tabs first)."""
        box = self.wait_until(
            f"{selector} to be visible",
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'"
            " ? {x: r.left + r.width / 2, y: r.top + r.height / 2} : null; })()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def toasts(self):
        """The texts of Flower's toasts (its answers to the buttons), oldest first."""
        return self.evaluate("Array.from(document.querySelectorAll('.toast-body')).map(e => e.textContent)")

    def click_and_read_toast(self, selector):
        """Clicks `selector` and returns the text of the toast Flower shows for it."""
        before = len(self.toasts())
        self.click(selector)
        self.wait_until(f"Flower's answer to {selector}",
                        f"document.querySelectorAll('.toast-body').length > {before}")
        return self.toasts()[before]

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            if self.socket is not None:
                self.socket.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            if self.loop is not None:
                self.loop.close()
