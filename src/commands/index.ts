import type { CommandModule } from 'yargs';
import plan from './plan.js';
import patch from './patch.js';
import build from './build.js';
import verify from './verify.js';
import cache from './cache.js';
import bundle from './bundle.js';
import ca from './ca.js';
import kubeletCert from './kubelet-cert.js';
import check from './check.js';
import renew from './renew.js';
import audit from './audit.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [plan, patch, build, verify, cache, bundle, ca, kubeletCert, check, renew, audit];
