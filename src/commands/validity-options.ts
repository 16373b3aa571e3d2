import type { Argv, BuilderArguments } from 'yargs';
import type { Validities } from '../core/types.js';
import { DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY, resolveValidityPair } from '../core/validity.js';
import { singleFlagValue, type CamelFlags } from './options.js';

/** The validity flags (`plan`, `patch`, `build`, `verify`, `renew`). */
export type ValidityArgs = CamelFlags<BuilderArguments<typeof withValidityOptions<object>>>;

/**
 * One --validity-like flag: N with unit y, d or h, checked by parseValidity. nargs 1: the next
 * word is the value even when it starts with "-", so -1d is refused as a validity (two-line
 * error) instead of being taken for flags. `ca` and `kubelet-cert` use it for their one validity.
 */
export function validityOption(defaultValue: string, describe: string) {
  return { type: 'string', nargs: 1, default: defaultValue, describe } as const;
}

/**
 * The definitions of --validity (leaf, default 199y) and --ca-validity (default 200y), for
 * `y.options(…)` in a command's chain; `describe` words them for a command whose validities
 * mean something more specific (`renew`).
 */
export function validityOptions(describe: { validity?: string; caValidity?: string } = {}) {
  return {
    validity: validityOption(
      DEFAULT_LEAF_VALIDITY,
      describe.validity ?? 'leaf certificate validity: N with unit y (365 days), d or h; at most 290y',
    ),
    'ca-validity': validityOption(
      DEFAULT_CA_VALIDITY,
      describe.caValidity ?? 'CA certificate validity (same units); at least --validity',
    ),
  } as const;
}

/** Adds --validity and --ca-validity (validityOptions) to a builder. */
export function withValidityOptions<T>(y: Argv<T>) {
  return y.options(validityOptions());
}

/** Leaf and CA validities from --validity / --ca-validity, validated. */
export function resolveValidities(argv: Partial<ValidityArgs>): Validities {
  return resolveValidityPair(
    singleFlagValue(argv.validity, '--validity') ?? DEFAULT_LEAF_VALIDITY,
    singleFlagValue(argv.caValidity, '--ca-validity') ?? DEFAULT_CA_VALIDITY,
  );
}
