import { Console } from 'node:console';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { logger } from '../logger.ts';

/**
 * Sends the Task handlers' JSON logs (the shared Powertools logger) to a
 * file for the length of a local run, so the terminal keeps to progress
 * lines; resolves to the function that puts them back.
 *
 * Powertools writes through a Console of its own on stdout and offers no
 * option for another stream, so its `console` field is replaced. Should a
 * Powertools release rename that field, the logs are silenced instead of
 * flooding the terminal, and the returned function restores the level.
 */
export async function routeTaskLogs(
  file: string,
): Promise<() => Promise<void>> {
  await mkdir(dirname(file), { recursive: true });
  const stream = createWriteStream(file, { flags: 'a' });
  const target = logger as unknown as { console?: Console };
  const previous = target.console;
  if (typeof previous?.info !== 'function') {
    const level = logger.getLevelName();
    logger.setLogLevel('SILENT');
    return async () => {
      logger.setLogLevel(level);
      await new Promise<void>((done) => stream.end(done));
    };
  }
  target.console = new Console({ stdout: stream, stderr: stream });
  return async () => {
    target.console = previous;
    await new Promise<void>((done) => stream.end(done));
  };
}
