import { readFileSync } from 'node:fs';

/** The job's version, from its package.json (shipped in the package and the image). */
export const jobVersion: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
