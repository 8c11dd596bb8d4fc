import { join } from 'node:path';
import { stateDir } from '../util/paths.js';
import type { Arch } from '../util/arch.js';

/** Where built images go unless --out says otherwise; `vmstub create` looks for the stub here. */
export const imagesDir = (): string => join(stateDir(), 'images');

export const stubImagePath = (arch: Arch, dir = imagesDir()): string => join(dir, `stub-${arch}.squashfs`);
