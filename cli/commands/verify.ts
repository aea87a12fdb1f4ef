import { readFile } from 'node:fs/promises';
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { crypto as sigstoreCrypto } from '@sigstore/core';
import type { Command } from 'commander';
import {
  type AttestationStore,
  type ContentReader,
  KmsSigner,
  LOCAL_REGION,
  LocalAttestationStore,
  localKeyFiles,
  S3AttestationStore,
  SigningKeyError,
  type Statement,
  type VerifyResult,
  verifyImage,
} from '../../functions/lib/attest/index.ts';
import { SigningError } from '../../functions/lib/errors.ts';
import { LocalImageStore } from '../../functions/lib/local/image-store.ts';
import { localPaths } from '../../functions/lib/local/paths.ts';
import type { ImageStore } from '../../functions/lib/ports.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import { awsClient } from '../lib/aws.ts';
import type { RegisterCommand } from '../main.ts';

export interface VerifyOptions {
  key?: string;
  kmsKeyId?: string;
  region?: string;
  local?: boolean;
  json?: boolean;
}

/** `sbc-ami verify IMAGE`: exit 0 when the attestation holds, 1 if not. */
export const registerVerify: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('verify')
    .description(
      'check an image against its signed provenance: the signature, the ' +
        'subject recomputed from the live image and, for a local image, ' +
        'its snapshot file hashed again against the signed content digest',
    )
    .argument('<image>', 'image id (an AMI id, or a local image id)')
    .option('--key <file>', 'public key (PEM) to verify with')
    .option(
      '--kms-key-id <id>',
      'KMS key whose public key to verify with (kms:GetPublicKey)',
    )
    .option(
      '--region <region>',
      "the image's region (default: the AWS configuration)",
    )
    .option(
      '--local',
      'a local-mode image; verifies with the local public key by default',
    )
    .option('--json', 'print the result as JSON')
    .action(async (imageId: string, options: VerifyOptions) => {
      exit(await runVerify(imageId, options));
    });
};

interface VerifyContext {
  images: ImageStore;
  attestations: AttestationStore;
  region: string;
  publicKeyPem: string;
  /** Local images only: EBS snapshots cannot be read back as bytes. */
  contents?: ContentReader;
}

/** Verifies one image and prints the verdict; resolves to the exit code. */
export async function runVerify(
  imageId: string,
  options: VerifyOptions,
): Promise<number> {
  if (options.key !== undefined && options.kmsKeyId !== undefined) {
    throw new UsageError('pass --key or --kms-key-id, not both');
  }
  if (options.local && options.region !== undefined) {
    throw new UsageError(
      `--region does not apply to --local: local images are in ` +
        `"${LOCAL_REGION}"`,
    );
  }

  const context = options.local
    ? await localContext(options)
    : await awsContext(options);
  const result = await verifyImage({ imageId, ...context });

  if (options.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    printResult(result);
  }
  return result.ok ? EXIT_OK : EXIT_FAILED;
}

async function localContext(options: VerifyOptions): Promise<VerifyContext> {
  const paths = localPaths();
  let publicKeyPem: string;
  if (options.kmsKeyId !== undefined) {
    publicKeyPem = await kmsPublicKey(options.kmsKeyId, undefined);
  } else if (options.key !== undefined) {
    publicKeyPem = await readPublicKey(options.key, '--key');
  } else {
    const file = localKeyFiles(paths).publicKey;
    publicKeyPem = await readPublicKey(
      file,
      'the local public key',
      () =>
        `no local public key at ${file}: build a local image first, ` +
        'or pass --key FILE',
    );
  }
  const images = new LocalImageStore(paths);
  return {
    images,
    attestations: new LocalAttestationStore(paths),
    region: LOCAL_REGION,
    publicKeyPem,
    contents: (image) => images.hashContents(image),
  };
}

async function awsContext(options: VerifyOptions): Promise<VerifyContext> {
  if (options.key === undefined && options.kmsKeyId === undefined) {
    throw new UsageError(
      'pass --key FILE or --kms-key-id ID (or --local for a local image)',
    );
  }

  const ec2 = awsClient(EC2Client, { region: options.region });
  let region: string;
  try {
    region = await ec2.config.region();
  } catch (error) {
    throw new UsageError(
      '--region is required: no AWS region is configured ' +
        '(AWS_REGION or the profile)',
      { cause: error },
    );
  }

  const publicKeyPem =
    options.key !== undefined
      ? await readPublicKey(options.key, '--key')
      : await kmsPublicKey(options.kmsKeyId as string, region);

  // Loaded here so that local verification never loads the EC2 adapter.
  const { Ec2ImageStore } = await import(
    '../../functions/lib/aws/image-store.ts'
  );
  return {
    images: new Ec2ImageStore(ec2),
    // The bucket may be in another region than the image.
    attestations: new S3AttestationStore(
      awsClient(S3Client, { region, followRegionRedirects: true }),
    ),
    region,
    publicKeyPem,
  };
}

