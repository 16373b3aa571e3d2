// Test only. node https-probe.mjs URL CA_FILE CLIENT_PEM
// One HTTPS GET presenting the client certificate and key in CLIENT_PEM (as a kubelet's
// kubelet-client-current.pem holds them), trusting CA_FILE; prints {"status":N,"body":"..."}.
// The API server's certificate has no 127.0.0.1 SAN: the name checked is "kubernetes".
import fs from 'node:fs';
import https from 'node:https';
import process from 'node:process';

const [url, caFile, pemFile] = process.argv.slice(2);
const pem = fs.readFileSync(pemFile, 'utf8');
const req = https.get(
  url,
  { ca: fs.readFileSync(caFile), cert: pem, key: pem, servername: 'kubernetes', timeout: 15000 },
  (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      if (body.length < 2000) body += d;
    });
    res.on('end', () =>
      process.stdout.write(`${JSON.stringify({ status: res.statusCode, body: body.slice(0, 2000) })}\n`),
    );
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
