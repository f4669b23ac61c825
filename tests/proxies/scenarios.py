"""otpgate in forward-auth mode behind the real nginx and Caddy.

The nginx server block and the Caddy site are the README's snippets, read
from README.md and changed only in their addresses (free loopback ports), so
the README cannot drift from what is tested. A small app (in this process)
names the user of its session at /api/me and echoes, on every other path,
the headers it was sent. otpgate uses the sandbox SMS provider: the code is
read from its inbox page, through the front proxy. A browser is a urllib
opener with a cookie jar that follows no redirect.

Per proxy: anonymous requests reach the app; a logged-in navigation is sent
to the code page and, after the code, reaches the app with X-Otpgate-User;
an XHR gets the 401 JSON; a client-sent X-Otpgate-User never reaches the
app; forward-auth fields from a peer outside trusted_proxies get a 403.

Environment: OTPGATE (the binary), PROXIES_WORK (a scratch folder).
"""

import html
import http.client
import http.cookiejar
import http.cookies
import http.server
import json
import os
import re
import secrets
import sys
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))
from harness import Answer, NoRedirect, Started, free_port, main, wait_for  # noqa: E402

OTPGATE = os.environ["OTPGATE"]
WORK = os.environ["PROXIES_WORK"]
README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
PHONE = "+31612345678"
# The addresses the README's snippets use.
README_GATE = "127.0.0.1:8000"
README_APP = "127.0.0.1:8080"



def snippet(lang, listen, here):
    """The first ```lang block of the README's forward-auth section, with
    its `listen` line made `here` and otpgate's and the app's addresses
    this run's."""
    text = open(README).read()
    start = text.index("## Behind nginx, Caddy or Traefik (forward-auth)")
    start = text.index(f"```{lang}\n", start) + len(lang) + 4
    block = text[start:text.index("```", start)]
    assert listen in block, f"the {lang} snippet has {listen!r}"
    return (block.replace(listen, here, 1)
            .replace(README_GATE, f"127.0.0.1:{Gate.port}")
            .replace(README_APP, f"127.0.0.1:{Gate.app_port}"))




