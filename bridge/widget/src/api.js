// --- talking to the bridge -------------------------------------------------
var stopAll = new AbortController(); // aborted when the stored case is forgotten
var gen = 0; // bumped at the same time: loops of an old case notice and stop

// JSON in, JSON out. `token` overrides the stored chat token (resume links).
async function api(method, path, body, timeoutMs, token, extra) {
  var res = await request(method, path, body ? JSON.stringify(body) : undefined, timeoutMs, token,
    body ? "application/json" : null, extra);
  var data = await res.json().catch(function () { return {}; });
  if (!res.ok) throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
  return data;
}
async function request(method, path, body, timeoutMs, token, type, extra) {
  var ctrl = new AbortController(), abort = function () { ctrl.abort(); };
  var timer = setTimeout(abort, timeoutMs || 15000), stop = stopAll.signal;
  stop.addEventListener("abort", abort);
  var headers = Object.assign({ Accept: "application/json" }, extra || {});
  if (type) headers["Content-Type"] = type;
  token = token || (path.indexOf("/cases/") === 0 ? saved.token : null);
  if (token) headers.Authorization = "Bearer " + token;
  try {
    var res = await fetch(API + path, {
      method: method, headers: headers, body: body,
      signal: ctrl.signal, credentials: "omit", cache: "no-store"
    });
    if (res.ok && !/json/.test(res.headers.get("Content-Type") || "")) {
      res.blobData = await res.blob(); // read before the timer ends: a PDF takes a while
    }
  } catch (e) {
    throw Object.assign(new Error("network"), { network: true });
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", abort);
  }
  return res;
}
// A request that creates something (a chat, a message left): under unusual load
// the bridge asks for a proof of work first (428 BC_PROOF_REQUIRED with an
// ALTCHA challenge). It is solved here in the background with altcha-lib's
// solver, loaded only then, and the same request is sent again with it.
async function proven(method, path, body, timeoutMs, token) {
  try {
    return await api(method, path, body, timeoutMs, token);
  } catch (e) {
    if (e.errcode !== "BC_PROOF_REQUIRED" || !e.challenge) throw e;
    var proof = await solveProof(e.challenge);
    return await api(method, path, body, timeoutMs, token, { "X-Buergerchat-Proof": proof });
  }
}
async function solveProof(challenge) {
  var pow = await import(STATIC + "altcha/pow.js");
  var sha = await import(STATIC + "altcha/algorithms/web/sha.js");
  var solution = await pow.solveChallenge({ challenge: challenge, deriveKey: sha.deriveKey, timeout: 60000 });
  if (!solution) throw Object.assign(new Error("proof"), { status: 503 });
  return btoa(JSON.stringify({
    challenge: challenge, solution: { counter: solution.counter, derivedKey: solution.derivedKey }
  }));
}
// A file from the bridge (transcript, attachment), as a blob.
async function download(path, timeoutMs) {
  var res = await request("GET", path, undefined, timeoutMs);
  if (!res.ok) {
    var data = await res.json().catch(function () { return {}; });
    throw Object.assign(new Error(data.error || res.statusText), data, { status: res.status });
  }
  return res.blobData;
}
// A token the bridge no longer accepts, or a case it does not know.
function gone(e) { return e.status === 401 || e.status === 403 || e.status === 404; }
function retryable(e) { return !e.status || e.status >= 500 || e.status === 429; }
// Over a limit (429): the bridge says when the same request will be taken.
function busySeconds(e) {
  return e && e.status === 429 ? Math.max(1, Math.ceil(+e.retry_after_seconds || 5)) : 0;
}
// How long to wait before trying again: the backoff, or at least Retry-After.
function retryDelay(e, delay) { return Math.max(delay, busySeconds(e) * 1000); }

// Backoff sleeps end early when the browser reports it is online again.
var wakers = [];
function pause(ms) {
  return new Promise(function (resolve) {
    var timer = setTimeout(done, ms * (0.8 + Math.random() * 0.4));
    function done() { clearTimeout(timer); wakers = wakers.filter(function (w) { return w !== done; }); resolve(); }
    wakers.push(done);
  });
}
function wakeAll() { wakers.slice().forEach(function (w) { w(); }); }
window.addEventListener("online", wakeAll);
