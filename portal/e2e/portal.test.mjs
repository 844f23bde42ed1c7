// End-to-end tests of the portal in headless Chromium against local mode: the portal as
// served by `orchestrator serve --sandbox`, the API behind it, the sandbox's JIRA and
// provisioning stand-ins. Screenshots of the main pages go to e2e/artifacts/.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ARTIFACTS, startBrowser, startOrchestrator } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const LONG = { timeout: 30000 };

let app;
let browser;
let page;
const consoleErrors = [];

async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** axe-core's serious and critical findings on the current page (CSP stays on: the
 * script is evaluated through the DevTools protocol, not injected). */
async function accessibilityViolations() {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

async function signIn(token) {
  await page.goto(app.base);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Service catalog' }).waitFor();
}

async function open(hash) {
  await page.goto(`${app.base}/${hash}`);
}

before(async () => {
  app = await startOrchestrator();
  browser = await startBrowser();
  page = await browser.context.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await browser?.stop();
  await app?.stop();
});

test('a token that is not one is refused; a dev token signs in', async () => {
  await page.goto(app.base);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.getByLabel('Access token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText('That is not a token').waitFor();
  // Well formed, but not signed by this orchestrator: the API says no.
  const [head, body] = app.tokens.requester.split('.');
  await page.getByLabel('Access token').fill(`${head}.${body}.AAAA`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Service catalog' }).count(), 0);
  await signIn(app.tokens.requester);
  await page.getByText('Signed in as').getByText('alice').waitFor();
});

test('the catalog is searched and filtered', async () => {
  await signIn(app.tokens.requester);
  const cards = page.getByRole('list', { name: 'Offerings' }).getByRole('heading');
  await cards.first().waitFor();
  const all = await cards.allInnerTexts();
  assert.ok(all.length >= 8, `every example offering is listed: ${all}`);
  assert.ok(all.includes('RDS PostgreSQL database'));
  assert.ok(all.some((t) => t.startsWith('Event pipeline')), 'bundles are listed with items');
  await shot('catalog');

  await page.getByLabel('Search').fill('postgres');
  await page.getByRole('status').getByText(/^2 offerings$/).waitFor();
  const found = await cards.allInnerTexts();
  assert.ok(found.includes('RDS PostgreSQL database'), `${found}`);
  assert.ok(!found.includes('DynamoDB table'), `${found}`);

  await page.getByLabel('Search').fill('');
  await page.getByLabel('Category').selectOption('messaging');
  await page.getByRole('status').getByText(/offerings?$/).waitFor();
  await page.waitForFunction(() => !document.body.innerText.includes('RDS PostgreSQL database'));
  const messaging = await cards.allInnerTexts();
  assert.ok(messaging.includes('Amazon SNS topic'), `${messaging}`);
  assert.ok(!messaging.includes('DynamoDB table'), `${messaging}`);
  const categories = await page.getByRole('list', { name: 'Offerings' }).locator('.meta').allInnerTexts();
  assert.ok(categories.every((m) => m.includes('messaging')), `${categories}`);

  await page.getByLabel('Category').selectOption('');
  await page.getByLabel('Tag', { exact: true }).selectOption('postgres');
  await page.waitForFunction(() => !document.body.innerText.includes('DynamoDB table'));
  // The filtered list may still be loading once the old one is gone: wait for it.
  await cards.getByText('RDS PostgreSQL database', { exact: true }).waitFor();
  await page.getByLabel('Owner team').selectOption('database');
  assert.ok((await cards.allInnerTexts()).every((t) => !t.startsWith('Event pipeline')));
});

test('the catalog is read a page at a time, and more is shown on demand', async () => {
  // Pages of 4 (the portal asks for 48): the example catalog then spans several.
  const smaller = (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('limit', '4');
    return route.continue({ url: url.toString() });
  };
  await page.route(/\/catalog\/(items|bundles)\?/, smaller);
  try {
    await signIn(app.tokens.requester);
    const cards = page.getByRole('list', { name: 'Offerings' }).getByRole('heading');
    await page.getByRole('status').getByText(/shown; more match$/).waitFor();
    const first = await cards.allInnerTexts();
    assert.ok(first.length <= 8, `one page of each kind: ${first}`);
    const more = page.getByRole('button', { name: 'Show more' });
    let rounds = 0;
    while ((await more.count()) > 0) {
      const before = await cards.count();
      await more.click();
      await page.waitForFunction((n) => document.querySelectorAll('.cards .card').length > n, before);
      rounds += 1;
      assert.ok(rounds < 10, 'the list ends');
    }
    const all = await cards.allInnerTexts();
    assert.ok(all.length >= 14, `every offering once the list is read: ${all}`);
    assert.equal(new Set(all).size, all.length, `no offering twice: ${all}`);
    assert.ok(all.includes('RDS PostgreSQL database'));
    await page.getByRole('status').getByText(new RegExp(`^${all.length} offerings$`)).waitFor();
    await shot('catalog-paged');
  } finally {
    await page.unroute(/\/catalog\/(items|bundles)\?/, smaller);
  }
});

test('the keyboard reaches everything: skip link, navigation, visible focus', async () => {
  await signIn(app.tokens.requester);
  await page.reload();
  await page.getByRole('heading', { name: 'Service catalog' }).waitFor();
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  assert.ok(await skip.evaluate((el) => el === document.activeElement));
  // The focused skip link is on screen, with a visible outline.
  const box = await skip.boundingBox();
  assert.ok(box && box.x >= 0, 'the skip link shows when focused');
  const outline = await skip.evaluate((el) => getComputedStyle(el).outlineStyle);
  assert.notEqual(outline, 'none');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  assert.equal(focused, 'Catalog');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'My requests' }).waitFor();
});

test('an invalid form shows what is wrong, next to each field', async () => {
  await signIn(app.tokens.requester);
  await open('#/items/rds-postgres');
  await page.getByRole('heading', { name: 'RDS PostgreSQL database' }).waitFor();
  // Defaults from the schema, labels from its titles, order from the uiSchema.
  assert.equal(await page.getByLabel('PostgreSQL version').locator('option:checked').innerText(), '17');
  const labels = await page.locator('.request-form label').allInnerTexts();
  const order = ['Database name', 'environment', 'PostgreSQL version', 'Instance class', 'Storage (GiB)'];
  const positions = order.map((l) => labels.findIndex((x) => x.replace('*', '').trim() === l));
  assert.ok(positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1])), `${labels}`);

  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.locator('.request-form .errors').waitFor();
  const list = await page.locator('.request-form .errors').innerText();
  assert.match(list, /Database name: is required/);
  assert.match(list, /VPC id: is required/);

  await page.getByLabel('Database name').fill('Not A Name');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.getByText('Database name: does not have the expected format').waitFor();

  // Valid in the browser, refused by the API: its violations (JSON pointers into the
  // fields) land next to the field they name. Here the conditional rule: if the
  // environment is prod, Multi-AZ must be on.
  await page.getByLabel('Database name').fill('orders');
  await page.getByLabel('VPC id').fill('vpc-0a1b2c3d');
  const subnets = page.locator('input[id^="root_subnetIds_"]');
  await subnets.nth(0).fill('subnet-0a1b2c3d');
  await subnets.nth(1).fill('subnet-0a1b2c3e');
  await page.getByLabel('environment').selectOption('prod');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.getByRole('alert').filter({ hasText: 'Invalid fields' }).waitFor();
  await page.locator('#root_multiAz__error').getByText('`multiAz` must be true, not false').waitFor();
  await page.locator('.request-form .errors').getByText('multiAz `multiAz` must be true').waitFor();
  assert.match(page.url(), /#\/items\/rds-postgres$/, 'nothing was submitted');
  await shot('item-form-errors');
});

