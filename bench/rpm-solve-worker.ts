/**
 * One process of the rpm-solve benchmark: loads CentOS Stream 9's real AppStream primary.xml.gz (and
 * the BaseOS stand-in) the way the bootstrap does, solves each request, and prints its timings as JSON.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { PrimaryReader, type RpmPackage } from '../src/bootstrap/rpm/metadata.js';
import { Resolver } from '../src/bootstrap/rpm/resolve.js';

const [, , requestsJson, ...primaries] = process.argv;
const requests = JSON.parse(requestsJson!) as string[][];

async function load(path: string): Promise<RpmPackage[]> {
  const reader = new PrimaryReader(new Set(['x86_64', 'noarch']), path);
  const stream = createReadStream(path).pipe(createGunzip());
  stream.setEncoding('utf8');
  for await (const chunk of stream) reader.write(chunk as string);
  return reader.end();
}

const t0 = performance.now();
const packages = (await Promise.all(primaries.map(load))).flat();
const t1 = performance.now();
const resolver = new Resolver(packages);
const t2 = performance.now();
let installed = 0;
let failed = 0;
for (const r of requests)
  try {
    installed += resolver.resolve(r).packages.length;
  } catch {
    failed++;
  }
const t3 = performance.now();
process.stdout.write(
  JSON.stringify({
    packages: packages.length,
    loadMs: t1 - t0,
    indexMs: t2 - t1,
    solveMs: t3 - t2,
    installed,
    failed,
  }),
);
