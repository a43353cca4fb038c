// The web dashboard, driven in headless Chromium (Debian's /usr/bin/chromium)
// by playwright-core, against the real server binary that
// infrastructure/tests/dashboard.rs starts. It follows a newcomer from an
// empty server to a published, rolled-out and rolled-back update, then
// every other page and action, and saves screenshots of the main pages.
//
// Environment: BASE_URL (the server), EUS_BIN (the binary, also the CLI),
// FIXTURES (optional, default: the repository's tests/fixtures), SCREENSHOT_DIR,
// CHROMIUM (optional path).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const BASE_URL = must('BASE_URL');
const EUS_BIN = must('EUS_BIN');
const FIXTURES = process.env.FIXTURES || fileURLToPath(new URL('../fixtures', import.meta.url));
const SHOTS = must('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PAGE_BUDGET = 100 * 1024;

function must(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run through cargo test -p expo-updates-server --test dashboard)`);
  return value;
}

let browser;
let context;
let page;
/** What the browser refused under the Content-Security-Policy. */
const cspViolations = [];
/** Sizes of every HTML page the tests loaded, by path. */
const pageSizes = new Map();
const state = {};

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  context = await browser.newContext({ baseURL: BASE_URL, viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
  page = await context.newPage();
  page.setDefaultTimeout(5000);
  page.on('response', async (response) => {
    const type = response.headers()['content-type'] || '';
    if (type.startsWith('text/html')) {
      const body = await response.body().catch(() => null);
      if (body) pageSizes.set(new URL(response.url()).pathname, body.length);
    }
  });
  page.on('pageerror', (error) => { throw error; });
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) cspViolations.push(`${page.url()}: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close();
});

