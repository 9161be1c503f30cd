// The API client: bearer token on every call, RFC 9457 problems turned into errors that name their fields or policy
// rules, Retry-After read, and downloads (CSV) saved through a blob. Tokens are never logged.

let tokenSource = async () => null;
let onUnauthorized = () => {};

export function configure({ token, unauthorized }) {
  tokenSource = token;
  onUnauthorized = unauthorized;
}

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }

  /** Field problems (400): [{field, detail}]. */
  get fieldErrors() {
    return (this.problem.errors || []).filter((e) => e.field);
  }

  /** Policy problems (403 urn:jit:problem:policy): [{rule, detail}]. */
  get ruleErrors() {
    return (this.problem.errors || []).filter((e) => e.rule);
  }

  get kind() {
    return (this.problem.type || "").replace("urn:jit:problem:", "");
  }
}

/** Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(headers) {
  const value = headers.get("Retry-After");
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

async function send(method, path, { body, query, headers = {}, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const token = await tokenSource();
  const init = { method, headers: { Accept: "application/json", ...headers }, signal, cache: "no-store" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 401) onUnauthorized();
  return response;
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return { title: `HTTP ${response.status}`, detail: (await response.text()).slice(0, 300) };
}

/** A JSON call: {status, data, headers, retryAfter}; ApiError when the status is not 2xx. */
export async function api(method, path, options = {}) {
  const response = await send(method, path, options);
  const retryAfter = retryAfterSeconds(response.headers);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), retryAfter);
  const type = response.headers.get("Content-Type") || "";
  let data = null;
  if (response.status !== 204) data = type.includes("json") ? await response.json() : await response.text();
  return { status: response.status, data, headers: response.headers, retryAfter };
}

/** A call whose answer is text (NDJSON). */
export async function apiText(path, options = {}) {
  const response = await send("GET", path, { ...options, headers: { Accept: "application/x-ndjson, text/plain" } });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), retryAfterSeconds(response.headers));
  return { text: await response.text(), headers: response.headers };
}

/** Download an answer as a file, named as the API's Content-Disposition says (else `fallback`). */
export async function download(path, query, fallback) {
  const response = await send("GET", path, { query, headers: { Accept: "text/csv" } });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response), retryAfterSeconds(response.headers));
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = named ? named[1] : fallback;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return link.download;
}

/** A short human sentence for any error. */
export function describe(error) {
  if (error instanceof ApiError) {
    const p = error.problem;
    const parts = [p.title || `HTTP ${error.status}`];
    if (p.detail && p.detail !== p.title) parts.push(p.detail);
    return parts.join(": ");
  }
  if (error && error.name === "AbortError") return "cancelled";
  return error && error.message ? error.message : String(error);
}
