import path from 'node:path';
import { escapeControl } from '../../core/errors.js';
import type { CheckReport, CheckRow } from './pki-check.js';

/**
 * `check --output prometheus`: the report in the Prometheus text exposition format, for
 * node_exporter's textfile collector.
 *
 * Names and labels follow enix's x509-certificate-exporter (x509_cert_not_after,
 * x509_cert_expired, x509_read_errors; filename/filepath, embedded_kind/embedded_key,
 * subject_*, issuer_*, serial_number), the exporter operators of kubeadm clusters most often
 * already run against /etc/kubernetes: their dashboards and alerts then work on these series
 * unchanged. What that exporter does not measure (chain and key checks, when this check ran)
 * gets this tool's own prefix rather than a name in someone else's namespace.
 */

const NAME_FIELDS = ['C', 'ST', 'L', 'O', 'OU', 'CN'] as const;

/**
 * Label value escaping of the exposition format (backslash, double quote and line feed), and
 * every other control character as visible text (`\x1b` in the value): the format would carry
 * them raw, and a file name with an escape sequence in it must not reach a terminal or a
 * dashboard as one.
 */
export function escapeLabelValue(value: string): string {
  return (
    value
      .replace(/\\/g, '\\\\')
      .replace(/"/g, '\\"')
      .replace(/\n/g, '\\n')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) =>
        escapeControl(c).replace(/\\/g, '\\\\'),
      )
  );
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** "CN=a, O=b, O=c" (check's one-line form) -> { CN: 'a', O: 'b,c' }; repeated fields joined. */
function nameFields(name: string): Partial<Record<(typeof NAME_FIELDS)[number], string>> {
  const out: Record<string, string> = {};
  for (const part of name.split(/, (?=[A-Za-z][A-Za-z0-9.]*=)/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    out[key] = out[key] === undefined ? value : `${out[key]},${value}`;
  }
  return out;
}

type Labels = [string, string][];

function certLabels(row: CheckRow): Labels {
  const subject = nameFields(row.subject);
  const issuer = nameFields(row.issuer);
  return [
    ['filename', path.basename(row.file)],
    ['filepath', row.file],
    ['embedded_kind', row.embedded?.kind ?? ''],
    ['embedded_key', row.embedded?.name ?? ''],
    ['serial_number', BigInt(`0x${row.serialNumber}`).toString(10)],
    ...NAME_FIELDS.map((f): [string, string] => [`subject_${f}`, subject[f] ?? '']),
    ...NAME_FIELDS.map((f): [string, string] => [`issuer_${f}`, issuer[f] ?? '']),
  ];
}

function sample(name: string, labels: Labels, value: number): string {
  const body = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
  return `${name}${body ? `{${body}}` : ''} ${Number.isInteger(value) ? String(value) : value.toFixed(3)}`;
}

interface Family {
  name: string;
  help: string;
  samples: string[];
}

/** The whole textfile (ends with a newline, as the format wants). */
export function formatPrometheus(report: CheckReport): string {
  const now = new Date(report.checkedAt).getTime();
  // two rows with one label set would make node_exporter drop the whole file: the later ones get
  // a `discriminator`, as enix's exporter does on a collision
  const labelsOf = new Map<CheckRow, Labels>();
  const seen = new Map<string, number>();
  for (const r of report.rows) {
    const labels = certLabels(r);
    const key = JSON.stringify(labels);
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    labelsOf.set(r, n === 0 ? labels : [...labels, ['discriminator', String(n)]]);
  }
  const certLabelsOf = (r: CheckRow) => labelsOf.get(r)!;
  const counted = report.rows.filter((r) => !r.informational);
  const seconds = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);
  const families: Family[] = [
    {
      name: 'x509_cert_not_before',
      help: 'NotBefore of the certificate, as a Unix time in seconds',
      samples: report.rows.map((r) => sample('x509_cert_not_before', certLabelsOf(r), seconds(r.notBefore))),
    },
    {
      name: 'x509_cert_not_after',
      help: 'NotAfter of the certificate, as a Unix time in seconds',
      samples: report.rows.map((r) => sample('x509_cert_not_after', certLabelsOf(r), seconds(r.notAfter))),
    },
    {
      name: 'x509_cert_expired',
      help: '1 when the certificate has expired at the time of the check, else 0',
      samples: report.rows.map((r) =>
        sample('x509_cert_expired', certLabelsOf(r), new Date(r.notAfter).getTime() < now ? 1 : 0),
      ),
    },
    {
      name: 'x509_cert_expires_in_seconds',
      help: 'seconds from the check to NotAfter (negative once expired)',
      samples: report.rows.map((r) =>
        sample(
          'x509_cert_expires_in_seconds',
          certLabelsOf(r),
          Math.floor((new Date(r.notAfter).getTime() - now) / 1000),
        ),
      ),
    },
    {
      name: 'x509_cert_error',
      help: '1 for each file or kubeconfig entry that could not be read or parsed',
      samples: report.errors.map((e) =>
        sample(
          'x509_cert_error',
          [
            ['filepath', e.file],
            ['filename', path.basename(e.file.split(': ')[0]!)],
          ],
          1,
        ),
      ),
    },
    {
      name: 'x509_read_errors',
      help: 'number of files or kubeconfig entries that could not be read or parsed',
      samples: [sample('x509_read_errors', [], report.errors.length)],
    },
    {
      name: 'kubeadm_forever_cert_chain_valid',
      help: '1 when the certificate verifies against a CA found by the check (or is a self-signed CA), else 0',
      samples: counted.map((r) =>
        sample('kubeadm_forever_cert_chain_valid', certLabelsOf(r), r.chainsTo !== null ? 1 : 0),
      ),
    },
    {
      name: 'kubeadm_forever_cert_key_match',
      help: '1 when the private key beside or embedded with the certificate matches it, else 0 (absent without a key)',
      samples: report.rows
        .filter((r) => r.keyMatches !== null)
        .map((r) => sample('kubeadm_forever_cert_key_match', certLabelsOf(r), r.keyMatches ? 1 : 0)),
    },
    {
      name: 'kubeadm_forever_check_ok',
      help: '1 when kubeadm-forever check found no problem (expiry, --min-years, chain, key, unreadable files), else 0',
      samples: [
        sample('kubeadm_forever_check_ok', [['min_years', String(report.minYears)]], report.ok ? 1 : 0),
      ],
    },
    {
      name: 'kubeadm_forever_check_timestamp_seconds',
      help: 'when the check ran, as a Unix time in seconds (a stale textfile shows here)',
      samples: [sample('kubeadm_forever_check_timestamp_seconds', [], Math.floor(now / 1000))],
    },
  ];
  const lines: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} gauge`, ...f.samples);
  }
  return `${lines.join('\n')}\n`;
}
