import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidInputError, PublishError } from '../../functions/lib/errors.ts';
import { LocalNotifier } from '../../functions/lib/local/notifier.ts';
import { LocalProfileSource } from '../../functions/lib/local/profile-source.ts';
import { LocalRegistryPublisher } from '../../functions/lib/local/publisher.ts';

describe('LocalRegistryPublisher', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sbc-ami-registry-'));
    file = join(dir, 'registry.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const request = (imageId: string, runId: string) => ({
    imageId,
    runId,
    profileName: 'edge',
    description: `edge run ${runId}`,
  });

  it('makes each publish current and keeps the history newest first', async () => {
    // Prepare
    const publisher = new LocalRegistryPublisher(file);

    // Act
    const first = await publisher.publish(request('img-1', 'sbc-1'));
    const second = await publisher.publish(request('img-2', 'sbc-2'));

    // Assess
    expect(first.parameterVersion).toBe(1);
    expect(second.parameterVersion).toBe(2);
    expect(second.location).toBe(`file://${file}#edge`);
    expect(await publisher.history('edge')).toEqual(['img-2', 'img-1']);
    expect(await publisher.history('other')).toEqual([]);
    const registry = JSON.parse(await readFile(file, 'utf8'));
    expect(registry.profiles.edge.current).toBe('img-2');
    expect(registry.profiles.edge.history[1]).toMatchObject({
      imageId: 'img-1',
      runId: 'sbc-1',
      description: 'edge run sbc-1',
    });
  });

  it('publishes nothing once the run is interrupted', async () => {
    // Prepare
    const controller = new AbortController();
    controller.abort(new Error('interrupted'));
    const publisher = new LocalRegistryPublisher(file, {
      signal: controller.signal,
    });

    // Act, Assess
    await expect(publisher.publish(request('img-1', 'sbc-1'))).rejects.toThrow(
      'interrupted',
    );
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('names the file when it is not a registry', async () => {
    // Prepare
    await writeFile(file, JSON.stringify({ edge: 'img-1' }));
    const publisher = new LocalRegistryPublisher(file);

    // Act, Assess
    await expect(publisher.history('edge')).rejects.toThrow(PublishError);
    await expect(publisher.history('edge')).rejects.toThrow(file);
  });
});

describe('LocalProfileSource', () => {
  it('names the file it cannot read', async () => {
    // Act, Assess
    await expect(
      new LocalProfileSource().read({ key: '/nonexistent/profile.json' }),
    ).rejects.toThrow(
      /profile \/nonexistent\/profile.json cannot be read \(ENOENT\)/,
    );
  });

  it('refuses an S3 reference', async () => {
    // Act, Assess
    await expect(
      new LocalProfileSource().read({ bucket: 'b', key: 'profiles/p.json' }),
    ).rejects.toThrow(InvalidInputError);
  });
});

describe('LocalNotifier', () => {
  it('writes the message to its file and to the terminal writer', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'sbc-ami-notify-'));
    const shown: string[] = [];
    const notifier = new LocalNotifier(join(dir, 'notification.txt'), (m) =>
      shown.push(m),
    );

    // Act
    await notifier.notify({
      subject: 'SBC image published: edge',
      message: 'SBC image published: edge\n\nimage: img-1',
      outcome: 'succeeded',
    });

    // Assess
    expect(shown).toEqual(['SBC image published: edge\n\nimage: img-1']);
    const text = await readFile(join(dir, 'notification.txt'), 'utf8');
    expect(text).toContain(
      'succeeded\nSBC image published: edge\n\nimage: img-1',
    );
    expect(notifier.sent()).toHaveLength(1);
    await rm(dir, { recursive: true, force: true });
  });
});
