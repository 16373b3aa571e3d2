// Test only. node api-probe.mjs OUT_FILE CA_BUNDLE INTERVAL_MS URL...
// A client of the control plane that runs until killed: every INTERVAL_MS it sends one GET to
// each URL (an API server's /readyz: the server and its etcd), on a NEW connection each time (a
// kept-alive connection would hide a certificate that stopped verifying: TLS checks at the
// handshake only), trusting the CA certificates in CA_BUNDLE, read again before every round
// (the test adds the extended CA to it). One JSON line per request is appended to OUT_FILE:
// {"round": the round's start, "t": ms since the epoch, "url", "ok": status 200, "status" or "error"}.
import fs from 'node:fs';
import https from 'node:https';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

const [out, bundle, intervalText, ...urls] = process.argv.slice(2);
const interval = Number(intervalText);
if (!out || !bundle || !(interval > 0) || urls.length === 0) {
  process.stderr.write('usage: api-probe.mjs OUT_FILE CA_BUNDLE INTERVAL_MS URL...\n');
  process.exit(2);
}

function get(url, ca) {
  return new Promise((resolve) => {
    const t = Date.now();
    const req = https.get(url, { ca, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ t, url, ok: res.statusCode === 200, status: res.statusCode }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 5 s')));
    req.on('error', (err) => resolve({ t, url, ok: false, error: err.message.slice(0, 300) }));
  });
}

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
while (!stopping) {
  const started = Date.now();
  let ca;
  try {
    // bounded: a CA bundle is a few KiB
    if (fs.statSync(bundle).size > 1024 * 1024) throw new Error(`${bundle}: over 1 MiB`);
    ca = fs.readFileSync(bundle);
  } catch (err) {
    fs.appendFileSync(out, `${JSON.stringify({ t: started, url: '*', ok: false, error: err.message })}\n`);
    await sleep(interval);
    continue;
  }
  const results = (await Promise.all(urls.map((u) => get(u, ca)))).map((r) => ({ round: started, ...r }));
  fs.appendFileSync(out, results.map((r) => `${JSON.stringify(r)}\n`).join(''));
  await sleep(Math.max(0, interval - (Date.now() - started)));
}
