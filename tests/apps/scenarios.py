"""otpgate in front of real third-party apps, configured as the README says.

Each app is started as its own documentation says, with otpgate in front of
it (sandbox SMS provider: the code is read from the gateway's inbox page),
on free loopback ports. A browser is a urllib opener with a cookie jar that
does not follow redirects, so every step's status is seen. Per app:
anonymous pages still reach the app, the app's own login (its real CSRF
form) leads to the code page, the code opens the app, and the app's logout
ends the factor.

Environment: OTPGATE (the binary), APPS_WORK (a scratch folder), PYBIN (the
venv's bin folder).
"""

import html
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))
from harness import Answer, NoRedirect, Started, free_port, main, wait_for  # noqa: E402

OTPGATE = os.environ["OTPGATE"]
WORK = os.environ["APPS_WORK"]
PYBIN = os.environ["PYBIN"]
PHONE = "+31612345678"







class Browser:
    """Keeps cookies, sends Origin on posts like a browser, follows nothing."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(self, method, path, form=None, accept="text/html"):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", accept)
        if method == "POST":
            req.add_header("Origin", self.base)
            req.add_header("Referer", self.base + path)
        try:
            with self.opener.open(req, timeout=30) as res:
                return Answer(res.status, res.headers, res.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, form):
        return self.request("POST", path, form)

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def set_cookie(self, name, value):
        host = urllib.parse.urlsplit(self.base).hostname
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, host, False, False, "/", True,
            False, None, False, None, None, {}))


def hidden(page, name):
    """The value of the hidden form field `name`."""
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not m:
        m = re.search(r'value="([^"]*)" name="%s"' % re.escape(name), page)
    assert m, f"the page has a {name} field"
    return html.unescape(m.group(1))


class Gateway:
    """otpgate with the sandbox provider in front of one app."""

    def __init__(self, name, app_table, files=None, tables=""):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        for fname, text in (files or {}).items():
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text)
        self.port = free_port()
        self.config = os.path.join(self.dir, "otpgate.toml")
        with open(self.config, "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:{self.port}"
secret_file = "otpgate.key"

[admin]
listen = ""

# Each scenario texts the same test number within the minute.
[limits]
cooldown = "0s"

[sms]
providers = ["sandbox"]

{tables}

{app_table}""")
        check = subprocess.run([OTPGATE, "check-config", "--config", self.config],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.base = f"http://127.0.0.1:{self.port}"
        proc = Started.start([OTPGATE, "--config", self.config], f"otpgate-{name}",
                             env={**os.environ, "RUST_LOG": "info"})
        wait_for(self.base + "/.otpgate/healthz", proc)

    def explain(self, path, *cookies, config=None):
        """`otpgate explain` for a request to `path` with each Cookie field."""
        args = [OTPGATE, "explain", "--config", config or self.config,
                "--url", self.base + path]
        for c in cookies:
            args += ["--cookie", c]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout + out.stderr

    def edited_config(self, old, new):
        """This gateway's configuration with one line changed (not started)."""
        text = open(self.config).read()
        assert old in text, old
        path = self.config.replace(".toml", "-edited.toml")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
        return path

    def latest_code(self, browser):
        """The newest code in the sandbox inbox (the fake phone)."""
        inbox = browser.get("/.otpgate/sandbox").text
        m = re.search(r"<pre>[^<]*?\b(\d{6,10})\b", inbox)
        assert m, "the sandbox inbox holds a code"
        return m.group(1)

    def pass_code_page(self, browser, rd):
        """Opens the code page (which texts a code), enters the code."""
        page = browser.get("/.otpgate/verify?rd=" + urllib.parse.quote(rd, safe=""))
        assert page.status == 200, f"the code page opens: {page.status}"
        res = browser.post("/.otpgate/verify", {
            "csrf": hidden(page.text, "csrf"), "rd": rd, "code": self.latest_code(browser)})
        assert res.status == 303, f"the right code is taken: {res.status} {res.text[:200]}"
        return res


class DjangoAdmin(unittest.TestCase):
    """Django's admin: HTML-only identity on /admin/, sessionid, a CSRF form."""

    @classmethod
    def setUpClass(cls):
        site = os.path.join(WORK, "django-site")
        os.makedirs(site, exist_ok=True)
        py = os.path.join(PYBIN, "python")
        subprocess.run([os.path.join(PYBIN, "django-admin"), "startproject", "mysite", site],
                       check=True)
        cls.app_port = free_port()
        # The app's normal deployment settings: which hosts it answers to.
        with open(os.path.join(site, "mysite", "settings.py"), "a") as f:
            f.write('\nALLOWED_HOSTS = ["127.0.0.1", "localhost"]\n')
        env = {**os.environ, "DJANGO_SUPERUSER_USERNAME": "alice",
               "DJANGO_SUPERUSER_PASSWORD": "wonderland-42",
               "DJANGO_SUPERUSER_EMAIL": "alice@example.com"}
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=site, check=True)
        subprocess.run([py, "manage.py", "createsuperuser", "--noinput"], cwd=site, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        proc = Started.start([py, "manage.py", "runserver", "--noreload",
                              f"127.0.0.1:{cls.app_port}"], "django", cwd=site)
        wait_for(f"http://127.0.0.1:{cls.app_port}/admin/login/", proc)
        cls.gw = Gateway("django", readme_config("HTML only", cls.app_port),
                         {"users.toml": f'[users]\nalice = "{PHONE}"\n'})

    def log_in(self, browser):
        page = browser.get("/admin/login/?next=/admin/")
        self.assertEqual(page.status, 200, "the login page reaches the app")
        res = browser.post("/admin/login/?next=/admin/", {
            "csrfmiddlewaretoken": hidden(page.text, "csrfmiddlewaretoken"),
            "username": "alice", "password": "wonderland-42", "next": "/admin/"})
        self.assertEqual(res.status, 302, f"Django takes the login: {res.text[:300]}")
        self.assertTrue(browser.cookie("sessionid"), "Django set its session cookie")

    def test_anonymous_pages_still_reach_the_app(self):
        b = Browser(self.gw.base)
        res = b.get("/admin/")
        self.assertEqual(res.status, 302)
        self.assertIn("/admin/login/", res.location, "Django itself sends to its login")
        self.assertEqual(b.get("/admin/login/").status, 200)

    def test_a_stale_session_cookie_reaches_the_apps_login_not_a_gateway_page(self):
        b = Browser(self.gw.base)
        b.set_cookie("sessionid", "no-such-session")
        res = b.get("/admin/")
        self.assertEqual(res.status, 302, res.text[:200])
        self.assertIn("/admin/login/", res.location)

    def test_the_login_leads_to_the_code_page_and_the_code_opens_the_admin(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        res = b.get("/admin/")
        self.assertEqual(res.status, 303, "logged in without a code: the code page")
        self.assertTrue(res.location.startswith("/.otpgate/verify"), res.location)
        self.gw.pass_code_page(b, "/admin/")
        page = b.get("/admin/")
        self.assertEqual(page.status, 200)
        self.assertRegex(page.text, r"Welcome,\s*<strong>alice</strong>")

    def test_the_apps_logout_ends_the_second_factor(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        self.gw.pass_code_page(b, "/admin/")
        page = b.get("/admin/")
        self.assertEqual(page.status, 200)
        res = b.post("/admin/logout/", {
            "csrfmiddlewaretoken": hidden(page.text, "csrfmiddlewaretoken")})
        self.assertEqual(res.status, 200, f"Django logs out: {res.text[:200]}")
        self.assertIsNone(b.cookie("otpgate"), "the factor cookie went with the session")
        self.log_in(b)
        res = b.get("/admin/")
        self.assertEqual(res.status, 303, "a new login asks for a new code")


    def test_explain_shows_the_user_and_the_code_page_and_never_a_cookie_value(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        field = "; ".join(f"{c.name}={c.value}" for c in b.jar)
        code, out = self.gw.explain("/admin/", field)
        self.assertIn(code, (0, 1), out)
        self.assertIn('user "alice"', out)
        self.assertIn("***5678", out)
        self.assertIn("303 to /.otpgate/verify", out)
        self.assertNotIn(b.cookie("sessionid"), out, "a cookie value was printed")
        self.assertNotIn(PHONE, out, "a whole phone number was printed")
        code, out = self.gw.explain("/admin/")
        self.assertEqual(code, 0, out)
        self.assertIn("pass to the app untouched", out)

    def test_explain_warns_when_the_pattern_matches_nothing_for_a_logged_in_session(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        config = self.gw.edited_config("Welcome,", "Bienvenue,")
        code, out = self.gw.explain("/admin/", f"sessionid={b.cookie('sessionid')}",
                                    config=config)
        self.assertEqual(code, 1, out)
        self.assertIn("matched nothing", out)
        self.assertIn("may ignore cookies", out)


class Datasette(unittest.TestCase):
    """Datasette with datasette-auth-passwords: /-/actor.json answers 200
    {"actor": null} for nobody; the actor carries the phone."""

    @classmethod
    def setUpClass(cls):
        d = os.path.join(WORK, "datasette")
        os.makedirs(d, exist_ok=True)
        hashed = subprocess.run(
            [os.path.join(PYBIN, "datasette"), "hash-password", "--no-confirm"],
            input="hatter-42", capture_output=True, text=True, check=True).stdout.strip()
        metadata = {"plugins": {"datasette-auth-passwords": {
            "alice_password_hash": hashed,
            "actors": {"alice": {"id": "alice", "name": "Alice", "phone": PHONE}},
        }}}
        with open(os.path.join(d, "metadata.json"), "w") as f:
            json.dump(metadata, f)
        cls.app_port = free_port()
        proc = Started.start([os.path.join(PYBIN, "datasette"), "serve", "--memory",
                              "-m", os.path.join(d, "metadata.json"),
                              "-h", "127.0.0.1", "-p", str(cls.app_port)], "datasette")
        wait_for(f"http://127.0.0.1:{cls.app_port}/-/actor.json", proc)
        cls.gw = Gateway("datasette", readme_config("JSON with an anonymous marker", cls.app_port))

    def log_in(self, browser):
        page = browser.get("/-/login")
        self.assertEqual(page.status, 200, "the login page reaches the app")
        res = browser.post("/-/login", {"username": "alice", "password": "hatter-42",
                                        "csrftoken": hidden(page.text, "csrftoken")})
        self.assertEqual(res.status, 302, f"Datasette takes the login: {res.text[:300]}")
        self.assertTrue(browser.cookie("ds_actor"), "Datasette set its actor cookie")

    def test_anonymous_pages_still_reach_the_app(self):
        b = Browser(self.gw.base)
        self.assertEqual(b.get("/").status, 200)
        self.assertEqual(b.get("/-/login").status, 200)

    def test_an_actor_cookie_that_names_nobody_reaches_the_app_not_a_gateway_page(self):
        # {"actor": null} with a session cookie present: anonymous, not the
        # 409 "no phone" page nor a 502.
        b = Browser(self.gw.base)
        b.set_cookie("ds_actor", "not-a-signed-actor")
        res = b.get("/")
        self.assertEqual(res.status, 200, res.text[:300])
        self.assertIn("Datasette", res.text)

    def test_the_login_leads_to_the_code_page_and_the_code_opens_the_app(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        res = b.get("/")
        self.assertEqual(res.status, 303, "logged in without a code: the code page")
        self.assertTrue(res.location.startswith("/.otpgate/verify"), res.location)
        self.gw.pass_code_page(b, "/")
        actor = json.loads(b.request("GET", "/-/actor.json", accept="application/json").text)
        self.assertEqual(actor["actor"]["id"], "alice")

    def test_the_apps_logout_ends_the_second_factor(self):
        b = Browser(self.gw.base)
        self.log_in(b)
        self.gw.pass_code_page(b, "/")
        page = b.get("/-/logout")
        self.assertEqual(page.status, 200)
        res = b.post("/-/logout", {"csrftoken": hidden(page.text, "csrftoken")})
        self.assertEqual(res.status, 302, f"Datasette logs out: {res.text[:200]}")
        self.assertIsNone(b.cookie("otpgate"), "the factor cookie went with the session")
        self.log_in(b)
        self.assertEqual(b.get("/").status, 303, "a new login asks for a new code")


    def test_explain_takes_a_null_actor_for_nobody_and_a_real_one_for_the_user(self):
        code, out = self.gw.explain("/", "ds_actor=not-a-signed-actor")
        self.assertEqual(code, 1, out)
        self.assertIn('user_pointer "/actor/id" finds nothing', out)
        self.assertIn("pass to the app as anonymous", out)
        b = Browser(self.gw.base)
        self.log_in(b)
        code, out = self.gw.explain("/", f"ds_actor={b.cookie('ds_actor')}")
        self.assertIn(code, (0, 1), out)
        self.assertIn('user "alice", phone ***5678', out)
        self.assertNotIn(b.cookie("ds_actor"), out, "a cookie value was printed")


    def test_a_single_owner_phone_gets_the_code_when_the_actor_carries_none(self):
        # The single-owner recipe's `phone` in place of the actor's number.
        table = readme_config("JSON with an anonymous marker", self.app_port)
        table = table.replace('phone_pointer = "/actor/phone"', 'phone = "+4915123459876"')
        gw = Gateway("datasette-owner", table)
        b = Browser(gw.base)
        self.log_in(b)
        self.assertEqual(b.get("/").status, 303)
        page = b.get("/.otpgate/verify?rd=%2F")
        self.assertIn("***9876", page.text, "the code page names the owner's phone")
        inbox = b.get("/.otpgate/sandbox").text
        self.assertIn("to ***9876", inbox)
        res = b.post("/.otpgate/verify", {"csrf": hidden(page.text, "csrf"), "rd": "/",
                                          "code": gw.latest_code(b)})
        self.assertEqual(res.status, 303)
        self.assertEqual(b.get("/").status, 200)

    def test_prometheus_reads_the_metrics_and_a_login_moves_them(self):
        port = free_port()
        gw = Gateway("datasette-metrics",
                     readme_config("JSON with an anonymous marker", self.app_port),
                     tables=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        b = Browser(gw.base)
        self.log_in(b)
        self.assertEqual(b.get("/").status, 303)
        page = b.get("/.otpgate/verify?rd=%2F")
        code = gw.latest_code(b)
        wrong = ("1" if code[0] == "0" else "0") + code[1:]
        res = b.post("/.otpgate/verify", {"csrf": hidden(page.text, "csrf"), "rd": "/",
                                          "code": wrong})
        self.assertEqual(res.status, 422)
        gw.pass_code_page(b, "/")
        self.assertEqual(b.get("/").status, 200)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as res:
            self.assertTrue(res.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            text = res.read().decode()
        # Prometheus' own text parser, as a scraper reads it.
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name, kind in [("otpgate_requests", "counter"),
                           ("otpgate_request_duration_seconds", "histogram"),
                           ("otpgate_codes_sent", "counter"),
                           ("otpgate_code_checks", "counter"),
                           ("otpgate_whoami_calls", "counter"),
                           ("otpgate_build_info", "gauge")]:
            self.assertIn(name, families, f"{name} in {sorted(families)}")
            self.assertEqual(families[name].type, kind, name)

        def total(family, **labels):
            return sum(s.value for s in families[family].samples
                       if s.name.endswith("_total")
                       and all(s.labels.get(k) == v for k, v in labels.items()))

        app = "Datasette"
        self.assertEqual(total("otpgate_requests", app=app, decision="code_page"), 1)
        self.assertEqual(total("otpgate_requests", app=app, decision="pass"), 3,
                         "the log-in page, its post, and the page after the code")
        self.assertEqual(total("otpgate_codes_sent", app=app, channel="sms",
                               provider="sandbox", result="accepted"), 1)
        self.assertEqual(total("otpgate_code_checks", app=app, result="wrong"), 1)
        self.assertEqual(total("otpgate_code_checks", app=app, result="right"), 1)
        for family in families.values():
            for sample in family.samples:
                for value in sample.labels.values():
                    self.assertNotIn("alice", value)
                    self.assertNotIn("5678", value)
                    self.assertNotIn("127.0.0.1", value)


def readme_config(recipe, app_port):
    """The `[[apps]]` block of the README's recipe, pointed at this app."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    start = readme.index(f"**{recipe}.**")
    block = readme[readme.index("```toml\n", start) + 8:]
    block = block[:block.index("```")]
    return re.sub(r'upstream = "[^"]*"', f'upstream = "http://127.0.0.1:{app_port}"', block)


if __name__ == "__main__":
    Started.work = WORK
    main("apps", sys.modules[__name__])