class App(http.server.BaseHTTPRequestHandler):
    """The protected app: POST /login?user=NAME starts a session (cookie
    `sid`), /api/me names its user, every other path echoes the headers."""

    sessions = {}
    seen = []

    def log_message(self, *args):
        pass

    def answer(self, status, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def user(self):
        jar = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        sid = jar.get("sid")
        return App.sessions.get(sid.value) if sid else None

    def do_GET(self):
        if self.path == "/api/me":
            user = self.user()
            if user is None:
                return self.answer(401, {"error": "not logged in"})
            return self.answer(200, {"username": user, "phone": PHONE})
        headers = {k.lower(): v for k, v in self.headers.items()}
        App.seen.append((self.path, headers))
        self.answer(200, {"path": self.path, "headers": headers})

    def do_POST(self):
        if self.path.startswith("/login"):
            user = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["user"][0]
            sid = secrets.token_urlsafe(16)
            App.sessions[sid] = user
            return self.answer(200, {"user": user}, [("Set-Cookie", f"sid={sid}; Path=/")])
        self.do_GET()


class Browser:
    """Keeps cookies, sends what a browser sends, follows nothing."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(self, method, path, form=None, headers=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        for name, value in (headers or {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}).items():
            req.add_header(name, value)
        if method == "POST":
            req.add_header("Origin", self.base)
        try:
            with self.opener.open(req, timeout=30) as res:
                return Answer(res.status, res.headers, res.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def xhr(self, path):
        return self.get(path, {"Accept": "application/json", "Sec-Fetch-Mode": "cors"})

    def log_in(self, user):
        res = self.request("POST", "/login?user=" + user, form={}, headers={"Accept": "*/*"})
        assert res.status == 200, f"the app's login reaches the app: {res.status} {res.text[:200]}"
        return res

    def pass_code_page(self, rd):
        """Opens the code page (which texts a code) and enters the code."""
        page = self.get("/.otpgate/verify?rd=" + urllib.parse.quote(rd, safe=""))
        assert page.status == 200, f"the code page opens: {page.status} {page.text[:200]}"
        inbox = self.get("/.otpgate/sandbox").text
        m = re.search(r"<pre>[^<]*?\b(\d{6,10})\b", inbox)
        assert m, "the sandbox inbox holds a code"
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
        res = self.request("POST", "/.otpgate/verify",
                           {"csrf": html.unescape(csrf), "rd": rd, "code": m.group(1)})
        assert res.status == 303, f"the right code is taken: {res.status} {res.text[:200]}"
        return res


def forged(port, path, fields):
    """A request to otpgate from 127.0.0.2, outside trusted_proxies."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=("127.0.0.2", 0))
    conn.request("GET", path, headers={"Accept": "application/json", **fields})
    res = conn.getresponse()
    out = Answer(res.status, res.headers, res.read())
    conn.close()
    return out


class Gate:
    """otpgate in forward-auth mode and the app, shared by both proxies."""

    app_port = None
    port = None

    @classmethod
    def start(cls):
        if cls.port:
            return
        app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        cls.app_port = app.server_address[1]
        cls.port = free_port()
        config = os.path.join(WORK, "otpgate.toml")
        with open(config, "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{cls.port}"
secret_file = "otpgate.key"
trusted_proxies = ["127.0.0.1"]

[admin]
listen = ""

# Each scenario texts the same test number within the minute.
[limits]
cooldown = "0s"

[sms]
providers = ["sandbox"]

[[apps]]
name = "App"
upstream = "http://127.0.0.1:{cls.app_port}"
session_cookie = "sid"
userinfo_path = "/api/me"
user_pointer = "/username"
phone_pointer = "/phone"
bypass = ["/login"]
""")
        proc = Started.start([OTPGATE, "--config", config], "otpgate",
                             env={**os.environ, "RUST_LOG": "info"})
        wait_for(f"http://127.0.0.1:{cls.port}/.otpgate/health", proc)


class Flow:
    """The cases, for the front proxy a subclass starts (`base`)."""

    base = None

    def test_anonymous_requests_reach_the_app(self):
        res = Browser(self.base).get("/reports")
        self.assertEqual(res.status, 200, res.text[:300])
        self.assertEqual(res.json()["path"], "/reports")
        self.assertNotIn("x-otpgate-user", res.json()["headers"])

    def test_a_logged_in_navigation_goes_to_the_code_page_and_after_the_code_reaches_the_app(self):
        b = Browser(self.base)
        b.log_in("alice")
        res = b.get("/reports?q=1")
        self.assertEqual(res.status, 303, res.text[:300])
        self.assertIn("/.otpgate/verify?rd=%2Freports%3Fq%3D1", res.location)
        self.assertEqual(res.headers.get("Cache-Control"), "no-store")
        self.assertEqual(b.pass_code_page("/reports?q=1").location, "/reports?q=1")
        res = b.get("/reports?q=1")
        self.assertEqual(res.status, 200, res.text[:300])
        self.assertEqual(res.json()["headers"].get("x-otpgate-user"), "alice")

    def test_an_xhr_without_a_code_gets_the_401_json(self):
        b = Browser(self.base)
        b.log_in("bob")
        res = b.xhr("/api/data")
        self.assertEqual(res.status, 401, res.text[:300])
        self.assertEqual(res.json()["error"], "second_factor_required")
        self.assertIn("/.otpgate/verify?rd=%2Fapi%2Fdata", res.json()["verify_url"])
        self.assertEqual(res.headers.get("Cache-Control"), "no-store")
        self.assertNotIn("/api/data", [p for p, _ in App.seen], "the app never saw it")

    def test_a_client_sent_x_otpgate_user_never_reaches_the_app(self):
        forged_user = {"Accept": "text/html", "X-Otpgate-User": "mallory",
                       "X_Otpgate_User": "mallory"}
        res = Browser(self.base).get("/anonymous", forged_user)
        self.assertEqual(res.status, 200, res.text[:300])
        self.assertNotIn("x-otpgate-user", res.json()["headers"])
        self.assertNotIn("x_otpgate_user", res.json()["headers"])
        b = Browser(self.base)
        b.log_in("carol")
        b.pass_code_page("/")
        res = b.get("/proven", forged_user)
        self.assertEqual(res.status, 200, res.text[:300])
        self.assertEqual(res.json()["headers"].get("x-otpgate-user"), "carol")
        self.assertNotIn("x_otpgate_user", res.json()["headers"])

    def test_forward_auth_fields_from_an_untrusted_peer_are_refused(self):
        for path, fields in [
            ("/.otpgate/authz/nginx", {"X-Original-URL": "http://app.test/admin",
                                       "X-Original-Method": "GET"}),
            ("/.otpgate/authz/forward", {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/admin",
                                         "X-Forwarded-Host": "app.test",
                                         "X-Forwarded-Proto": "https"}),
        ]:
            res = forged(Gate.port, path, fields)
            self.assertEqual(res.status, 403, f"{path}: {res.text[:300]}")
            self.assertIn("trusted_proxies", res.text)
            self.assertEqual(res.headers.get("Cache-Control"), "no-store")


class Nginx(Flow, unittest.TestCase):
    """Debian's nginx with the README's server block."""

    @classmethod
    def setUpClass(cls):
        Gate.start()
        port = free_port()
        d = os.path.join(WORK, "nginx")
        os.makedirs(d, exist_ok=True)
        server = snippet("nginx", "listen 80;", f"listen 127.0.0.1:{port};")
        temps = "\n".join(f"    {k}_temp_path {d}/{k};"
                          for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
{temps}
{server}
}}
""")
        proc = Started.start(["nginx", "-e", f"{d}/error.log", "-p", d, "-c",
                              f"{d}/nginx.conf"], "nginx")
        cls.base = f"http://127.0.0.1:{port}"
        wait_for(cls.base + "/.otpgate/health", proc)


class Caddy(Flow, unittest.TestCase):
    """Debian's Caddy with the README's site."""

    @classmethod
    def setUpClass(cls):
        Gate.start()
        port = free_port()
        d = os.path.join(WORK, "caddy")
        os.makedirs(d, exist_ok=True)
        site = snippet("caddyfile", "app.example.com {", f"http://127.0.0.1:{port} {{")
        path = os.path.join(d, "Caddyfile")
        with open(path, "w") as f:
            # No admin endpoint (it would take port 2019), no certificates.
            f.write("{\n\tadmin off\n\tauto_https off\n}\n\n" + site)
        env = {**os.environ, "HOME": d, "XDG_DATA_HOME": d, "XDG_CONFIG_HOME": d}
        proc = Started.start(["caddy", "run", "--adapter", "caddyfile", "--config", path],
                             "caddy", env=env)
        cls.base = f"http://127.0.0.1:{port}"
        wait_for(cls.base + "/.otpgate/health", proc)


if __name__ == "__main__":
    Started.work = WORK
    main("proxies", sys.modules[__name__], [Nginx, Caddy])
