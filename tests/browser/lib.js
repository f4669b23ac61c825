// What every browser test needs: Debian's Chromium, the two screen sizes,
// the demo's URLs (run.sh starts the demos), the sandbox phone, screenshots
// and the axe audit.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { AxeBuilder } = require('@axe-core/playwright');

/// The demo as shipped (config.toml built in: 60 s between sends).
const DEMO = need('DEMO_URL');
/// A demo with no cooldown and loose limits, so that the flows can log the
/// same two users in again and again in one run.
const QUICK = need('QUICK_URL');
const SCREENSHOTS = process.env.SCREENSHOTS || path.join(__dirname, 'screenshots');

function need(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests with bash tests/browser/run.sh`);
  }
  return value.replace(/\/$/, '');
}

const VIEWPORTS = [
  { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  { name: 'desktop', viewport: { width: 1280, height: 800 } },
];

const USERS = { alice: 'wonderland', bob: 'builder' };

/// Chromium as the references say it runs here: as root (no sandbox), on a
/// closed network (no background requests, no component updates).
function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/// A fresh browser profile at the viewport's size, and its first tab. The
/// tab remembers page errors and CSP refusals for `assertNoPageErrors`.
async function open(browser, vp, options = {}) {
  const { name, ...size } = vp;
  const context = await browser.newContext({ ...size, ...options });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.vp = name;
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A 4xx document (a wrong code is 422) is logged as a failed load;
    // anything else the console calls an error is a fault of the page.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      page.problems.push(`console: ${m.text()}`);
    }
  });
  return { context, page };
}

function assertNoPageErrors(page) {
  assert.deepEqual(page.problems, [], 'the page logged errors');
}

/// A tap on a phone, a click on a desktop.
async function press(page, locator) {
  if (page.vp === 'phone') {
    await locator.tap();
  } else {
    await locator.click();
  }
}

/// Logs in through the demo app's own form, starting at `start` (a path
/// the app sends to its login page); the tab ends on the code page.
async function logIn(page, base, user, start = '/') {
  await page.goto(base + start);
  await page.waitForURL(/\/login$/);
  await page.getByLabel('Name').fill(user);
  await page.getByLabel('Password').fill(USERS[user]);
  await press(page, page.getByRole('button', { name: 'Log in' }));
  await page.waitForURL(/\/\.otpgate\/verify\?rd=/);
}

/// The sandbox phone's messages, newest first: what a user would read on
/// the phone ({ body, code }).
async function inbox(base) {
  const res = await fetch(base + '/.otpgate/sandbox');
  assert.equal(res.status, 200, 'the sandbox inbox is served');
  const html = await res.text();
  return [...html.matchAll(/<pre>([^<]*)<\/pre>/g)].map((m) => {
    const code = /code is (\d+)/.exec(m[1]);
    return { body: m[1], code: code && code[1] };
  });
}

/// The code of the newest message.
async function latestCode(base) {
  const [newest] = await inbox(base);
  assert.ok(newest && newest.code, 'a code is in the sandbox inbox');
  return newest.code;
}

/// A code that is not `code`.
function wrongCode(code) {
  return code.startsWith('0') ? '1' + code.slice(1) : '0' + code.slice(1);
}

/// Types `code` into the code field and presses Verify; waits for the answer.
async function enterCode(page, code) {
  await page.getByLabel('Verification code').fill(code);
  await Promise.all([
    page.waitForNavigation(),
    press(page, page.getByRole('button', { name: 'Verify' })),
  ]);
}

/// A full-page screenshot as screenshots/<viewport>-<name>.png.
async function shot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${page.vp}-${name}.png`), fullPage: true });
}

/// axe-core against WCAG 2.0, 2.1 and 2.2 A and AA and best practices:
/// asserts there are no violations and says which ones there are if not.
async function assertAccessible(page, what) {
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'])
    .analyze();
  const found = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ')).join('\n  ')}`,
  );
  assert.deepEqual(found, [], `axe on ${what} at ${page.vp}`);
  return result;
}

module.exports = {
  DEMO, QUICK, VIEWPORTS, USERS, launch, open, press, logIn, inbox, latestCode, wrongCode,
  enterCode, shot, assertAccessible, assertNoPageErrors,
};
