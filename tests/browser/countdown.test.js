// The resend button on the demo as shipped (60 s between sends): it counts
// down from 60 and then becomes usable. The page's script counts with
// setInterval; Playwright's clock runs those timers forward, so no test
// waits a real minute. The server keeps its own 60 s either way.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { DEMO, VIEWPORTS, launch, open, logIn, shot, assertNoPageErrors } = require('./lib');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser.close(); });

// One user per size: each gets the first code of its number.
const USER = { phone: 'alice', desktop: 'bob' };

for (const vp of VIEWPORTS) {
  test(`${vp.name}: the resend button counts down from 60 and then becomes usable`, async () => {
    const { context, page } = await open(browser, vp);
    try {
      await page.clock.install();
      await logIn(page, DEMO, USER[vp.name]);
      const button = page.getByRole('button', { name: 'Resend code' });
      const countdown = page.locator('#countdown');
      assert.equal(await countdown.textContent(), '60', 'starts at 60');
      assert.ok(await button.isDisabled(), 'not usable while counting');
      await shot(page, '10-resend-countdown');

      await page.clock.runFor(5_000);
      assert.equal(await countdown.textContent(), '55', 'five seconds later');
      assert.ok(await button.isDisabled());

      await page.clock.runFor(55_000);
      assert.ok(await button.isEnabled(), 'usable after 60 seconds');
      await page.getByText("Didn't get it? You can ask for a new code now.").waitFor();
      await shot(page, '11-resend-ready');
      assertNoPageErrors(page);
    } finally {
      await context.close();
    }
  });
}