test('a valid request of an automated item completes, live, with its outputs', async () => {
  await signIn(app.tokens.requester);
  await open('#/items/rds-postgres');
  await page.getByLabel('Database name').fill('orders');
  await page.getByLabel('VPC id').fill('vpc-0a1b2c3d');
  // Two subnets at least: the form starts with two empty entries.
  const subnets = page.locator('input[id^="root_subnetIds_"]');
  await subnets.nth(0).fill('subnet-0a1b2c3d');
  await subnets.nth(1).fill('subnet-0a1b2c3e');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.waitForURL(/#\/requests\/[0-9a-f-]+$/);
  await page.locator('.summary').getByText('Completed').waitFor(LONG);
  const outputs = page.getByRole('definition').filter({ hasText: 'orders' });
  assert.ok((await outputs.count()) > 0);
  await page.getByText('sensitive (kept out of the portal)').waitFor();
  const timeline = await page.getByRole('list', { name: 'Timeline' }).innerText();
  assert.match(timeline, /submitted/);
  assert.match(timeline, /completed/);
  await shot('request-automated');
});

test('a manual item: the JIRA ticket is linked, resolved in the sandbox, and the page follows', async () => {
  await signIn(app.tokens.requester);
  await open('#/items/ec2-autoscaling-group');
  await page.getByRole('heading', { name: 'EC2 Auto Scaling group' }).waitFor();
  await page.getByLabel('Group name').fill('web-fleet');
  await page.getByLabel('environment').selectOption('staging');
  await page.getByLabel('Instance type').selectOption('m7i.large');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.waitForURL(/#\/requests\/[0-9a-f-]+$/);
  await page.locator('.summary').getByText('Awaiting fulfillment').waitFor(LONG);
  // The item's service levels: a clock per target, counting.
  const clocks = page.getByRole('table', { name: 'Service level clocks' });
  await clocks.waitFor();
  assert.match(await clocks.innerText(), /First response within 2h 00m[\s\S]*running/);
  assert.match(await clocks.innerText(), /Fulfilment within 1d 0h/);
  const ticket = page.locator('.summary').getByRole('link', { name: /^[A-Z]+-\d+$/ });
  const key = await ticket.innerText();
  assert.match(await ticket.getAttribute('href'), new RegExp(`/browse/${key}$`));
  await shot('request-manual-waiting');

  // The platform team resolves it in (the sandbox's) JIRA, in another tab; this page
  // follows without a reload.
  const jira = await browser.context.newPage();
  await jira.goto(`${app.base}/#/sandbox`);
  await jira.getByRole('button', { name: `Resolve ${key} as done` }).click();
  await jira.getByText(`${key} resolved as Done`).waitFor();
  await jira.screenshot({ path: join(ARTIFACTS, 'sandbox-jira.png'), fullPage: true });
  await jira.close();

  await page.locator('.summary').getByText('Completed').waitFor(LONG);
  const timeline = await page.getByRole('list', { name: 'Timeline' }).innerText();
  assert.match(timeline, /ticket created/);
  assert.match(timeline, /by jira/);
  // Ended: its lead time, with the time a person had it, and both targets met.
  await page.locator('.lead-time').getByText(/with a person/).waitFor(LONG);
  assert.match(await clocks.innerText(), /met[\s\S]*met/);
});

test('insights: the generated history shows what automation saved, in figures and charts', async () => {
  await signIn(app.tokens.admin);
  await open('#/insights');
  await page.getByRole('heading', { name: 'Insights', level: 1 }).waitFor();
  const switches = page.getByRole('table', { name: 'Items switched from manual to automated' });
  await switches.waitFor(LONG);
  const rows = await switches.locator('tbody tr').all();
  assert.equal(rows.length, 4);
  for (const row of rows) {
    const reduction = Number((await row.locator('.reduction').innerText()).replace(' %', ''));
    assert.ok(reduction > 90, `a reduction over 90 %: ${await row.innerText()}`);
  }
  // Each chart is drawn, as SVG, with its caption.
  for (const caption of ['Median lead time in hours by hand and automated', 'Lead time in hours per week', 'Lead time in hours of the slowest items']) {
    const figure = page.locator('figure', { has: page.getByText(caption) });
    await figure.locator('svg.recharts-surface').first().waitFor();
  }
  assert.ok((await page.locator('.recharts-bar-rectangle').count()) >= 8, 'bars for each switched item, before and after');
  const figures = await page.getByRole('table', { name: 'Lead time per item' }).innerText();
  assert.match(figures, /app-parameter/);
  // The weekly chart follows one item.
  await page.getByLabel('Item for the weekly chart').selectOption('app-role');
  await page.getByRole('heading', { name: 'Lead time over time of app-role' }).waitFor();
  await shot('insights');
  // A developer sees only their own requests: none of the generated history.
  await signIn(app.tokens.requester);
  await open('#/insights');
  await page.getByRole('heading', { name: 'Insights', level: 1 }).waitFor();
  await page.waitForLoadState('networkidle');
  assert.equal(await page.getByRole('table', { name: 'Items switched from manual to automated' }).count(), 0);
});

test('a bundle request shows its component graph with each component state', async () => {
  await signIn(app.tokens.requester);
  await open('#/bundles/event-pipeline');
  await page.getByRole('heading', { name: /^Event pipeline/ }).waitFor();
  await page.getByTestId('graph').locator('svg').waitFor(LONG);
  await page.getByLabel('Event name').fill('order-shipped');
  await page.getByLabel('Consuming service').fill('billing');
  await page.getByRole('button', { name: 'Submit request' }).click();
  await page.waitForURL(/#\/requests\/[0-9a-f-]+$/);
  await page.locator('.summary').getByText('Completed').waitFor(LONG);
  for (const component of ['topic', 'queue', 'subscription']) {
    const row = page.locator(`tr[data-component="${component}"]`);
    await row.locator('.status', { hasText: 'Completed' }).waitFor(LONG);
    // The timeline names the component each entry is about, from the entry's own field.
    const entry = page.locator(`.timeline li.event-component_completed[data-component="${component}"]`);
    await entry.locator('.component', { hasText: component }).waitFor(LONG);
  }
  // The drawing colours every node by its state.
  const svg = page.getByTestId('graph').locator('svg');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="graph"] svg .node.completed').length === 3, null, LONG);
  assert.match(await svg.innerHTML(), /subscription/);
  const outputs = await page.getByRole('definition').allInnerTexts();
  assert.ok(outputs.some((o) => o.includes('arn:aws:sns')), `${outputs}`);
  await shot('request-bundle');
});

test('resources: the list, a resource with its history, verified on demand', async () => {
  await signIn(app.tokens.requester);
  await open('#/resources');
  await page.getByRole('heading', { name: 'Resources' }).waitFor();
  const rows = page.locator('table.list tbody tr');
  await rows.first().waitFor();
  const text = await page.locator('table.list').innerText();
  assert.match(text, /rds-postgres/);
  assert.match(text, /event-pipeline/);
  assert.match(text, /Ready/);
  await shot('resources');
  // The status filter: none of them has drifted; all are ready.
  await page.getByLabel('Status').selectOption('drifted');
  await page.getByText('No resources with status Drifted.').waitFor();
  await page.getByLabel('Status').selectOption('ready');
  await rows.filter({ hasText: 'rds-postgres' }).first().waitFor();

  await rows.filter({ hasText: 'rds-postgres' }).getByRole('link').click();
  await page.getByRole('heading', { name: /rds-postgres/ }).waitFor();
  await page.getByRole('list', { name: 'History' }).getByText('provisioned').waitFor();
  await page.getByRole('button', { name: 'Verify now' }).click();
  await page.getByText(/^Verification:/).waitFor();
  await page.getByRole('status').filter({ hasText: 'Verification' }).getByText(/Matches|Not verified/).waitFor();

  // A day-2 change is planned before it is applied.
  await page.getByLabel('Storage (GiB)').fill('200');
  await page.getByRole('button', { name: 'Plan change' }).click();
  await page.getByRole('heading', { name: 'Change plan' }).waitFor();
  const plan = await page.locator('.plan').innerText();
  assert.match(plan, /storageGb/);
  assert.match(plan, /100/);
  assert.match(plan, /200/);
  await shot('resource-change-plan');
  await page.getByRole('button', { name: 'Apply change' }).click();
  await page.waitForURL(/#\/requests\/[0-9a-f-]+$/);
  await page.getByRole('heading', { name: /Update of/ }).waitFor();
  await page.locator('.summary').getByText('Completed').waitFor(LONG);
});

test('approvals: a prod database waits; the database team approves it on the Approvals page', async () => {
  // Alice asks for a prod database through the API; it needs the database team.
  const response = await fetch(`${app.base}/requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${app.tokens.requester}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      item: 'rds-postgres',
      fields: {
        databaseName: 'ledger',
        environment: 'prod',
        instanceClass: 'db.r7g.large',
        multiAz: true,
        vpcId: 'vpc-0a1b2c3d',
        subnetIds: ['subnet-0a1b2c3d', 'subnet-0a1b2c3e'],
      },
    }),
  });
  const created = await response.json();
  assert.equal(response.status, 202, JSON.stringify(created));
  const { id } = created;

  await signIn(app.tokens.dba);
  await open('#/approvals');
  const card = page.locator('.card').filter({ hasText: 'Production database / Database team' });
  await card.waitFor(LONG);
  assert.match(await card.innerText(), /Requested by alice/);
  await shot('approvals');
  await card.getByLabel('Comment (required to deny)').fill('capacity checked');
  await card.getByRole('button', { name: 'Approve' }).click();
  await page.getByText('Nothing awaits your approval.').waitFor(LONG);

  // The request page shows the stage and who approved it, and the request goes on.
  await signIn(app.tokens.requester);
  await open(`#/requests/${id}`);
  const stages = page.getByRole('region', { name: 'Approvals' });
  await stages.getByText('dana approved: capacity checked').waitFor(LONG);
  await page.locator('.summary').getByText('Completed').waitFor(LONG);
  await page.getByLabel('Add a comment').fill('thanks, dana');
  await page.getByRole('button', { name: 'Comment' }).click();
  await page.getByRole('list', { name: 'Timeline' }).getByText('thanks, dana').waitFor(LONG);
  await shot('request-approved');
});

test('an offering shows the approvals and the change calendar a request may meet', async () => {
  await signIn(app.tokens.requester);
  await open('#/bundles/app-stack');
  const governance = page.getByRole('region', { name: 'Approvals and change calendar' });
  await governance.waitFor();
  const text = await governance.innerText();
  assert.match(text, /Production stack when environment is "prod": Platform team, then Security review must approve/);
  assert.match(text, /Year-end freeze when environment is "prod" \(Europe\/Paris\)/);
  assert.match(text, /Year-end 2026 from 2026-12-18 18:00 to 2027-01-04 08:00 \(requests wait\)/);
  await shot('offering-governance');
});

test('the main pages have no serious accessibility violations', async () => {
  await signIn(app.tokens.requester);
  for (const hash of ['#/', '#/items/rds-postgres', '#/bundles/app-stack', '#/bundles/event-pipeline', '#/requests', '#/resources', '#/sandbox', '#/approvals', '#/insights']) {
    await open(hash);
    await page.locator('main h1').waitFor();
    await page.waitForLoadState('networkidle');
    const violations = await accessibilityViolations();
    assert.deepEqual(violations, [], `${hash}: ${JSON.stringify(violations, null, 2)}`);
  }
});

test('no script errors were logged by any page', () => {
  // The browser's own notes of the API's 401 and 422 answers, which the tests asked
  // for, are not script errors.
  const unexpected = consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (401|422)/.test(e));
  assert.deepEqual(unexpected, []);
});
