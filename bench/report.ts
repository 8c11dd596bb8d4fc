import { execFileSync } from 'node:child_process';
import { cpus, release } from 'node:os';

export interface BenchResult {
  name: string;
  description: string;
  /** Each row: a label and its measurements in milliseconds. */
  rows: { label: string; values: number[] }[];
  summary: string;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

export function machineLine(): string {
  let qemu: string;
  try {
    qemu = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch {
    qemu = 'qemu not found';
  }
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Linux ${release()}, ${qemu}, Node ${process.version}`;
}

export function toMarkdown(r: BenchResult): string {
  const lines = [
    `### ${r.name}`,
    '',
    r.description,
    '',
    '| what | median | min | max | runs |',
    '|---|---|---|---|---|',
    ...r.rows.map(
      (row) =>
        `| ${row.label} | ${fmt(median(row.values))} | ${fmt(Math.min(...row.values))} | ${fmt(Math.max(...row.values))} | ${row.values.length} |`,
    ),
    '',
    r.summary,
    '',
  ];
  return lines.join('\n');
}
