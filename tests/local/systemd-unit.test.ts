import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  expandWords,
  readServiceUnit,
  splitWords,
} from '../../functions/lib/local/systemd-unit.ts';

describe('readServiceUnit', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sbc-ami-unit-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const put = async (path: string, text: string) => {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  };

  it('applies drop-ins in name order: environment files win, an empty ExecStart resets', async () => {
    // Prepare
    await put(
      'usr/lib/systemd/system/demo.service',
      [
        '[Unit]',
        'Description=demo',
        '[Service]',
        'User=demo',
        "Environment='CFG=/etc/demo.cfg' MEM=64",
        'EnvironmentFile=-/etc/default/demo',
        'ExecStartPre=+/usr/sbin/setup start',
        'ExecStart=/usr/bin/demo -f $CFG -m $MEM',
        'RuntimeDirectory=demo',
        'RuntimeDirectoryMode=0770',
        '',
      ].join('\n'),
    );
    await put('etc/default/demo', '# defaults\nMEM="128"\n');
    await put(
      'etc/systemd/system/demo.service.d/20-local.conf',
      '[Service]\nEnvironmentFile=/etc/demo/addresses.env\n',
    );
    await put(
      'etc/systemd/system/demo.service.d/10-flags.conf',
      [
        '[Service]',
        'ExecStartPre=',
        'ExecStart=',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${VAR}
        'ExecStart=/usr/bin/demo --if=${IP}!${IP} --opts $OPTS',
        '',
      ].join('\n'),
    );
    await put('etc/demo/addresses.env', 'IP=198.18.0.2\nOPTS=-a -b\n');

    // Act
    const unit = await readServiceUnit(root, 'demo.service');

    // Assess
    expect(unit.files.map((f) => f.slice(root.length))).toEqual([
      '/usr/lib/systemd/system/demo.service',
      '/etc/systemd/system/demo.service.d/10-flags.conf',
      '/etc/systemd/system/demo.service.d/20-local.conf',
    ]);
    expect(unit.user).toBe('demo');
    expect(unit.environment).toEqual({
      CFG: '/etc/demo.cfg',
      MEM: '128',
      IP: '198.18.0.2',
      OPTS: '-a -b',
    });
    expect(unit.execStartPre).toEqual([]);
    expect(unit.execStart.map((c) => c.argv)).toEqual([
      ['/usr/bin/demo', '--if=198.18.0.2!198.18.0.2', '--opts', '-a', '-b'],
    ]);
    expect(unit.runtimeDirectories).toEqual(['demo']);
    expect(unit.runtimeDirectoryMode).toBe(0o770);
  });

  it('names the environment file a unit requires when the image lacks it', async () => {
    // Prepare
    await put(
      'lib/systemd/system/demo.service',
      '[Service]\nEnvironmentFile=/etc/demo/addresses.env\nExecStart=/bin/true\n',
    );

    // Act, Assess
    await expect(readServiceUnit(root, 'demo.service')).rejects.toThrow(
      /EnvironmentFile \/etc\/demo\/addresses.env is missing/,
    );
  });

  it('names the unit when the image has none', async () => {
    // Act, Assess
    await expect(readServiceUnit(root, 'absent.service')).rejects.toThrow(
      /no unit absent.service/,
    );
  });
});

describe('splitWords', () => {
  it('keeps quoted spaces and drops the quotes', () => {
    // Act, Assess
    expect(splitWords(`a 'b c' "d e"f  g`)).toEqual(['a', 'b c', 'd ef', 'g']);
  });
});

describe('expandWords', () => {
  it('splits a bare $VAR and fills a braced one in place, unset as empty', () => {
    // Act
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's ${VAR}
    const words = expandWords(['$A', 'x${B}y', '$UNSET', '${UNSET}z'], {
      A: '1 2',
      B: 'b',
    });

    // Assess
    expect(words).toEqual(['1', '2', 'xby', 'z']);
  });
});
