// The orchestrator's REST API, as the portal uses it. Every call carries the signed-in
// user's bearer token; errors arrive as RFC 9457 problems and are thrown as ApiError.

const TOKEN_KEY = 'orchestrator.token';

let settings = { apiUrl: '', sandbox: false };

/** Reads `config.json` (served by local mode, uploaded beside the files on AWS). */
export async function loadSettings() {
  try {
    const response = await fetch('./config.json', { headers: { accept: 'application/json' } });
    if (response.ok) {
      settings = { ...settings, ...(await response.json()) };
    }
  } catch {
    // No configuration: the API is on this origin.
  }
  settings.apiUrl = (settings.apiUrl || '').replace(/\/$/, '');
  return settings;
}

export function getSettings() {
  return settings;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `The API answered ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
  } else {
    localStorage.removeItem(TOKEN_KEY);
  }
}

/** The claims of a JWT (not verified here: the API verifies every call). */
export function claims(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      atob(payload)
        .split('')
        .map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
        .join(''),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}

export async function api(path, { method = 'GET', body, token = getToken(), headers = {} } = {}) {
  const init = { method, headers: { accept: 'application/json', ...headers } };
  if (token) {
    init.headers.authorization = `Bearer ${token}`;
  }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${settings.apiUrl}${path}`, init);
  } catch (e) {
    throw new ApiError(0, { title: 'The orchestrator cannot be reached', detail: String(e.message || e) });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, data);
  }
  return data;
}

export function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return entries.length ? `?${new URLSearchParams(entries)}` : '';
}

export const TERMINAL = new Set(['completed', 'failed', 'rejected', 'cancelled']);
