// Checks that playwright-core can drive this machine's Chromium: opens a page
// served from a data URL and reads its title. Used by the setup check; the
// meeting-page tests build on the same launch options.
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage();
await page.goto('data:text/html,<title>ok</title>');
const title = await page.title();
await browser.close();
if (title !== 'ok') { console.error(`unexpected title ${title}`); process.exit(1); }
console.log('chromium ok');
