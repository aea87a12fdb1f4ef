import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Notification, Notifier } from '../ports.ts';

/**
 * The run's summary where a person sees it: the terminal (when the caller
 * gives a writer) and a file kept with the run's logs, in place of SNS.
 */
export class LocalNotifier implements Notifier {
  readonly file: string;
  readonly #write?: (text: string) => void;
  readonly #sent: Notification[] = [];

  constructor(file: string, write?: (text: string) => void) {
    this.file = file;
    this.#write = write;
  }

  async notify(notification: Notification): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    await appendFile(
      this.file,
      `${new Date().toISOString()} ${notification.outcome}\n` +
        `${notification.message}\n\n`,
    );
    this.#sent.push(notification);
    this.#write?.(notification.message);
  }

  /** The notifications sent so far, oldest first. */
  sent(): Notification[] {
    return [...this.#sent];
  }
}
