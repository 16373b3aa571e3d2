import { isPair, isScalar, parse, parseDocument, visit } from 'yaml';
import type { YamlVersionReader } from './version.js';

/**
 * The YAML side of reading `kubeadm version -o yaml` (core/version.ts parseVersionOutput), in
 * its own module so that only that format loads the yaml library.
 */
export const yamlVersionReader: YamlVersionReader = {
  parse: (text) => parse(text) as unknown,
  duplicateKey(text) {
    let found: string | undefined;
    visit(parseDocument(text, { uniqueKeys: false }), {
      Map(_key, map, path) {
        const seen = new Set<string>();
        for (const item of map.items) {
          const k = isScalar(item.key) ? String(item.key.value) : String(item.key);
          if (seen.has(k)) {
            const parents = path
              .filter(isPair)
              .map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)));
            found = [...parents, k].join('.');
            return visit.BREAK;
          }
          seen.add(k);
        }
        return undefined;
      },
    });
    return found;
  },
};
