// `node --import ./module-recorder.mjs …` with KF_MODULE_LOG=FILE: every module the process
// loads is appended to FILE, one URL a line — ES modules and CommonJS entries through a load
// hook (it runs on the loader thread, hence the file), CommonJS required from CommonJS from
// require.cache at exit.
import fs from 'node:fs';
import { createRequire, register } from 'node:module';
import process from 'node:process';

const log = process.env.KF_MODULE_LOG;
if (log) {
  register(
    `data:text/javascript,${encodeURIComponent(`
import fs from 'node:fs';
export async function load(url, context, next) {
  fs.appendFileSync(${JSON.stringify(log)}, url + '\\n');
  return next(url, context);
}`)}`,
  );
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const cjs = Object.keys(require.cache).map((file) => `file://${file}`);
    fs.appendFileSync(log, cjs.map((u) => `${u}\n`).join(''));
  });
}
