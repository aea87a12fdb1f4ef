import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { KmsSigner, S3AttestationStore } from './lib/attest/index.ts';
import { imageStoreFromEnv } from './lib/aws/image-store.ts';
import { lazy, readConfig } from './lib/config.ts';
import { taskHandler } from './lib/handler.ts';
import {
  type SignDeps,
  SignInputSchema,
  signImage,
} from './lib/pipeline/sign.ts';

/** Sign: the image's provenance attestation, signed with the KMS key. */
export const signHandler = (deps: () => SignDeps) =>
  taskHandler(SignInputSchema, (input) => signImage(input, deps()));

export const handler = signHandler(
  lazy(() => {
    const config = readConfig(
      z.object({
        AWS_REGION: z.string().min(1),
        SIGNING_KEY_ID: z.string().min(1),
        ARTIFACTS_BUCKET: z.string().min(3),
        BUILDER_VERSION: z.string().min(1),
      }),
    );
    return {
      images: imageStoreFromEnv(),
      signer: new KmsSigner(new KMSClient({}), config.SIGNING_KEY_ID),
      attestations: new S3AttestationStore(new S3Client({}), {
        bucket: config.ARTIFACTS_BUCKET,
        prefix: 'attestations/',
      }),
      region: config.AWS_REGION,
      builderVersion: config.BUILDER_VERSION,
      now: () => new Date(),
    };
  }),
);
