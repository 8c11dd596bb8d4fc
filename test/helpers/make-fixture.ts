/** Builds (or finds in the cache) the fixture system image and prints its path. */
import { fixtureSystemImage } from './fixture.js';

process.stdout.write(fixtureSystemImage().image + '\n');
