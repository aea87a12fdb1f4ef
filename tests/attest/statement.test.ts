import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BUILD_TYPE,
  buildStatement,
  DEFAULT_BUILDER_ID,
  SLSA_PROVENANCE_V1,
  STATEMENT_TYPE,
  smokeReportOf,
  subjectDigest,
} from '../../functions/lib/attest/index.ts';
import { InvalidInputError } from '../../functions/lib/errors.ts';
import {
  BASE_IMAGE_ID,
  IMAGE_ID,
  provenanceInput,
  REGION,
  SMOKE_REPORT,
  subjectInput,
} from './fixtures.ts';

describe('buildStatement', () => {
  it('names the image as subject with its digest and description', () => {
    // Prepare
    const input = provenanceInput();

    // Act
    const statement = buildStatement(input);

    // Assess
    expect(statement._type).toBe(STATEMENT_TYPE);
    expect(statement.predicateType).toBe(SLSA_PROVENANCE_V1);
    expect(statement.subject).toEqual([
      {
        name: `${REGION}/${IMAGE_ID}`,
        digest: { sha256: subjectDigest(subjectInput()) },
        annotations: {
          ...subjectInput(),
          snapshotIds: [...subjectInput().snapshotIds].sort(),
        },
      },
    ]);
  });

  it('records parameters, dependencies and run details of the build', () => {
    // Prepare
    const input = provenanceInput();

    // Act
    const { buildDefinition, runDetails } = buildStatement(input).predicate;

    // Assess
    expect(buildDefinition).toEqual({
      buildType: BUILD_TYPE,
      externalParameters: {
        profile: {
          location: input.profile.location,
          versionId: input.profile.versionId,
          digest: { sha256: 'a'.repeat(64) },
        },
        // The `sha256:` prefix of the input is dropped.
        template: { digest: { sha256: 'b'.repeat(64) } },
        baseImage: { imageId: BASE_IMAGE_ID, region: REGION },
      },
      internalParameters: { instanceType: 't3.small' },
      resolvedDependencies: [
        { name: 'sbc-ami-pipeline', digest: { gitCommit: 'c'.repeat(40) } },
      ],
    });
    expect(runDetails.builder).toEqual({
      id: DEFAULT_BUILDER_ID,
      version: { 'sbc-ami-pipeline': '0.1.0' },
    });
    expect(runDetails.metadata).toEqual({
      invocationId: input.execution,
      startedOn: input.startedAt,
      finishedOn: input.finishedAt,
      sbcami_buildId: input.buildId,
    });
  });

  it('carries the smoke-test report as a byproduct with its digest', () => {
    // Prepare
    const input = provenanceInput();

    // Act
    const statement = buildStatement(input);

    // Assess
    const [byproduct] = statement.predicate.runDetails.byproducts;
    const bytes = Buffer.from(byproduct?.content ?? '', 'base64');
    expect(byproduct?.mediaType).toBe('application/json');
    expect(byproduct?.digest?.sha256).toBe(
      createHash('sha256').update(bytes).digest('hex'),
    );
    expect(smokeReportOf(statement)).toEqual(SMOKE_REPORT);
  });

  it('keeps the profile version out when the profile has none', () => {
    // Prepare
    const input = provenanceInput(subjectInput(), {
      profile: { location: '/srv/profiles/lab.json', digest: 'd'.repeat(64) },
    });

    // Act
    const { profile } =
      buildStatement(input).predicate.buildDefinition.externalParameters;

    // Assess
    expect(profile).toEqual({
      location: '/srv/profiles/lab.json',
      digest: { sha256: 'd'.repeat(64) },
    });
  });

  it.each([
    ['templateDigest', { templateDigest: 'not-a-digest' }],
    ['sourceRevision', { sourceRevision: 'main' }],
    ['startedAt', { startedAt: 'yesterday' }],
    ['finishedAt', { finishedAt: '2025-12-31T23:00:00.000Z' }],
    ['subject.snapshotIds', { subject: subjectInput({ snapshotIds: [] }) }],
    ['smokeReport', { smokeReport: undefined }],
    ['buildNumber', { buildNumber: 7 } as object],
  ])('fails naming %s when it is wrong', (field, change) => {
    // Prepare
    const input = { ...provenanceInput(), ...change };

    // Act
    const act = () => buildStatement(input);

    // Assess
    expect(act).toThrow(InvalidInputError);
    expect(act).toThrow(field === 'buildNumber' ? /buildNumber/ : `${field}:`);
  });
});
