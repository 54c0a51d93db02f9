/**
 * JSON laid out the way the repository's formatter (biome, line width 110) lays it out, so a
 * bench/results/latest.json left behind never fails `biome format .`: objects expanded, arrays of
 * primitives on one line when they fit, else one item per line. (Arrays of numbers that do not fit
 * would be "filled" by biome: the report has none.)
 */
const LINE_WIDTH = 110;

export function formatJson(value: unknown): string {
  return `${render(value, 0, 0)}\n`;
}

function isPrimitive(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

function render(value: unknown, indent: number, prefix: number): string {
  if (isPrimitive(value)) return JSON.stringify(value) ?? 'null';
  const pad = ' '.repeat(indent + 2);
  const close = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every(isPrimitive)) {
      const inline = `[${value.map((v) => JSON.stringify(v) ?? 'null').join(', ')}]`;
      if (indent + prefix + inline.length + 1 <= LINE_WIDTH) return inline;
    }
    return `[\n${value.map((v) => pad + render(v, indent + 2, 0)).join(',\n')}\n${close}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  const lines = entries.map(([k, v]) => {
    const key = `${JSON.stringify(k)}: `;
    return `${pad}${key}${render(v, indent + 2, key.length)}`;
  });
  return `{\n${lines.join(',\n')}\n${close}}`;
}
