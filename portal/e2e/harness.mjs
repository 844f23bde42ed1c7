// Starts the orchestrator in local mode (sandbox on, example catalog, fresh data
// directory, port 0) and headless Chromium, for the portal's end-to-end tests.

import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');
export const ARTIFACTS = resolve(here, 'artifacts');

function binary() {
  if (process.env.ORCHESTRATOR_BIN) return process.env.ORCHESTRATOR_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(process.env.HOME, '.cache', 'orchestrator-target');
  return join(target, 'debug', 'orchestrator');
}

/**
 * `orchestrator serve --sandbox` on a free port; resolves once it listens. Its AWS actions
 * (the example catalog's CloudFormation, Secrets Manager and Parameter Store items) reach
 * the moto server `scripts/test` runs (`MOTO_ENDPOINT`), as `scripts/run`'s sandbox does.
 */
export async function startOrchestrator() {
  const data = mkdtempSync(join(tmpdir(), 'portal-e2e-'));
  const bin = binary();
  // The generated history `scripts/run` loads, for the Insights page.
  execFileSync(bin, ['sandbox', 'history', '--catalog', join(ROOT, 'examples', 'catalog'), '--data', data], { cwd: ROOT });
  const child = spawn(
    bin,
    ['serve', '--sandbox', '--catalog', join(ROOT, 'examples', 'catalog'), '--data', data, '--listen', '127.0.0.1:0'],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ORCHESTRATOR_PORTAL_DIR: join(ROOT, 'portal', 'dist'),
        ORCHESTRATOR_LOG: 'info',
        ...(process.env.MOTO_ENDPOINT ? { ORCHESTRATOR_AWS_ENDPOINT_URL: process.env.MOTO_ENDPOINT } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the orchestrator did not start:\n${log}`)), 30000);
    const seen = (chunk) => {
      log += chunk;
      const m = log.match(/"message":"orchestrator listening","addr":"([^"]+)"/);
      if (m) {
        clearTimeout(timer);
        ok(`http://${m[1]}`);
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => fail(new Error(`the orchestrator exited (${code}):\n${log}`)));
  });
  const token = (sub, groups) =>
    execFileSync(bin, ['dev-token', '--sub', sub, '--email', `${sub}@example.com`, '--groups', groups, '--data', data], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
  return {
    base,
    tokens: {
      requester: token('alice', 'developers'),
      admin: token('carol', 'platform-admins'),
      dba: token('dana', 'database'),
    },
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => {
        if (child.exitCode !== null) ok();
        else child.on('exit', ok);
      });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with a fresh profile (no downloads: the machines are offline). */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'portal-chromium-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async stop() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
