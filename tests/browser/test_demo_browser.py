"""The demo in a real browser: headless Chromium, driven by selenium and chromedriver.

The demo runs under a real ``demo/manage.py runserver`` on a free port, with a fresh
SQLite file and the memory broker. Two browsers (two profiles, so two sessions and
two users) open the same chat room: one sends, the other shows the message, and the
count of people follows; the echo page round-trips a message over ``/ws/echo/`` and
``/lower/``; a page reconnects by itself after a server restart; two server processes
sharing a Redis broker put their users in one room. Screenshots go to
``tests/artifacts/`` (ignored by git): ``demo-chat.png`` is the receiver's window.

The browser and its driver come from Debian (``apt-get install chromium
chromium-driver``), never from a tool that downloads its own. Without them the test
is skipped, or fails when the ``CI`` environment variable is set.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30  # seconds for runserver to answer
SHUTDOWN_TIMEOUT = 15
WAIT = 15  # seconds for anything to show up in a page
RECONNECT_WAIT = 35  # the page waits up to 15 s (+ 20 % jitter) between tries
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    "--window-size=1200,820",
]

pytestmark = pytest.mark.timeout(120)


def unavailable(reason):
    """Skip: the machine lacks the browser. Under CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (the CI environment variable is set: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def webdriver():
    """selenium's ``webdriver`` module, once the system Chromium and driver are found.

    Autouse, so that a machine without them skips before any server starts.
    """
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            unavailable(f"{path} not found: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
    except ImportError:
        unavailable("selenium is not installed: pip install selenium")
    return webdriver


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class DemoServer:
    """The demo on a free port, logging to a file.

    ``kind="runserver"``: ``demo/manage.py runserver --noreload`` (WSGI);
    ``kind="uvicorn"``: ``uvicorn demo.asgi:application`` run from ``demo/`` (ASGI).
    """

    def __init__(self, workdir, port=None, broker_url="memory://", kind="runserver"):
        self.env = {
            **os.environ,
            "WEBSOCKET_BROKER_URL": broker_url,
            "DJANGO_SETTINGS_MODULE": "demo.settings",
            "DEMO_DB": str(workdir / "demo.sqlite3"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if not (workdir / "demo.sqlite3").exists():
            self.manage("migrate", "--noinput", "-v", "0")
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = workdir / f"{kind}-{self.port}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        if kind == "uvicorn":
            command = ["-m", "uvicorn", "demo.asgi:application", "--host", HOST]
            command += ["--port", str(self.port)]
        else:
            command = ["manage.py", "runserver", "--noreload", f"{HOST}:{self.port}"]
        self.process = subprocess.Popen(
            [sys.executable, *command],
            cwd=REPO_ROOT / "demo",
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def manage(self, *args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT / "demo",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def _wait_until_serving(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}" + self.log_tail())
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server is not serving after {STARTUP_TIMEOUT} s" + self.log_tail()
                )
            time.sleep(0.1)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self):
        return f"\n--- {self.log_path.name} ---\n" + self.log()[-8000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SHUTDOWN_TIMEOUT)
        self._log.close()


class RedisServer:
    """A throwaway ``redis-server`` on a free port: no persistence."""

    def __init__(self, workdir):
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.access(executable, os.X_OK):
            unavailable("redis-server not found: apt-get install redis-server")
        if importlib.util.find_spec("redis") is None:
            unavailable("redis-py is not installed: pip install 'django-websocket[redis]'")
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self._log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", HOST, "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._pong():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server not answering on {self.port}")
            time.sleep(0.05)

    def _pong(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SHUTDOWN_TIMEOUT)
        self._log.close()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    server = DemoServer(tmp_path_factory.mktemp("demo-server"))
    yield server
    server.stop()
    if "Traceback" in server.log():
        pytest.fail("the demo server logged a traceback" + server.log_tail())


@pytest.fixture
def open_browser(webdriver, tmp_path):
    """``open_browser()``: a new headless Chromium with a profile (and session) of its own."""
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def start():
        profile = tmp_path / f"profile-{len(drivers)}"
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(
            CHROMEDRIVER, log_output=str(tmp_path / f"chromedriver-{len(drivers)}.log")
        )
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(WAIT * 2)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()


def wait_for(driver, condition, what, timeout=WAIT):
    """Wait (at most ``timeout`` seconds) until ``condition(driver)`` is truthy; return it."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        pytest.fail(f"{what}: not within {timeout} s on {driver.current_url}\n{page_text(driver)}")


def page_text(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def text_of(selector):
    """A wait condition: the text of the element ``selector`` (or "" while absent)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def condition(driver):
        try:
            return driver.find_element(By.CSS_SELECTOR, selector).text
        except (NoSuchElementException, StaleElementReferenceException):
            return ""

    return condition


def shows(selector, text):
    """A wait condition: the element ``selector`` has exactly the text ``text``."""
    current = text_of(selector)
    return lambda driver: current(driver) == text


def log_in(driver, server, username, next_path):
    from selenium.webdriver.common.by import By

    driver.get(f"{server.url}{next_path}")  # not logged in: redirected to the login page
    wait_for(driver, lambda d: "/login/" in d.current_url, "the login page")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url == server.url + next_path, f"back on {next_path}")


def send_message(driver, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.ID, "text").send_keys(text + Keys.ENTER)


def message_from(user, text):
    """A wait condition: the chat shows ``text`` from ``user``; returns that message element."""
    from selenium.webdriver.common.by import By

    def condition(driver):
        for item in driver.find_elements(By.CSS_SELECTOR, "#messages li.message"):
            if (
                item.find_element(By.CSS_SELECTOR, ".user").text == user
                and item.find_element(By.CSS_SELECTOR, ".text").text == text
            ):
                return item
        return None

    return condition


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def save_screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), f"no screenshot saved at {path}"
    return path


def test_two_people_chat_in_one_room(demo_server, open_browser):
    from selenium.webdriver.common.by import By

    room = "/chat/browser-" + uuid.uuid4().hex[:8] + "/"
    ada, bob = open_browser(), open_browser()
    log_in(ada, demo_server, "ada", room)
    log_in(bob, demo_server, "bob", room)

    for driver in (ada, bob):
        wait_for(driver, shows("#state", "open"), "the connection state 'open'")
        wait_for(driver, shows("#count", "2 online"), "both people in the room")
    assert text_of("#users")(ada).split("\n") == ["ada", "bob"]

    greeting = "Hello Bob, this came over a WebSocket!"
    send_message(ada, greeting)
    received = wait_for(bob, message_from("ada", greeting), "ada's message in bob's window")
    assert received.find_element(By.CSS_SELECTOR, "time").get_attribute("datetime")
    assert "mine" not in received.get_attribute("class")

    send_message(bob, "Hi Ada! Loud and clear.")
    wait_for(ada, message_from("bob", "Hi Ada! Loud and clear."), "bob's answer in ada's window")
    mine = wait_for(bob, message_from("bob", "Hi Ada! Loud and clear."), "bob's own message")
    assert "mine" in mine.get_attribute("class")
    assert bob.find_element(By.ID, "text").get_attribute("value") == ""

    path = save_screenshot(bob, "demo-chat.png")
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    save_screenshot(ada, "demo-chat-sender.png")

    bob.get(demo_server.url + "/")  # bob leaves the room: ada's count goes down
    wait_for(ada, shows("#count", "1 online"), "the count after bob left")

    for driver in (ada, bob):
        assert console_errors(driver) == []


def test_the_echo_page(demo_server, open_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = open_browser()
    driver.get(demo_server.url + "/echo/")
    for section, message, expected in [
        ("echo", "Hello from Chromium", "Hello from Chromium"),
        ("lower", "Make Me LOWER Case", "make me lower case"),
    ]:
        wait_for(driver, shows(f"#{section} .state", "open"), f"{section}: state 'open'")
        field = driver.find_element(By.CSS_SELECTOR, f"#{section} input[type=text]")
        field.clear()
        field.send_keys(message + Keys.ENTER)
        wait_for(driver, shows(f"#{section} .replies li", expected), f"{section}: the reply")
    save_screenshot(driver, "demo-echo.png")
    assert console_errors(driver) == []


def test_the_page_reconnects_after_a_server_restart(tmp_path, open_browser):
    from selenium.webdriver.common.by import By

    servers = [DemoServer(tmp_path)]
    try:
        driver = open_browser()
        log_in(driver, servers[0], "cyd", "/chat/restarts/")
        wait_for(driver, shows("#state", "open"), "the first connection")

        servers[0].stop()  # closes open WebSockets with 1001 (going away)
        wait_for(driver, shows("#state", "closed"), "the state 'closed'")
        assert "retrying in" in text_of("#state-detail")(driver)
        assert not driver.find_element(By.ID, "send-button").is_enabled()

        servers.append(DemoServer(tmp_path, port=servers[0].port))  # same address and database
        wait_for(driver, shows("#state", "open"), "'open' again", timeout=RECONNECT_WAIT)
        send_message(driver, "still here")
        wait_for(driver, message_from("cyd", "still here"), "a message after the reconnect")
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log(), server.log_tail()


def test_two_server_processes_share_a_room_through_redis(tmp_path, open_browser):
    redis = RedisServer(tmp_path)
    # As in demo/README.rst: runserver and uvicorn on one database and one Redis.
    # (Two runservers where uvicorn is not installed.)
    second = "uvicorn" if importlib.util.find_spec("uvicorn") else "runserver"
    servers = []
    try:
        servers.append(DemoServer(tmp_path, broker_url=redis.url))
        servers.append(DemoServer(tmp_path, broker_url=redis.url, kind=second))
        ada, bob = open_browser(), open_browser()
        log_in(ada, servers[0], "ada", "/chat/redis/")
        log_in(bob, servers[1], "bob", "/chat/redis/")
        for driver in (ada, bob):
            wait_for(driver, shows("#state", "open"), "the state 'open'")
            wait_for(driver, shows("#count", "2 online"), "both, across processes")

        send_message(ada, "from process one")
        wait_for(bob, message_from("ada", "from process one"), f"ada's message on {second}")
        send_message(bob, "and back from process two")
        wait_for(ada, message_from("bob", "and back from process two"), "bob's answer")
    finally:
        for server in servers:
            server.stop()
        redis.stop()
    for server in servers:
        assert "Traceback" not in server.log(), server.log_tail()
