// tests/e2e/review/review.mjs: a real browser (Debian's /usr/bin/chromium through playwright-core)
// on the review page. Called by tests/e2e/review.sh with
//   REVIEW_URL, REVIEW_TOKEN, HOSTILE_QID, RELEASE_QID, HAM_QID, HOSTILE_DOMAIN, SHOTS (screenshot dir)
// Prints "PASS name" / "FAIL name: evidence" per check; exits 1 on any failure.
import { chromium } from 'playwright-core';

const env = (k) => { const v = process.env[k]; if (!v) { console.log(`FAIL environment: ${k} is not set`); process.exit(1); } return v; };
const URL = env('REVIEW_URL'), TOKEN = env('REVIEW_TOKEN'), SHOTS = env('SHOTS');
const HOSTILE = env('HOSTILE_QID'), RELEASE = env('RELEASE_QID'), HAM = env('HAM_QID'), DOMAIN = env('HOSTILE_DOMAIN');
let failed = 0;
const check = (name, ok, evidence = '') => {
  if (ok) console.log(`PASS ${name}`); else { failed++; console.log(`FAIL ${name}: ${String(evidence).slice(0, 600)}`); }
};
const cspViolations = [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
  let dialogs = 0;
  page.on('dialog', async (d) => { dialogs++; await d.dismiss(); });

  // not logged in: the list answers 401 with the login form
  const first = await page.goto(`${URL}/`);
  check('without a token / answers 401', first.status() === 401, first.status());
  check('the 401 page is the login form', await page.locator('input[name=token]').count() === 1, await page.content());
  await page.screenshot({ path: `${SHOTS}/review-login.png` });
  await page.fill('input[name=token]', 'not-the-token-not-the-token-not-the');
  await page.click('form.login button[type=submit]');
  check('a wrong token is refused', (await page.textContent('body')).includes('not in review.token_file'), await page.textContent('body'));
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${URL}/`), page.click('form.login button[type=submit]')]);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'impostor_session');
  check('login sets an HttpOnly SameSite=Strict session cookie', session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));

  // the list
  const rows = page.locator('table.held tbody tr');
  check('the list shows the 3 held messages', await rows.count() === 3, await page.textContent('main'));
  const rowText = await page.locator(`tr[data-queue-id="${HOSTILE}"]`).textContent();
  check('the hostile row shows sender domain, brand, score and rule ids',
    rowText.includes(DOMAIN) && rowText.includes('OpenAI') && /1[0-4]\.\d/.test(rowText) && rowText.includes('BRAND_NAME_FOREIGN_DOMAIN'), rowText);
  check('the hostile Subject is text in the list', rowText.includes('<script>alert(1)</script>'), rowText);
  await page.screenshot({ path: `${SHOTS}/review-list.png`, fullPage: true });

  // filter by sender domain, then by brand and rule
  await page.fill('input[name=domain]', DOMAIN);
  await Promise.all([page.waitForURL(/domain=/), page.click('form.filters button[type=submit]')]);
  check('filtering by sender domain leaves the one message', await rows.count() === 1 && await page.locator(`tr[data-queue-id="${HOSTILE}"]`).count() === 1, await page.textContent('main'));
  await page.goto(`${URL}/`);
  await page.selectOption('select[name=brand]', 'OpenAI');
  await page.selectOption('select[name=rule]', 'IMPERSONATION');
  await Promise.all([page.waitForURL(/brand=OpenAI/), page.click('form.filters button[type=submit]')]);
  check('filtering by brand and rule keeps the 3 OpenAI impersonations', await rows.count() === 3, await page.textContent('main'));
  await page.click('a:text("score")');
  check('sort by score', page.url().includes('sort=score'), page.url());

  // the hostile message: everything shown as text, links defanged
  await page.goto(`${URL}/message/${HOSTILE}`);
  const h1 = await page.textContent('h1.subject');
  check('the message view shows the <script> Subject as text', h1.includes('<script>alert(1)</script>'), h1);
  const counts = await page.evaluate(() => ({
    scripts: document.querySelectorAll('script').length,
    imgs: document.querySelectorAll('img').length,
    iframes: document.querySelectorAll('iframe').length,
    bodyB: document.querySelectorAll('pre.body b, pre.body a').length,
    outLinks: [...document.querySelectorAll('a[href]')].filter((a) => !a.href.startsWith(location.origin)).length,
  }));
  check('no script, img, iframe or markup from the message reaches the DOM', counts.scripts === 0 && counts.imgs === 0 && counts.iframes === 0 && counts.bodyB === 0, JSON.stringify(counts));
  check('no link leaves the review page', counts.outLinks === 0, JSON.stringify(counts));
  const body = await page.textContent('pre.body');
  check('the body is shown as text', body.includes("<script>alert('x')</script>") && body.includes('<b>verify</b>'), body);
  check('the body link is defanged', body.includes('hxxps://account-review[.]example/activity') && !body.includes('https://account-review'), body);
  const findings = await page.textContent('table.findings');
  check('findings with evidence', findings.includes('BRAND_NAME_FOREIGN_DOMAIN') && findings.includes('OpenAI'), findings);
  const auth = await page.textContent('table.auth');
  check("authentication: impostor's own recorded SPF/DMARC results are shown", auth.includes('SPF') && auth.includes('DMARC') && auth.includes('signin-alert.example'), auth);
  check('the Authentication-Results field is shown', (await page.locator('pre.ar').count()) >= 1, await page.textContent('main'));
  check('a text/plain message shows no HTML part', (await page.locator('details').count()) === 0, await page.textContent('main'));
  check('the attachment name and type are listed', (await page.textContent('ul.attachments')).includes('invoice.pdf') && (await page.textContent('ul.attachments')).includes('application/pdf'), await page.textContent('main'));
  check('no dialog opened (no script ran)', dialogs === 0, dialogs);
  await page.screenshot({ path: `${SHOTS}/review-message.png`, fullPage: true });

  // release one
  await page.goto(`${URL}/message/${RELEASE}`);
  await Promise.all([page.waitForURL(/notice=/), page.click('button:text-is("Release")')]);
  check('release: the list says it was released', (await page.textContent('p.notice')).includes(`${RELEASE} released`), await page.textContent('main'));
  check('release: it is gone from the list', await page.locator(`tr[data-queue-id="${RELEASE}"]`).count() === 0, await page.textContent('main'));

  // release and report a false positive
  await page.goto(`${URL}/message/${HAM}`);
  await Promise.all([page.waitForURL(/notice=/), page.click('button:text("Release and report false positive")')]);
  check('report: the list says it was reported', (await page.textContent('p.notice')).includes('reported as a false positive'), await page.textContent('main'));
  check('report: one message left in the list', await rows.count() === 1, await page.textContent('main'));
  await page.screenshot({ path: `${SHOTS}/review-after-actions.png`, fullPage: true });

  // the stylesheet loads under the CSP; nothing was blocked
  const css = await page.evaluate(() => getComputedStyle(document.querySelector('header')).display);
  check('the stylesheet from the binary applies', css === 'flex', css);
  check('no Content-Security-Policy violation', cspViolations.length === 0, cspViolations.join(' | '));
} catch (e) {
  check('browser run', false, e.stack || e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
