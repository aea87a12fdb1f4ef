import { type SerializedEnvelope, toDSSEBundle } from '@sigstore/bundle';
import { type crypto, dsse, crypto as sigstoreCrypto } from '@sigstore/core';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { SigningError } from '../errors.ts';
import { AttestationFormatError } from './errors.ts';
import { isDerEcdsaSignature, type Signer } from './signers.ts';
import type { Statement } from './statement.ts';

/** The DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** A DSSE envelope in its JSON form: base64 payload and signatures. */
export type Envelope = SerializedEnvelope;

/**
 * Signs a statement into a DSSE envelope. The payload is the statement's
 * RFC 8785 form, so the same statement always yields the same payload.
 */
export async function signStatement(
  statement: Statement,
  signer: Signer,
): Promise<Envelope> {
  const serialized = canonicalize(statement);
  if (serialized === undefined) {
    throw new SigningError('the statement cannot be serialized');
  }
  const payload = Buffer.from(serialized, 'utf8');
  const signed = dsse.preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload);
  const signature = await signer.sign(signed);

  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [
      { keyid: signer.keyId, sig: Buffer.from(signature).toString('base64') },
    ],
  };
}

// DSSE allows the standard and the URL-safe base64 alphabets.
const base64 = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9+/_-]+={0,2}$/, 'expected base64');

const envelopeSchema = z.object({
  payloadType: z.string().min(1),
  payload: base64,
  signatures: z
    .array(z.object({ keyid: z.string().default(''), sig: base64 }))
    .min(1),
});

/** Checks that a parsed JSON value is a DSSE envelope; `source` names it. */
export function parseEnvelope(value: unknown, source: string): Envelope {
  const result = envelopeSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(envelope)'}: ${issue.message}`,
    );
    throw new AttestationFormatError(
      `${source} is not a DSSE envelope: ${problems.join('; ')}`,
      { data: { source } },
    );
  }
  return result.data;
}

export type EnvelopeCheck =
  | { ok: true; payload: Buffer; keyId: string }
  | { ok: false; reason: string };

/**
 * Verifies a DSSE envelope with a public key alone, through the Sigstore
 * verifier: no certificate, transparency log or timestamp is expected.
 * The envelope holds if any one of its signatures verifies.
 */
export function verifyEnvelope(
  envelope: Envelope,
  publicKeyPem: string,
): EnvelopeCheck {
  let key: crypto.KeyObject;
  try {
    key = sigstoreCrypto.createPublicKey(publicKeyPem);
  } catch {
    return { ok: false, reason: 'the public key is not a PEM public key' };
  }
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return {
      ok: false,
      reason:
        `the envelope's payload type is ${envelope.payloadType}, ` +
        `not ${IN_TOTO_PAYLOAD_TYPE}`,
    };
  }
  if (envelope.signatures.length === 0) {
    return { ok: false, reason: 'the envelope has no signature' };
  }

  const payload = Buffer.from(envelope.payload, 'base64');
  const verifier = new Verifier(
    {
      certificateAuthorities: [],
      timestampAuthorities: [],
      tlogs: [],
      ctlogs: [],
      publicKey: () => ({ publicKey: key, validFor: () => true }),
    },
    { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
  );

  let notDer = 0;
  for (const { keyid, sig } of envelope.signatures) {
    const signature = Buffer.from(sig, 'base64');
    if (key.asymmetricKeyType === 'ec' && !isDerEcdsaSignature(signature)) {
      notDer += 1;
      continue;
    }
    const bundle = toDSSEBundle({
      artifact: payload,
      artifactType: envelope.payloadType,
      signature,
      keyHint: keyid,
    });
    try {
      verifier.verify(toSignedEntity(bundle));
      return { ok: true, payload, keyId: keyid };
    } catch {
      // Try the next signature; the reason below covers them all.
    }
  }

  const count = envelope.signatures.length;
  const which =
    count === 1
      ? 'the signature does not verify'
      : `none of ${count} signatures verifies`;
  const der =
    notDer === 0
      ? ''
      : ` (${notDer} not a DER-encoded ECDSA signature, as from a raw r||s)`;
  return {
    ok: false,
    reason: `${which} with the given public key${der}`,
  };
}
