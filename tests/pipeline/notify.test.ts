import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { SnsNotifier } from '../../functions/lib/aws/notifier.ts';
import {
  notifyOutcome,
  readableError,
} from '../../functions/lib/pipeline/notify.ts';

const TOPIC = 'arn:aws:sns:eu-west-1:111122223333:sbc-ami';

/** What Lambda puts in a Catch's Cause for an error a handler threw. */
function lambdaCause(errorType: string, errorMessage: string): string {
  return JSON.stringify({ errorType, errorMessage, trace: ['at x'] });
}

describe('readableError', () => {
  it('keeps the whole message of a Lambda error, cause included', () => {
    // Act
    const line = readableError({
      Error: 'PublishError',
      Cause: lambdaCause(
        'PublishError',
        'publishing ami-1 failed: AccessDeniedException: not allowed',
      ),
    });

    // Assess
    expect(line).toBe(
      'PublishError: publishing ami-1 failed: AccessDeniedException: ' +
        'not allowed',
    );
  });

  it('keeps the error type inside when it differs from the caught name', () => {
    // Act
    const line = readableError({
      Error: 'States.TaskFailed',
      Cause: lambdaCause('Runtime.ExitError', 'Runtime exited: signal: killed'),
    });

    // Assess
    expect(line).toBe(
      'States.TaskFailed: Runtime.ExitError: Runtime exited: signal: killed',
    );
  });

  it('takes a plain-text cause as the message', () => {
    expect(readableError({ Error: 'States.Timeout', Cause: 'timed out' })).toBe(
      'States.Timeout: timed out',
    );
    expect(readableError({ Error: 'States.Timeout' })).toBe('States.Timeout');
  });
});

describe('notifyOutcome', () => {
  const sns = mockClient(SNSClient);

  afterEach(() => {
    sns.reset();
  });

  it('sends the failure with its cause and what is left behind', async () => {
    // Prepare
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const notifier = new SnsNotifier(new SNSClient({}), TOPIC);

    // Act
    const result = await notifyOutcome(
      {
        outcome: 'failed',
        execution: 'exec-1',
        runId: 'sbc-run-1',
        profileName: 'trunk',
        imageId: 'ami-1',
        error: {
          Error: 'PublishError',
          Cause: lambdaCause(
            'PublishError',
            'publishing ami-1 failed at PutParameter: ' +
              'AccessDeniedException: not allowed; nothing had changed',
          ),
        },
        reports: {
          image: {
            removed: [],
            leftBehind: ['ami-1 kept, still in use: the published value'],
          },
        },
      },
      { notifier },
    );

    // Assess
    const message = sns.commandCalls(PublishCommand)[0]?.args[0].input.Message;
    expect(message).toContain(
      'reason: PublishError: publishing ami-1 failed at PutParameter: ' +
        'AccessDeniedException: not allowed; nothing had changed',
    );
    expect(message).toContain(
      'left behind, delete by hand:\n- ami-1 kept, still in use',
    );
    expect(result.reason).toContain('AccessDeniedException');
  });
});
