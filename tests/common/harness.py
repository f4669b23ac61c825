"""What the Python suites against real programs share (tests/apps,
tests/proxies): free loopback ports, started processes and their stop,
answers seen without following redirects, and the run that ends with one
"N passed, N failed" line.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request


def free_port():
    """A port the OS has just handed out (and released) on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, proc, timeout=60):
    """Until `url` answers anything; fails when `proc` exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Started:
    """Processes this run started (each logging to WORK/NAME.log), stopped
    in reverse order."""

    work = None
    procs = []

    @classmethod
    def start(cls, args, name, **kw):
        log = open(os.path.join(cls.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)
        cls.procs.append(proc)
        return proc

    @classmethod
    def stop_all(cls):
        for proc in reversed(cls.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        cls.procs.clear()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")

    @property
    def location(self):
        return self.headers.get("Location", "")

    def json(self):
        return json.loads(self.text)


class Result(unittest.TextTestResult):
    """Counts passes itself: a class whose set-up failed runs no test but
    counts one error."""

    passes = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        Result.passes += 1


def on_term(*_):
    raise SystemExit("terminated")


def main(name, module, cases=None):
    """Runs the tests named on the command line, or `cases` (test classes,
    in order), or all of `module`'s; stops what was started; prints the
    result line and exits 1 when anything failed."""
    signal.signal(signal.SIGTERM, on_term)
    started = time.time()
    only = sys.argv[1:]
    try:
        loader = unittest.defaultTestLoader
        if only:
            suite = loader.loadTestsFromNames(only, module)
        elif cases:
            suite = unittest.TestSuite([loader.loadTestsFromTestCase(c) for c in cases])
        else:
            suite = loader.loadTestsFromModule(module)
        result = unittest.TextTestRunner(verbosity=2, resultclass=Result).run(suite)
    finally:
        Started.stop_all()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    if Result.passes + failed == 0:
        failed = 1  # nothing ran: that is not a pass
    print(f"{name}: {time.time() - started:.0f}s")
    print(f"{Result.passes} passed, {failed} failed")
    sys.exit(1 if failed else 0)