async function readPublicKey(
  file: string,
  what: string,
  missing?: () => string,
): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missing !== undefined) {
      throw new UsageError(missing());
    }
    throw new UsageError(`${what}: cannot read ${file} (${code})`, {
      cause: error,
    });
  }
  try {
    sigstoreCrypto.createPublicKey(pem);
  } catch (error) {
    throw new UsageError(`${what}: ${file} is not a PEM public key`, {
      cause: error,
    });
  }
  return pem;
}

/** KMS errors that mean the key id is wrong, not that KMS is unreachable. */
const KEY_ID_ERRORS = new Set([
  'NotFoundException',
  'InvalidArnException',
  'DisabledException',
  'KMSInvalidStateException',
]);

async function kmsPublicKey(
  keyId: string,
  region: string | undefined,
): Promise<string> {
  const signer = new KmsSigner(awsClient(KMSClient, { region }), keyId);
  try {
    return await signer.publicKeyPem();
  } catch (error) {
    const causeName = (error as Error).cause
      ? ((error as Error).cause as Error).name
      : undefined;
    const keyProblem =
      error instanceof SigningKeyError ||
      (error instanceof SigningError && KEY_ID_ERRORS.has(causeName ?? ''));
    if (keyProblem) {
      throw new UsageError(`--kms-key-id ${keyId}: ${explain(error)}`, {
        cause: error,
      });
    }
    throw error;
  }
}

function explain(error: unknown): string {
  const cause = (error as Error).cause;
  return cause instanceof Error
    ? `${(error as Error).message} (${cause.name}: ${cause.message})`
    : (error as Error).message;
}

function printResult(result: VerifyResult): void {
  const where = `${result.imageId} (${result.region})`;
  if (!result.ok) {
    console.error(`NOT verified: ${where}`);
    for (const reason of result.reasons) {
      console.error(`  - ${reason}`);
    }
    return;
  }

  console.log(`verified: ${where}`);
  console.log(
    `  signed by    ${result.keyId || '(no key id)'}: signature valid`,
  );
  console.log(
    `  subject      sha256 ${result.subjectDigest}: the live image's ` +
      'description is the signed one',
  );
  console.log(`  contents     ${contentLine(result)}`);
  console.log(`  attestation  ${result.location}`);
  if (result.statement !== undefined) {
    for (const line of provenanceLines(result.statement)) {
      console.log(`  ${line}`);
    }
  }
}

/** What was checked of the image's contents, said as it was checked. */
function contentLine(result: VerifyResult): string {
  const contents = result.contents;
  if (contents?.signed === undefined) {
    return 'not covered: the signed subject has no content digest';
  }
  if (contents.hashed === undefined) {
    return (
      `signed as sha256 ${contents.signed}; not hashed again (the ` +
      'contents cannot be read from here)'
    );
  }
  return (
    `${contents.hashed.files.join(', ')} hashed again now: sha256 ` +
    `${contents.hashed.sha256}, the signed digest`
  );
}

/**
 * A few lines of what the statement says. Read defensively: the signature
 * proves who wrote it, not that its predicate has every field.
 */
function provenanceLines(statement: Statement): string[] {
  const { buildDefinition, runDetails } = statement.predicate ?? {};
  const external = buildDefinition?.externalParameters;
  const builder = runDetails?.builder;
  const metadata = runDetails?.metadata;
  const version = Object.values(builder?.version ?? {})[0];
  const source = buildDefinition?.resolvedDependencies?.[0]?.digest?.gitCommit;
  const profile = external?.profile;
  const lines = [
    `builder      ${builder?.id ?? '?'}${version ? ` ${version}` : ''}`,
    `profile      ${profile?.location ?? '?'}` +
      `${profile?.versionId ? ` (version ${profile.versionId})` : ''}` +
      ` sha256 ${profile?.digest?.sha256 ?? '?'}`,
    `base image   ${external?.baseImage?.imageId ?? '?'}`,
    `template     sha256 ${external?.template?.digest?.sha256 ?? '?'}`,
    `source       ${source ?? '?'}${dirtyNote(buildDefinition)}`,
    `run          ${metadata?.invocationId ?? '?'}, build ` +
      `${metadata?.sbcami_buildId ?? '?'}`,
    `built        ${metadata?.startedOn ?? '?'} .. ` +
      `${metadata?.finishedOn ?? '?'}`,
  ];
  return lines;
}

/** The build's checkout had changes its commit does not hold. */
function dirtyNote(
  definition: Statement['predicate']['buildDefinition'] | undefined,
): string {
  const dirty = definition?.internalParameters?.sourceDirty;
  if (dirty === true) {
    return ' plus uncommitted changes (sourceDirty: true)';
  }
  return dirty === false ? ' (clean working tree)' : '';
}
