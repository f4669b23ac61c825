// axe-core (WCAG 2.0, 2.1 and 2.2 A and AA, and best practices) on every
// page a user of the code page can meet: the code page, a wrong code, a
// locked code, and the error pages a refused form post shows.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  QUICK, VIEWPORTS, launch, open, press, logIn, latestCode, wrongCode, enterCode, shot,
  assertAccessible, assertNoPageErrors,
} = require('./lib');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

for (const vp of VIEWPORTS) {
  test(`${vp.name}: the code page, a wrong code and a locked code pass axe with no violations`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await logIn(page, QUICK, 'bob');
      await assertAccessible(page, 'the code page');

      const wrong = wrongCode(await latestCode(QUICK));
      await enterCode(page, wrong);
      await page.getByText('Invalid code, 4 attempts left.').waitFor();
      await assertAccessible(page, 'the wrong-code page');

      for (const left of ['3 attempts', '2 attempts', '1 attempt']) {
        await enterCode(page, wrong);
        await page.getByText(`Invalid code, ${left} left.`).waitFor();
      }
      await enterCode(page, wrong);
      await page.getByText("Too many wrong codes. That code no longer works; ask for a new one.").waitFor();
      assert.equal(await page.getByLabel('Verification code').count(), 0, 'no code field for a locked code');
      await shot(page, '20-locked');
      await assertAccessible(page, 'the locked page');
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });

  test(`${vp.name}: a refused form post shows an error page that passes axe and leads back to the same code page`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await logIn(page, QUICK, 'alice');
      await page.goto(QUICK + '/reports');
      await page.waitForURL(/\/\.otpgate\/verify\?rd=%2Freports$/);

      // A page left open across a logout and login holds a stale token.
      await page.locator('#verify-form input[name=csrf]').evaluate((el) => { el.value = 'stale'; });
      await enterCode(page, '123456');
      await page.getByText('The form has expired or was not sent from this site').waitFor();
      assert.equal(await page.title(), 'Something went wrong');
      await shot(page, '21-error-csrf');
      await assertAccessible(page, 'the CSRF error page');

      // A form a browser extension rewrote into multipart.
      await press(page, page.getByRole('link', { name: 'Back to the code page' }));
      await page.waitForURL(/\/\.otpgate\/verify\?rd=%2Freports$/);
      await page.locator('#verify-form').evaluate((f) => { f.enctype = 'multipart/form-data'; });
      await enterCode(page, '123456');
      await page.getByText('This endpoint takes a form').waitFor();
      await shot(page, '22-error-not-a-form');
      await assertAccessible(page, 'the wrong-content-type error page');

      await press(page, page.getByRole('link', { name: 'Back to the code page' }));
      await page.waitForURL(/\/\.otpgate\/verify\?rd=%2Freports$/);
      await enterCode(page, await latestCode(QUICK));
      assert.equal(new URL(page.url()).pathname, '/reports', 'the way back kept rd');
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });
}
