/**
 * Writes schemas/sip-profile.schema.json from the zod schema of the SIP
 * profile. With --check it writes nothing and exits 1 when the file is
 * missing or out of date.
 *
 *   node scripts/gen-profile-schema.ts [--check]
 */

import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { profileJsonSchema } from '../functions/lib/profile/schema.ts';

export const SCHEMA_PATH = resolve(
  import.meta.dirname,
  '..',
  'schemas',
  'sip-profile.schema.json',
);

/** The file's schema, or undefined when it is missing or not JSON. */
export async function readSchemaFile(
  path: string = SCHEMA_PATH,
): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

async function main(args: string[]): Promise<number> {
  const schema = profileJsonSchema();
  if (args.includes('--check')) {
    // Compared as data: the file may be reformatted by Biome.
    if (isDeepStrictEqual(await readSchemaFile(), schema)) {
      console.log(`${SCHEMA_PATH} is up to date`);
      return 0;
    }
    console.error(
      `${SCHEMA_PATH} is out of date: run node scripts/gen-profile-schema.ts`,
    );
    return 1;
  }
  await writeFile(SCHEMA_PATH, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${SCHEMA_PATH}`);
  return 0;
}

if (process.argv[1] === import.meta.filename) {
  process.exitCode = await main(process.argv.slice(2));
}
