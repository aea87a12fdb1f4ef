import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  buildStatement,
  canonicalSubject,
  describeImage,
  ImageSubjectError,
  subjectDigest,
} from '../../functions/lib/attest/index.ts';
import {
  TAG_BASE_IMAGE,
  TAG_IMAGE_DIGEST,
} from '../../functions/lib/constants.ts';
import {
  BASE_IMAGE_ID,
  IMAGE_ID,
  imageRecord,
  OTHER_SNAPSHOT_ID,
  provenanceInput,
  REGION,
  SNAPSHOT_IDS,
  subjectInput,
} from './fixtures.ts';

describe('describeImage', () => {
  it('takes the EBS snapshot ids, sorted, and the base image from its tag', () => {
    // Prepare: the fixture lists the snapshots out of order, with an
    // ephemeral mapping between them.
    const image = imageRecord();

    // Act
    const subject = describeImage(image, REGION);

    // Assess
    expect(subject).toEqual({
      imageId: IMAGE_ID,
      region: REGION,
      snapshotIds: [...SNAPSHOT_IDS].sort(),
      architecture: 'x86_64',
      baseImageId: BASE_IMAGE_ID,
    });
  });

  it('takes the content digest from its tag when the build recorded one', () => {
    // Prepare
    const content = 'e'.repeat(64);
    const image = imageRecord({
      tags: {
        [TAG_BASE_IMAGE]: BASE_IMAGE_ID,
        [TAG_IMAGE_DIGEST]: `sha256:${content}`,
      },
    });

    // Act
    const subject = describeImage(image, REGION);

    // Assess
    expect(subject.contentDigest).toBe(content);
    expect(describeImage(imageRecord(), REGION)).not.toHaveProperty(
      'contentDigest',
    );
  });

  it('fails naming the tag when the content digest tag is not sha256:HEX', () => {
    // Prepare
    const image = imageRecord({
      tags: { [TAG_BASE_IMAGE]: BASE_IMAGE_ID, [TAG_IMAGE_DIGEST]: 'md5:abc' },
    });

    // Act
    const act = () => describeImage(image, REGION);

    // Assess
    expect(act).toThrow(ImageSubjectError);
    expect(act).toThrow(TAG_IMAGE_DIGEST);
  });

  it('fails naming the tag when the base image tag is missing', () => {
    // Prepare
    const image = imageRecord({ tags: {} });

    // Act
    const act = () => describeImage(image, REGION);

    // Assess
    expect(act).toThrow(ImageSubjectError);
    expect(act).toThrow(`has no ${TAG_BASE_IMAGE} tag`);
  });

  it('fails when the image has no EBS snapshot', () => {
    // Prepare
    const image = imageRecord({ blockDevices: [{ deviceName: '/dev/sdb' }] });

    // Act
    const act = () => describeImage(image, REGION);

    // Assess
    expect(act).toThrow(/no EBS snapshot/);
  });
});

describe('subjectDigest', () => {
  it('is the SHA-256 of the RFC 8785 form of the description', () => {
    // Prepare: the canonical form written out by hand: keys sorted by
    // code unit, no whitespace.
    const subject = subjectInput();
    const expected =
      `{"architecture":"x86_64","baseImageId":"${BASE_IMAGE_ID}",` +
      `"imageId":"${IMAGE_ID}","region":"${REGION}",` +
      `"snapshotIds":["${SNAPSHOT_IDS[0]}","${SNAPSHOT_IDS[1]}"]}`;

    // Act
    const digest = subjectDigest(subject);

    // Assess
    expect(digest).toBe(createHash('sha256').update(expected).digest('hex'));
  });

  it('covers the content digest, and leaves the form of a subject without one as it was', () => {
    // Prepare
    const content = 'e'.repeat(64);
    const withContent = subjectInput({ contentDigest: content });

    // Act
    const text = canonicalSubject(withContent);

    // Assess
    expect(text).toBe(
      `{"architecture":"x86_64","baseImageId":"${BASE_IMAGE_ID}",` +
        `"contentDigest":"${content}","imageId":"${IMAGE_ID}",` +
        `"region":"${REGION}",` +
        `"snapshotIds":["${SNAPSHOT_IDS[0]}","${SNAPSHOT_IDS[1]}"]}`,
    );
    expect(canonicalSubject(subjectInput())).not.toContain('contentDigest');
    expect(subjectDigest(withContent)).not.toBe(subjectDigest(subjectInput()));
    expect(
      subjectDigest(subjectInput({ contentDigest: 'f'.repeat(64) })),
    ).not.toBe(subjectDigest(withContent));
  });

  it('is signed with the content digest in the subject annotations', () => {
    // Prepare
    const subject = subjectInput({ contentDigest: 'e'.repeat(64) });

    // Act
    const statement = buildStatement(provenanceInput(subject));

    // Assess
    expect(statement.subject[0]?.digest?.sha256).toBe(subjectDigest(subject));
    expect(statement.subject[0]?.annotations?.contentDigest).toBe(
      'e'.repeat(64),
    );
  });

  it('does not depend on the order of the snapshot ids', () => {
    // Prepare
    const reversed = subjectInput({ snapshotIds: [...SNAPSHOT_IDS].reverse() });

    // Act
    const digests = [subjectDigest(subjectInput()), subjectDigest(reversed)];

    // Assess
    expect(digests[0]).toBe(digests[1]);
  });

  it.each([
    ['imageId', { imageId: 'ami-0ffffffffffffffff' }],
    ['region', { region: 'eu-central-1' }],
    [
      'snapshotIds',
      { snapshotIds: [SNAPSHOT_IDS[0] ?? '', OTHER_SNAPSHOT_ID] },
    ],
    ['architecture', { architecture: 'arm64' }],
    ['baseImageId', { baseImageId: 'ami-0fffffffffffffff0' }],
  ])('changes when %s changes', (_field, change) => {
    // Prepare
    const changed = subjectInput(change);

    // Act
    const digest = subjectDigest(changed);

    // Assess
    expect(digest).not.toBe(subjectDigest(subjectInput()));
  });
});