async function shot(name, target = page) {
  await target.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function flash() {
  const message = page.locator('.flash').first();
  if (!(await message.count())) {
    const main = (await page.locator('main').textContent().catch(() => '')).slice(0, 500);
    throw new Error(`no flash message on ${page.url()}: ${main}`);
  }
  return (await message.textContent()).trim();
}

/** Clicks the confirmation page's button, after checking what it names. */
async function confirmThat(title, ...mentions) {
  await page.getByRole('heading', { name: title }).waitFor().catch(async (error) => {
    const main = (await page.locator('main').textContent().catch(() => '')).slice(0, 600);
    throw new Error(`no confirmation "${title}" on ${page.url()}: ${main}`, { cause: error });
  });
  const changes = await page.locator('.confirm ul').textContent();
  for (const mention of mentions) {
    assert.ok(changes.includes(mention), `the confirmation "${title}" should mention ${mention}: ${changes}`);
  }
  await page.locator('.confirm button[type=submit]').click();
}

function tab(name) {
  return page.locator('nav.tabs').getByRole('link', { name, exact: true });
}

function card(message) {
  return page.locator('article.update', { has: page.getByRole('heading', { name: message, exact: true }) }).first();
}

async function checkForm(platform, clientId, extra = {}) {
  const response = await fetch(`${BASE_URL}/api/updates/${state.projectId}/manifest`, {
    headers: {
      'expo-platform': platform,
      'expo-runtime-version': '1.0.0',
      'expo-protocol-version': '1',
      accept: 'multipart/mixed',
      'eas-client-id': clientId,
      ...extra,
    },
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

function launchUrl(body) {
  const match = body.match(/"launchAsset":\{[^}]*?"url":"([^"]+)"/);
  return match ? match[1] : null;
}

function cli(args, env) {
  const home = mkdtempSync(path.join(tmpdir(), 'eus-cli-'));
  return execFileSync(EUS_BIN, args, {
    env: { PATH: process.env.PATH, HOME: home, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The publish command the Setup page shows, run as a user would: with
 * the key's secret in place of the placeholder and the fixture export as
 * `dist` (the `npx expo export` line made it; the fixture is its output). */
function runShownPublishCommand(command, exportDir, message) {
  const env = {};
  let publish = null;
  for (const line of command.split('\n')) {
    const exported = line.match(/^export (\w+)=(.*)$/);
    if (exported) env[exported[1]] = exported[2];
    if (line.startsWith('expo-updates-server publish')) publish = line;
  }
  assert.ok(publish, `the shown command has a publish line: ${command}`);
  assert.equal(env.EXPO_UPDATES_URL, BASE_URL);
  assert.equal(env.EXPO_UPDATES_PROJECT, state.projectId);
  assert.match(env.EXPO_UPDATES_API_KEY, /<.*>/, 'the key is a placeholder, never a secret');
  env.EXPO_UPDATES_API_KEY = state.secret;
  const args = publish
    .replace(/^expo-updates-server /, '')
    .match(/"[^"]*"|\S+/g)
    .map((arg) => arg.replace(/^"|"$/g, ''))
    .map((arg) => (arg === 'dist' ? exportDir : arg));
  const messageAt = args.indexOf('--message');
  args[messageAt + 1] = message;
  return cli(args, env);
}

test('a signed-out visitor is sent to sign in', async () => {
  await page.goto('/');
  assert.equal(new URL(page.url()).pathname, '/dashboard/login');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot('01-sign-in');
});

test('a newcomer registers and sees what to do first', async () => {
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Email').fill('alice@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Create your first project' }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((cookie) => cookie.name === 'eus_session');
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  await shot('02-projects-empty');
});

test('signing out, a wrong password and signing back in', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.goto('/dashboard');
  assert.equal(new URL(page.url()).pathname, '/dashboard/login', 'signed out means signed out');
  await page.getByLabel('Username or email').fill('alice');
  await page.getByLabel('Password').fill('wrong password');
  const [refused] = await Promise.all([
    page.waitForResponse((response) => response.url().endsWith('/dashboard/login') && response.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(refused.status(), 401);
  await page.getByRole('alert').waitFor();
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
});

test('creating a project leads to its setup: manifest URL, app.json and the publish command', async () => {
  await page.getByLabel('Name', { exact: true }).fill('Demo App');
  await page.getByLabel('Slug').fill('demo-app');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { name: 'Manifest URL' }).waitFor();
  assert.match(await flash(), /Project Demo App created/);
  state.projectId = page.url().match(/projects\/([^/]+)\/setup/)[1];
  const manifestUrl = (await page.locator('#manifest-url').textContent()).trim();
  assert.equal(manifestUrl, `${BASE_URL}/api/updates/${state.projectId}/manifest`);
  const snippet = JSON.parse(await page.locator('#app-json').textContent());
  assert.equal(snippet.expo.updates.url, manifestUrl);
  assert.equal(snippet.expo.updates.requestHeaders['expo-channel-name'], 'main');
  assert.equal(snippet.expo.updates.codeSigningMetadata, undefined, 'no signing key yet');
  state.publishCommand = (await page.locator('#publish-command').textContent()).trim();
  await shot('03-setup');
});

test('renaming the project', async () => {
  await page.getByLabel('Name', { exact: true }).fill('Demo');
  await page.getByRole('button', { name: 'Rename' }).click();
  assert.match(await flash(), /renamed to Demo/);
  assert.equal((await page.locator('h1').textContent()).trim(), 'Demo');
});

test('patches from the embedded bundle: off by default, and the owner switches them', async () => {
  await page.goto(`/dashboard/projects/${state.projectId}/setup`);
  const embedded = () => page.getByRole('region', { name: 'Patches from the embedded bundle' });
  assert.match(await embedded().textContent(), /Off: devices still running/);
  assert.match(await embedded().textContent(), /No embedded bundles uploaded/);
  await embedded().getByRole('button', { name: 'Turn on' }).click();
  assert.match(await flash(), /Patches from embedded bundles are on/);
  assert.match(await embedded().textContent(), /On: devices still running/);
  await embedded().getByRole('button', { name: 'Turn off' }).click();
  assert.match(await flash(), /Patches from embedded bundles are off/);
});

test('an empty project says how to publish', async () => {
  await tab('Updates').click();
  await page.getByRole('heading', { name: 'No updates yet' }).waitFor();
  assert.match(await page.locator('#empty-publish-command').textContent(), /expo-updates-server publish/);
  await page.getByRole('link', { name: 'Create an API key' }).click();
  await page.getByRole('heading', { name: 'No API keys yet' }).waitFor();
});

test('an API key: its secret is shown once, with a copy button', async () => {
  await page.getByLabel('Name', { exact: true }).fill('ci');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.locator('#new-key-secret').textContent()).trim();
  assert.match(secret, /^eus_/);
  state.secret = secret;
  await page.locator('[data-copy="#new-key-secret"]').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot('04-key-created');
  await page.goto(`/dashboard/projects/${state.projectId}/keys`);
  assert.equal(await page.locator('#new-key-secret').count(), 0, 'the secret is not shown again');
  assert.ok(!(await page.content()).includes(secret));
  assert.equal(await page.locator('tr[data-key="ci"]').count(), 1);
});

test('renaming and revoking keys', async () => {
  await page.locator('tr[data-key="ci"] input[type=text]').fill('pipeline');
  await page.locator('tr[data-key="ci"]').getByRole('button', { name: 'Rename' }).click();
  assert.match(await flash(), /renamed to pipeline/);
  await page.getByLabel('Name', { exact: true }).fill('old');
  await page.getByRole('button', { name: 'Create key' }).click();
  const oldSecret = (await page.locator('#new-key-secret').textContent()).trim();
  await page.locator('tr[data-key="old"]').getByRole('button', { name: 'Revoke' }).click();
  await confirmThat('Revoke this API key?', '“old” stops working');
  assert.match(await flash(), /revoked/);
  assert.equal(await page.locator('tr[data-key="old"]').count(), 0);
  const refused = await fetch(`${BASE_URL}/api/updates/${state.projectId}/branches`, {
    headers: { authorization: `Bearer ${oldSecret}` },
  });
  assert.equal(refused.status, 401, 'a revoked key stops working at once');
});

test('publishing with the shown CLI command makes the update appear', async () => {
  await page.goto(`/dashboard/projects/${state.projectId}`);
  await page.getByRole('heading', { name: 'No updates yet' }).waitFor();
  const output = runShownPublishCommand(state.publishCommand, path.join(FIXTURES, 'expo-sdk56-export-v1'), 'First update');
  assert.match(output, /main/);
  // No reload: the empty timeline looks for the first update by itself.
  await card('First update').waitFor({ timeout: 15000 });
  const meta = await card('First update').locator('.meta').textContent();
  assert.match(meta, /by pipeline/, 'the publisher is the key');
  assert.match(meta, /android/);
  assert.match(meta, /ios/);
  assert.match(await card('First update').locator('.badge').textContent(), /rollout 100 %/);
});

test('insights: checks, devices and downloads, with a chart over days', async () => {
  const clients = Array.from({ length: 5 }, () => randomUUID());
  for (const client of clients) {
    const answer = await checkForm('ios', client);
    assert.equal(answer.status, 200);
    state.v1Launch = launchUrl(answer.body);
  }
  assert.ok(state.v1Launch, 'the manifest names a launch asset');
  const bundle = await fetch(state.v1Launch);
  assert.equal(bundle.status, 200);
  await bundle.arrayBuffer();
  let checks = 0;
  for (let attempt = 0; attempt < 50 && checks < 5; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    await page.reload();
    checks = Number(await card('First update').locator('[data-stat=checks]').textContent());
  }
  assert.equal(checks, 5);
  assert.equal(Number(await card('First update').locator('[data-stat=devices]').textContent()), 5);
  assert.equal(Number(await card('First update').locator('[data-stat=downloads]').textContent()), 1);
  assert.equal(await card('First update').locator('svg.chart rect').count(), 1);
  assert.match(await card('First update').locator('svg.chart').getAttribute('aria-label'), /Checks per day: \d{4}-\d\d-\d\d: 5/);
});

test('roll out a new update to 10 %, raise it, and roll back', async () => {
  runShownPublishCommand(state.publishCommand, path.join(FIXTURES, 'expo-sdk56-export-v2'), 'Second update');
  await page.reload();
  await card('Second update').waitFor();
  state.v2Launch = launchUrl((await checkForm('ios', randomUUID())).body);
  assert.notEqual(state.v2Launch, state.v1Launch);

  // 10 %
  await card('Second update').locator('input[type=range]').fill('10');
  assert.equal((await card('Second update').locator('output').textContent()).trim(), '10 %');
  await card('Second update').getByRole('button', { name: 'Set rollout' }).click();
  await confirmThat('Change the rollout?', '“Second update”', 'from 100 % to 10 %');
  assert.match(await flash(), /is now 10 %/);
  assert.match(await card('Second update').locator('.badge').textContent(), /rollout 10 %/);
  await shot('05-updates-rollout');
  const share = async () => {
    let hits = 0;
    for (let i = 0; i < 300; i += 1) {
      if (launchUrl((await checkForm('ios', randomUUID())).body) === state.v2Launch) hits += 1;
    }
    return hits / 300;
  };
  const atTen = await share();
  assert.ok(atTen > 0.03 && atTen < 0.2, `about 10 % of devices get the second update: ${atTen}`);

  // Raise to 60 %
  await card('Second update').locator('input[type=range]').fill('60');
  await card('Second update').getByRole('button', { name: 'Set rollout' }).click();
  await confirmThat('Change the rollout?', 'from 10 % to 60 %');
  assert.match(await card('Second update').locator('.badge').textContent(), /rollout 60 %/);
  const atSixty = await share();
  assert.ok(atSixty > 0.45 && atSixty < 0.75, `about 60 % now: ${atSixty}`);

  // Halt
  await card('Second update').getByRole('button', { name: 'Halt' }).click();
  await confirmThat('Halt this rollout?', 'from 60 % to 0 %');
  assert.match(await card('Second update').locator('.badge').textContent(), /halted/);
  assert.equal(await share(), 0);

  // Roll back to the first update by republishing it.
  await card('First update').getByRole('button', { name: 'Republish (roll back to this)' }).click();
  await confirmThat('Republish this update?', '“First update”', 'branch main');
  assert.match(await flash(), /Republished as/);
  const newest = page.locator('article.update').first();
  assert.match(await newest.locator('.meta').textContent(), /republished from/);
  assert.equal(launchUrl((await checkForm('android', randomUUID())).body)?.length > 0, true);
});

test('bundle patches: the second update lists a patch from the first bundle, against the full download', async () => {
  await page.goto(`/dashboard/projects/${state.projectId}`);
  await card('Second update').getByRole('link', { name: 'bundle patches' }).click();
  await page.getByRole('heading', { name: /Bundle patches of update/ }).waitFor();
  // Computed in the background within seconds of the publish.
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if ((await page.locator('tr[data-state=ready]').count()) === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 300));
    await page.reload();
  }
  assert.equal(await page.locator('tr[data-state=ready]').count(), 2, 'one patch per platform');
  for (const platform of ['android', 'ios']) {
    const section = page.getByRole('region', { name: `${platform} bundle patches` });
    assert.match(await section.locator('.meta').textContent(), /full download \d/);
    const row = section.locator('tr[data-state=ready]');
    assert.match(await row.textContent(), /served/);
    const share = Number((await row.locator('td').nth(3).textContent()).replace('%', '').trim());
    assert.ok(share > 0 && share <= 50, `a patch of ${share} % of the full download`);
  }
  await page.getByRole('link', { name: 'Back to the updates' }).click();
  await card('Second update').waitFor();
});

test('roll back to the embedded update', async () => {
  await page.locator('section.timeline').first().getByRole('button', { name: 'Roll back to embedded…' }).click();
  await confirmThat('Roll back to the embedded update?', 'branch main', 'runtime version 1.0.0');
  assert.match(await flash(), /rolls devices back to their embedded update/);
  await page.getByRole('heading', { name: 'Roll back to embedded', exact: true }).first().waitFor();
  const answer = await checkForm('ios', randomUUID());
  assert.equal(answer.status, 200);
  assert.match(answer.body, /rollBackToEmbedded/);
});

test('filtering the timeline by platform and branch', async () => {
  await page.getByLabel('Platform', { exact: true }).selectOption('android');
  await page.getByRole('button', { name: 'Filter' }).click();
  assert.match(page.url(), /platform=android/);
  const metas = await page.locator('article.update .meta').allTextContents();
  assert.ok(metas.length >= 4);
  for (const meta of metas) assert.match(meta, /android/);
  await page.getByLabel('Branch', { exact: true }).selectOption('main');
  await page.getByRole('button', { name: 'Filter' }).click();
  assert.match(page.url(), /branch=main/);
  assert.equal(await page.locator('section.timeline h2').count(), 1);
});

test('deleting an update', async () => {
  await page.goto(`/dashboard/projects/${state.projectId}`);
  await card('Second update').getByRole('button', { name: 'Delete' }).click();
  await confirmThat('Delete this update?', '“Second update”', 'cannot be undone');
  assert.match(await flash(), /deleted/);
  assert.equal(await card('Second update').count(), 0);
});

test('channels: point one at a branch, split it, end the split, remove it', async () => {
  await tab('Channels').click();
  await page.getByLabel('Channel', { exact: true }).first().fill('production');
  await page.locator('#point-branch').fill('main');
  await page.getByRole('button', { name: 'Point channel' }).click();
  await confirmThat('Change this channel?', 'Channel production now serves branch production', 'serves branch main');
  assert.match(await page.locator('tr[data-channel=production]').textContent(), /branch main/);

  await page.locator('#split-channel').fill('production');
  await page.locator('#split-branch').fill('staging');
  await page.locator('#split-percentage').fill('30');
  await page.getByRole('button', { name: 'Split channel' }).click();
  await confirmThat('Change this channel?', 'branch staging for 30 % of devices, branch main for the rest');
  assert.match(await page.locator('tr[data-channel=production]').textContent(), /branch staging for 30 %/);
  await shot('06-channels');

  await page.locator('tr[data-channel=production]').getByRole('button', { name: 'End split' }).click();
  await confirmThat('End this split?', 'every device on it gets branch main');
  assert.doesNotMatch(await page.locator('tr[data-channel=production]').textContent(), /staging/);

  await tab('Setup').click();
  await page.getByLabel('Channel the build listens to').selectOption('production');
  await page.getByRole('button', { name: 'Show' }).click();
  const snippet = JSON.parse(await page.locator('#app-json').textContent());
  assert.equal(snippet.expo.updates.requestHeaders['expo-channel-name'], 'production');
  assert.match(await page.locator('#publish-command').textContent(), /--branch main /, 'a mapped channel publishes to the branch it serves');
  await tab('Channels').click();

  await page.locator('tr[data-channel=production]').getByRole('button', { name: 'Remove mapping' }).click();
  await confirmThat("Remove this channel's mapping?", 'serves branch production');
  assert.equal(await page.locator('tr[data-channel=production]').count(), 0);
});

test('members: add by username, change the role, remove; others see nothing', async () => {
  const bobContext = await browser.newContext({ baseURL: BASE_URL });
  const bob = await bobContext.newPage();
  await bob.goto('/dashboard/register');
  await bob.getByLabel('Username').fill('bob');
  await bob.getByLabel('Email').fill('bob@example.com');
  await bob.getByLabel('Password').fill('another good password');
  await bob.getByRole('button', { name: 'Create account' }).click();
  await bob.getByRole('heading', { name: 'Create your first project' }).waitFor();
  const stranger = await bob.goto(`/dashboard/projects/${state.projectId}`);
  const nowhere = await bob.goto(`/dashboard/projects/${randomUUID()}`);
  assert.ok([403, 404].includes(stranger.status()), 'a non-member cannot see the project');
  assert.equal(stranger.status(), nowhere.status(), 'nor tell it exists');
  assert.ok(!(await bob.content()).includes('Demo'));

  await tab('Members').click();
  await page.getByLabel('Username or email').fill('bob');
  await page.getByRole('button', { name: 'Add member' }).click();
  assert.match(await flash(), /bob added as member/);
  const member = await bob.goto(`/dashboard/projects/${state.projectId}`);
  assert.equal(member.status(), 200, 'a member sees it');

  await page.locator('tr[data-member=bob] select').selectOption('owner');
  await page.locator('tr[data-member=bob]').getByRole('button', { name: 'Change role' }).click();
  assert.match(await flash(), /Role changed to owner/);
  await shot('07-members');

  await page.locator('tr[data-member=bob]').getByRole('button', { name: 'Remove' }).click();
  await confirmThat('Remove this member?', 'bob loses access');
  assert.equal(await page.locator('tr[data-member=bob]').count(), 0);
  const removed = await bob.goto(`/dashboard/projects/${state.projectId}`);
  assert.equal(removed.status(), stranger.status(), 'a removed member sees nothing');
  await bobContext.close();
});

test('code signing: generate, download the certificate, rotate, upload, remove', async () => {
  await tab('Code signing').click();
  await page.getByRole('heading', { name: /not signed with its own key/ }).waitFor();
  await page.getByRole('button', { name: 'Generate key' }).click();
  assert.match(await flash(), /Key “main” generated/);
  assert.match(await page.locator('tr[data-signing-key=main]').textContent(), /default/);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('tr[data-signing-key=main]').getByRole('link', { name: 'Download certificate' }).click(),
  ]);
  const certificate = readFileSync(await download.path(), 'utf8');
  assert.match(certificate, /^-----BEGIN CERTIFICATE-----/);
  assert.equal(download.suggestedFilename(), 'main-certificate.pem');

  await tab('Setup').click();
  const snippet = JSON.parse(await page.locator('#app-json').textContent());
  assert.deepEqual(snippet.expo.updates.codeSigningMetadata, { keyid: 'main', alg: 'rsa-v1_5-sha256' });

  await tab('Code signing').click();
  await page.locator('#generate-key-id').fill('next');
  await page.getByRole('button', { name: 'Generate new key' }).click();
  await confirmThat('Rotate to a new signing key?', 'New key next signs for every app that names no key id, instead of main', 'Key main keeps signing');
  assert.match(await page.locator('tr[data-signing-key=next]').textContent(), /default/);
  const signed = await checkForm('ios', randomUUID(), { 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' });
  assert.match(signed.body, /expo-signature: .*keyid="main"/, 'the old key still signs for apps that ask for it');

  await page.locator('#upload-key-id').fill('uploaded');
  await page.locator('#upload-key-file').setInputFiles(path.join(FIXTURES, 'code-signing/private-key.pem'));
  await page.locator('#upload-cert-file').setInputFiles(path.join(FIXTURES, 'code-signing/certificate.pem'));
  await page.waitForFunction(() => document.getElementById('upload-certificate').value.includes('BEGIN CERTIFICATE'));
  await page.getByRole('button', { name: 'Upload key' }).click();
  assert.match(await flash(), /Key “uploaded” uploaded/);
  await shot('08-code-signing');

  await page.locator('tr[data-signing-key=main]').getByRole('button', { name: 'Remove' }).click();
  await confirmThat('Remove this signing key?', 'Key main is deleted');
  assert.equal(await page.locator('tr[data-signing-key=main]').count(), 0);
});

test('the audit log tells what happened', async () => {
  await tab('Audit log').click();
  const actions = await page.locator('tr[data-action]').evaluateAll((rows) => rows.map((row) => row.dataset.action));
  for (const action of ['project.create', 'key.create', 'key.revoke', 'update.publish', 'update.rollout', 'update.republish', 'update.rollback', 'update.delete', 'channel.update', 'member.add', 'member.remove']) {
    assert.ok(actions.includes(action), `the audit log records ${action}: ${actions.join(', ')}`);
  }
  assert.ok(!(await page.content()).includes(state.secret), 'no secret in the audit log');
  await shot('09-audit-log');
});

test('older updates and older audit events are a page away', async () => {
  const history = await fetch(`${BASE_URL}/api/updates/${state.projectId}/updates?limit=10`, {
    headers: { authorization: `Bearer ${state.secret}` },
  }).then((response) => response.json());
  const source = history.updates.find((update) => update.kind === 'update').id;
  // 30 more publishes, and as many audit events: more than a page of each.
  for (let i = 0; i < 30; i += 1) {
    const response = await fetch(`${BASE_URL}/api/updates/${state.projectId}/updates/${source}/republish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${state.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: `Republish ${i}` }),
    });
    assert.equal(response.status, 201);
  }
  await page.goto(`/dashboard/projects/${state.projectId}`);
  const newest = await page.locator('article.update').evaluateAll((cards) => cards.map((card) => card.dataset.updateId));
  assert.equal(newest.length, 20);
  await page.getByRole('link', { name: 'Older updates' }).click();
  assert.match(page.url(), /cursor=/);
  const older = await page.locator('article.update').evaluateAll((cards) => cards.map((card) => card.dataset.updateId));
  assert.ok(older.length > 0);
  assert.deepEqual(older.filter((id) => newest.includes(id)), [], 'no update on both pages');

  await tab('Audit log').click();
  assert.equal(await page.locator('tr[data-action]').count(), 50);
  await page.getByRole('link', { name: 'Older events' }).click();
  assert.ok((await page.locator('tr[data-action]').count()) > 0);
});

test('forms without the session token or from another site are refused', async () => {
  const url = `/dashboard/projects/${state.projectId}/keys`;
  const noToken = await page.request.post(url, { form: { name: 'forged' } });
  assert.equal(noToken.status(), 403);
  const wrongToken = await page.request.post(url, { form: { name: 'forged', csrf: 'x' } });
  assert.equal(wrongToken.status(), 403);
  const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
  const crossSite = await page.request.post(url, {
    form: { name: 'forged', csrf },
    headers: { origin: 'https://evil.example' },
  });
  assert.equal(crossSite.status(), 403);
  await page.goto(url);
  assert.equal(await page.locator('tr[data-key="forged"]').count(), 0);
});

test('every page is accessible, small and fits a phone', async () => {
  const pages = ['', '/setup', '/channels', '/members', '/keys', '/signing-keys', '/audit'].map(
    (tab) => `/dashboard/projects/${state.projectId}${tab}`,
  );
  pages.unshift('/dashboard');
  for (const url of pages) {
    const response = await page.goto(url);
    assert.equal(response.status(), 200, url);
    const headers = response.headers();
    assert.match(headers['content-security-policy'], /default-src 'none'/);
    assert.equal(headers['x-frame-options'], 'DENY');
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter((field) => !(field.labels?.length || field.getAttribute('aria-label')))
        .map((field) => field.outerHTML),
    );
    assert.deepEqual(unlabelled, [], `${url}: every field has a label`);
    const buttons = await page.evaluate(() =>
      [...document.querySelectorAll('button, a')].filter((el) => !el.textContent.trim() && !el.getAttribute('aria-label')).length,
    );
    assert.equal(buttons, 0, `${url}: every button and link has a name`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', `${url}: the first Tab reaches the skip link`);
  }
  await page.setViewportSize({ width: 375, height: 800 });
  for (const url of pages) {
    await page.goto(url);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${url} fits a 375 px phone (overflows by ${overflow} px)`);
  }
  await page.goto(pages[1]);
  await shot('10-updates-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
  for (const [url, size] of pageSizes) {
    assert.ok(size < PAGE_BUDGET, `${url} is ${size} bytes, over 100 KB`);
  }
  console.log(`page sizes (bytes): ${JSON.stringify(Object.fromEntries(pageSizes))}`);
  assert.deepEqual(cspViolations, [], 'nothing on any page was blocked by the Content-Security-Policy');
});
