// A user's way through the second factor in a real Chromium, at a phone's
// size and a desktop's: the app's own login form, the code page, wrong and
// right codes, the live delivery line, no JavaScript, logout and back.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  QUICK, VIEWPORTS, launch, open, press, logIn, inbox, latestCode, wrongCode, enterCode, shot,
  assertNoPageErrors,
} = require('./lib');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

for (const vp of VIEWPORTS) {
  test(`${vp.name}: a user logs in through the app's form, enters a wrong code and then the right one, and reaches the page they were going to`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await logIn(page, QUICK, 'alice');
      await shot(page, '01-code-page');
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
      assert.equal(focused, 'code', 'the code field has the focus');
      const field = page.getByLabel('Verification code');
      assert.equal(await field.getAttribute('autocomplete'), 'one-time-code');
      assert.equal(await field.getAttribute('inputmode'), 'numeric');

      // The user opens the page they wanted: the code page comes back for it.
      await page.goto(QUICK + '/reports');
      await page.waitForURL(/\/\.otpgate\/verify\?rd=%2Freports$/);
      const code = await latestCode(QUICK);
      const post = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/.otpgate/verify'));
      await enterCode(page, wrongCode(code));
      // What Chromium really sent with the form (the Fetch standard's Origin
      // and Fetch Metadata): the gateway's CSRF rules are written for this.
      const sent = await (await post).allHeaders();
      assert.equal(sent.origin, QUICK, 'Referrer-Policy: same-origin keeps the real Origin');
      assert.equal(sent['sec-fetch-site'], 'same-origin');
      assert.equal(sent['sec-fetch-mode'], 'navigate');
      assert.equal(sent['sec-fetch-dest'], 'document');
      await assert.doesNotReject(
        page.getByText('Invalid code, 4 attempts left.').waitFor(),
        'the page says how many attempts are left',
      );
      assert.equal(await field.getAttribute('aria-invalid'), 'true');
      await shot(page, '02-wrong-code');

      await enterCode(page, code);
      assert.equal(new URL(page.url()).pathname, '/reports');
      await page.getByText('otpgate vouched for alice with a second factor.').waitFor();
      await shot(page, '03-app-reports');
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });

  test(`${vp.name}: the delivery line changes from sent to delivered without a reload`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await logIn(page, QUICK, 'bob');
      // The sandbox delivers on arrival, so its code page already says
      // "delivered". A real provider reports later: the code page is shown
      // as it is before the report (the server's own HTML, with that one line
      // as the server writes it for a sent message), and the page's script
      // must then bring the real state from /.otpgate/status. (Playwright
      // routes no redirect hops, so the page is opened again directly.)
      let rewritten = 0;
      await page.route(/\/\.otpgate\/verify\?/, async (route) => {
        if (route.request().method() !== 'GET' || rewritten > 0) {
          return route.continue();
        }
        const res = await route.fetch({ maxRedirects: 0 });
        const html = await res.text();
        const sent = html.replace(
          /<p id="delivery"([^>]*) data-progress="[a-z]+">[^<]*<\/p>/,
          '<p id="delivery"$1 data-progress="waiting">Sent by SMS.</p>',
        );
        if (sent !== html) rewritten += 1;
        return route.fulfill({ response: res, body: sent });
      });
      let loads = 0;
      page.on('load', () => { loads += 1; });
      await page.goto(page.url());
      assert.equal(rewritten, 1, 'the code page had a delivery line');
      const line = page.locator('#delivery');
      assert.equal(await line.textContent(), 'Sent by SMS.');
      await shot(page, '04-delivery-sent');
      const loadsBefore = loads;
      await page.waitForFunction(
        () => document.getElementById('delivery').dataset.progress === 'delivered',
        null,
        { timeout: 10_000 },
      );
      assert.equal(await line.textContent(), 'Delivered to your phone by SMS.');
      assert.equal(loads, loadsBefore, 'no reload');
      await shot(page, '05-delivery-delivered');

      await enterCode(page, await latestCode(QUICK));
      assert.equal(new URL(page.url()).pathname, '/');
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });

  test(`${vp.name}: with JavaScript turned off the login, code and app flow works the same`, async () => {
    const { context, page } = await open(browser, vp, { javaScriptEnabled: false });
    try {
      await logIn(page, QUICK, 'bob');
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
      assert.equal(focused, 'code', 'autofocus needs no script');
      assert.equal(await page.locator('#countdown').count(), 0, 'no countdown without a cooldown');
      await shot(page, '06-nojs-code-page');
      const code = await latestCode(QUICK);
      await enterCode(page, wrongCode(code));
      await page.getByText('Invalid code, 4 attempts left.').waitFor();
      await enterCode(page, code);
      assert.equal(new URL(page.url()).pathname, '/');
      await page.getByText('otpgate vouched for bob with a second factor.').waitFor();
      await shot(page, '07-nojs-app');
    } finally {
      await context.close();
    }
  });

  test(`${vp.name}: after logging out in the app and in again, a new code is asked for`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await logIn(page, QUICK, 'alice');
      const first = await latestCode(QUICK);
      await enterCode(page, first);
      await page.getByText('otpgate vouched for alice').waitFor();
      const sent = (await inbox(QUICK)).length;

      await press(page, page.getByRole('button', { name: 'Log out' }));
      await page.waitForURL(/\/login$/);
      await logIn(page, QUICK, 'alice');
      await shot(page, '08-code-page-again');
      const messages = await inbox(QUICK);
      assert.equal(messages.length, sent + 1, 'a new message went out');
      const second = messages[0].code;
      if (second !== first) {
        await enterCode(page, first);
        await page.getByText(/code has expired or was already used|Invalid code/).waitFor();
      }
      await enterCode(page, second);
      assert.equal(new URL(page.url()).pathname, '/');
      await page.getByText('otpgate vouched for alice').waitFor();
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });
}
