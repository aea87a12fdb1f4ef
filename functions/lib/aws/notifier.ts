import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { readConfig } from '../config.ts';
import { throttleAware } from '../errors.ts';
import type { Notification, Notifier } from '../ports.ts';

/** Run summaries to an SNS topic, with the outcome as a filterable attribute. */
export class SnsNotifier implements Notifier {
  readonly sns: SNSClient;
  readonly topicArn: string;

  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  async notify(notification: Notification): Promise<void> {
    await throttleAware('Publish', () =>
      this.sns.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: notification.subject,
          Message: notification.message,
          MessageAttributes: {
            outcome: { DataType: 'String', StringValue: notification.outcome },
          },
        }),
      ),
    );
  }
}

/** The notifier of the deployed stack, from its environment. */
export function notifierFromEnv(): SnsNotifier {
  const config = readConfig(
    z.object({ TOPIC_ARN: z.string().startsWith('arn:') }),
  );
  return new SnsNotifier(new SNSClient({}), config.TOPIC_ARN);
}
