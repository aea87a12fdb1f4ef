import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import {
  ProfileError,
  type ProfileProblem,
  ProfileReadError,
} from './errors.ts';
import { type SipProfile, SipProfileSchema } from './schema.ts';

/** A profile is a page of JSON; anything much larger is not one. */
export const MAX_PROFILE_BYTES = 1024 * 1024;

/** PEM armour of any kind: a profile names where material lives, never it. */
const PEM_ARMOUR = /-----BEGIN ([A-Z0-9 ]+)-----/;
/**
 * A long unbroken base64 run: DER key material pasted without its armour.
 * No legitimate field (names, ARNs, URLs, CIDRs) comes near this length.
 */
const BASE64_RUN = /[A-Za-z0-9+/]{200,}={0,2}/;

type Path = readonly PropertyKey[];

/** `genesys.signalingPeers[1]`; the profile itself is `(profile)`. */
export function formatPath(path: Path): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') {
      text += `[${part}]`;
    } else {
      text += text === '' ? String(part) : `.${String(part)}`;
    }
  }
  return text === '' ? '(profile)' : text;
}

/** Finds key-like material in every string and key of a JSON value. */
export function findKeyMaterial(
  value: unknown,
  path: Path = [],
): ProfileProblem[] {
  if (typeof value === 'string') {
    const armour = PEM_ARMOUR.exec(value);
    if (armour !== null) {
      const what = armour[1]?.includes('PRIVATE KEY')
        ? 'a PEM private key'
        : `PEM material (${armour[1]})`;
      return [
        {
          path: formatPath(path),
          message: `looks like ${what}: a profile names where the certificate and key come from, never holds them`,
        },
      ];
    }
    if (BASE64_RUN.test(value)) {
      return [
        {
          path: formatPath(path),
          message:
            'looks like encoded key material (a long base64 run): a profile never holds keys',
        },
      ];
    }
    return [];
  }
  if (Array.isArray(value)) {
    return value.flatMap((item, index) =>
      findKeyMaterial(item, [...path, index]),
    );
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [
      ...findKeyMaterial(key, [...path, key]),
      ...findKeyMaterial(item, [...path, key]),
    ]);
  }
  return [];
}

/** Zod says "expected string, received undefined": a person says required. */
function missingField(issue: z.core.$ZodRawIssue): string | undefined {
  return issue.code === 'invalid_type' && issue.input === undefined
    ? 'required'
    : undefined;
}

/** One problem per bad field; an unknown key is named by its own path. */
function toProblems(issues: readonly z.core.$ZodIssue[]): ProfileProblem[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: formatPath([...issue.path, key]),
        message: 'unknown field',
      }));
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

/**
 * Validates a parsed JSON value as a SIP profile and fills in defaults.
 * Throws `ProfileError` naming `source` and every bad field.
 */
export function parseProfile(json: unknown, source: string): SipProfile {
  const problems = findKeyMaterial(json);
  const result = SipProfileSchema.safeParse(json, { error: missingField });
  if (!result.success) {
    problems.push(...toProblems(result.error.issues));
  }
  if (problems.length > 0 || !result.success) {
    throw new ProfileError(source, problems, result.error);
  }
  return result.data;
}

/** SHA-256 (hex) of the profile bytes: the digest tagged on the image. */
export function profileDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Decodes and parses profile bytes; `source` names them in errors. */
export function parseProfileBytes(
  bytes: Uint8Array,
  source: string,
): SipProfile {
  if (bytes.byteLength > MAX_PROFILE_BYTES) {
    throw new ProfileError(source, [
      {
        path: '(profile)',
        message: `${bytes.byteLength} bytes, more than ${MAX_PROFILE_BYTES}`,
      },
    ]);
  }

  let text: string;
  let json: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ProfileError(
      source,
      [{ path: '(profile)', message: 'not UTF-8 text' }],
      error,
    );
  }
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProfileError(
      source,
      [{ path: '(profile)', message: `not JSON: ${(error as Error).message}` }],
      error,
    );
  }
  return parseProfile(json, source);
}

/**
 * Reads and validates a profile file. The digest is of the bytes as read,
 * so it matches what was uploaded, not a re-serialisation.
 * Throws `ProfileReadError` when the file cannot be read, `ProfileError`
 * when it is not a valid profile.
 */
export async function readProfileFile(path: string): Promise<{
  profile: SipProfile;
  bytes: Uint8Array;
  digest: string;
}> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new ProfileReadError(path, error);
  }
  const profile = parseProfileBytes(bytes, path);
  return { profile, bytes, digest: profileDigest(bytes) };
}
