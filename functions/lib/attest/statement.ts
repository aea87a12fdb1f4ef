import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import {
  canonicalSubject,
  type ImageSubjectInput,
  subjectDigest,
  subjectName,
} from './subject.ts';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What `externalParameters` and the byproducts mean; see README.md here. */
export const BUILD_TYPE = 'urn:sbc-ami-pipeline:build-type:packer-ami:v1';
/** Builder id when the caller names none (the state machine ARN, say). */
export const DEFAULT_BUILDER_ID = 'urn:sbc-ami-pipeline:builder';
export const BUILDER_NAME = 'sbc-ami-pipeline';
export const SMOKE_REPORT_NAME = 'smoke-test-report.json';

/** An in-toto ResourceDescriptor (subject, dependency or byproduct). */
export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  /** Base64 of the resource's bytes. */
  content?: string;
  mediaType?: string;
  annotations?: Record<string, unknown>;
}

export interface SlsaProvenance {
  buildDefinition: {
    buildType: string;
    externalParameters: {
      profile: {
        location: string;
        versionId?: string;
        digest: { sha256: string };
      };
      template: { digest: { sha256: string } };
      baseImage: { imageId: string; region: string };
    };
    internalParameters?: Record<string, unknown>;
    resolvedDependencies: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version: Record<string, string> };
    metadata: {
      invocationId: string;
      startedOn: string;
      finishedOn: string;
      /** The CodeBuild build id (a SLSA extension field: vendor prefix). */
      sbcami_buildId: string;
    };
    byproducts: ResourceDescriptor[];
  };
}

/** An in-toto Statement v1 with a SLSA Provenance v1 predicate. */
export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: SlsaProvenance;
}

export interface ProvenanceInput {
  subject: ImageSubjectInput;
  builderVersion: string;
  /** The builder's identity; `DEFAULT_BUILDER_ID` when absent. */
  builderId?: string;
  profile: { location: string; versionId?: string; digest: string };
  templateDigest: string;
  sourceRevision: string;
  /** Where the pipeline's source lives (a git URL), when known. */
  sourceUri?: string;
  buildId: string;
  execution: string;
  startedAt: string;
  finishedAt: string;
  internalParameters?: Record<string, unknown>;
  smokeReport: unknown;
}

const text = z.string().min(1);
/** Hex SHA-256, optionally written `sha256:HEX`; stored as bare hex. */
const sha256 = z
  .string()
  .regex(/^(sha256:)?[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256')
  .transform((value) => value.replace(/^sha256:/, ''));
const timestamp = z.iso.datetime({ offset: true });

const inputSchema = z
  .strictObject({
    subject: z.strictObject({
      imageId: text,
      region: text,
      snapshotIds: z.array(text).min(1),
      architecture: text,
      baseImageId: text,
      // Bare hex, as describeImage gives it: the digest that is signed is
      // the one given, never a rewritten form of it.
      contentDigest: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256')
        .optional(),
    }),
    builderVersion: text,
    builderId: text.optional(),
    profile: z.strictObject({
      location: text,
      versionId: text.optional(),
      digest: sha256,
    }),
    templateDigest: sha256,
    sourceRevision: z
      .string()
      .regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'expected a full git commit id'),
    sourceUri: text.optional(),
    buildId: text,
    execution: text,
    startedAt: timestamp,
    finishedAt: timestamp,
    internalParameters: z.record(z.string(), z.unknown()).optional(),
    smokeReport: z.unknown().refine((value) => value !== undefined, {
      message: 'the smoke-test report is required',
    }),
  })
  .refine(
    (input) => Date.parse(input.startedAt) <= Date.parse(input.finishedAt),
    {
      path: ['finishedAt'],
      message: 'the build cannot finish before it started',
    },
  );

/** Checks a provenance input, naming every field that is wrong. */
export function parseProvenanceInput(input: unknown): ProvenanceInput {
  const result = inputSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`,
    );
    throw new InvalidInputError(
      `invalid provenance input: ${problems.join('; ')}`,
      { data: { fields: result.error.issues.map((i) => i.path.join('.')) } },
    );
  }
  return result.data;
}

/** The statement the Sign task signs for an image. */
export function buildStatement(input: ProvenanceInput): Statement {
  const checked = parseProvenanceInput(input);
  const { subject } = checked;
  const report = serializeReport(checked.smokeReport);

  return {
    _type: STATEMENT_TYPE,
    subject: [
      {
        name: subjectName(subject),
        digest: { sha256: subjectDigest(subject) },
        // The description the digest covers, so a verifier can say which
        // field of the live image differs.
        annotations: JSON.parse(canonicalSubject(subject)),
      },
    ],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          profile: {
            location: checked.profile.location,
            ...(checked.profile.versionId === undefined
              ? {}
              : { versionId: checked.profile.versionId }),
            digest: { sha256: checked.profile.digest },
          },
          template: { digest: { sha256: checked.templateDigest } },
          baseImage: { imageId: subject.baseImageId, region: subject.region },
        },
        ...(checked.internalParameters === undefined
          ? {}
          : { internalParameters: checked.internalParameters }),
        resolvedDependencies: [
          {
            name: BUILDER_NAME,
            ...(checked.sourceUri === undefined
              ? {}
              : { uri: checked.sourceUri }),
            digest: { gitCommit: checked.sourceRevision },
          },
        ],
      },
      runDetails: {
        builder: {
          id: checked.builderId ?? DEFAULT_BUILDER_ID,
          version: { [BUILDER_NAME]: checked.builderVersion },
        },
        metadata: {
          invocationId: checked.execution,
          startedOn: checked.startedAt,
          finishedOn: checked.finishedAt,
          sbcami_buildId: checked.buildId,
        },
        byproducts: [
          {
            name: SMOKE_REPORT_NAME,
            mediaType: 'application/json',
            digest: {
              sha256: createHash('sha256').update(report).digest('hex'),
            },
            content: report.toString('base64'),
          },
        ],
      },
    },
  };
}

/** The smoke-test report of a statement, decoded, or undefined. */
export function smokeReportOf(statement: Statement): unknown {
  const byproduct = statement.predicate.runDetails.byproducts.find(
    (item) => item.name === SMOKE_REPORT_NAME,
  );
  if (byproduct?.content === undefined) {
    return undefined;
  }
  return JSON.parse(Buffer.from(byproduct.content, 'base64').toString('utf8'));
}

function serializeReport(report: unknown): Buffer {
  let serialized: string | undefined;
  try {
    serialized = canonicalize(report);
  } catch (error) {
    throw new InvalidInputError('smokeReport: not serializable as JSON', {
      cause: error,
    });
  }
  if (serialized === undefined) {
    throw new InvalidInputError('smokeReport: not serializable as JSON');
  }
  return Buffer.from(serialized, 'utf8');
}
