/**
 * Events as AWS delivers them to the trigger function: an S3 event
 * notification (the structure of S3's notification documentation, event
 * version 2.1) and an EventBridge scheduled event.
 */

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';
export const BUCKET = 'sbc-ami-pipeline-test-config-123456789012-eu-west-1';
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:sbc-ami-pipeline-test`;
export const PREFIX = 'profiles/';

export interface ObjectSpec {
  /** The key as S3 puts it in the notification: form-encoded. */
  readonly encodedKey: string;
  readonly versionId?: string;
  readonly eventName?: string;
  readonly bucket?: string;
  readonly size?: number;
}

export function s3Record(spec: ObjectSpec) {
  const bucket = spec.bucket ?? BUCKET;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: REGION,
    eventTime: '2026-11-30T09:15:27.402Z',
    eventName: spec.eventName ?? 'ObjectCreated:Put',
    userIdentity: { principalId: 'AWS:AIDAEXAMPLEPRINCIPAL' },
    // An upload over S3's dual-stack endpoint.
    requestParameters: { sourceIPAddress: '2001:db8::15' },
    responseElements: {
      'x-amz-request-id': 'C3D13FE58DE4C810',
      'x-amz-id-2':
        'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD',
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'tf-s3-lambda-20261130091527',
      bucket: {
        name: bucket,
        ownerIdentity: { principalId: 'A3NL1KOZZKExample' },
        arn: `arn:aws:s3:::${bucket}`,
      },
      object: {
        key: spec.encodedKey,
        size: spec.size ?? 2048,
        eTag: 'd41d8cd98f00b204e9800998ecf8427e',
        ...(spec.versionId === undefined ? {} : { versionId: spec.versionId }),
        sequencer: '0067A4C1F3B2E1D9C7',
      },
    },
  };
}

export function s3Event(...specs: ObjectSpec[]) {
  return { Records: specs.map(s3Record) };
}

export const SCHEDULE_TIME = '2026-11-30T04:00:00Z';

export function scheduledEvent(time: string = SCHEDULE_TIME) {
  return {
    version: '0',
    id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ACCOUNT,
    time,
    region: REGION,
    resources: [
      `arn:aws:events:${REGION}:${ACCOUNT}:rule/sbc-ami-pipeline-test-TriggerEventsRuleSchedule1`,
    ],
    detail: {},
  };
}

/** The fields of a Lambda context the handler wrapper reads. */
export const LAMBDA_CONTEXT = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'sbc-ami-pipeline-test-trigger',
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:sbc-ami-pipeline-test-trigger`,
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
  logGroupName: '/aws/lambda/sbc-ami-pipeline-test-trigger',
  logStreamName: '2026/11/30/[$LATEST]abcdef',
  getRemainingTimeInMillis: () => 30_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
};
