import { describe, expect, it } from 'vitest';
import {
  MANAGED_BY_VALUE,
  TAG_MANAGED_BY,
  TAG_RETAIN,
  TAG_RUN_ID,
} from '../../functions/lib/constants.ts';
import {
  type Decision,
  type Inventory,
  type KeepCode,
  planRetention,
  recordedSnapshots,
  TAG_SNAPSHOT_IDS,
} from '../../functions/lib/retention/index.ts';
import {
  hoursAgo,
  image,
  inventoryOf,
  MONTH_AGO,
  NOW,
  POLICY,
} from './fixtures.ts';

const OLD = image('ami-old');

function decisionFor(inventory: Inventory, id = 'ami-old'): Decision {
  const plan = planRetention(inventory, POLICY, NOW);
  const decision = plan.decisions.find((d) => d.id === id);
  if (decision === undefined) {
    throw new Error(`no decision for ${id}`);
  }
  return decision;
}

function codes(decision: Decision): string[] {
  return decision.reasons.map((reason) => reason.code);
}

describe('planRetention', () => {
  describe('images', () => {
    it('deletes an old never-validated image when nothing keeps it', () => {
      // Prepare
      const inventory = inventoryOf([OLD]);

      // Act
      const decision = decisionFor(inventory);

      // Assess
      expect(decision.action).toBe('delete');
      expect(codes(decision)).toEqual(['never-validated']);
      expect(decision.snapshotIds).toEqual(['snap-old']);
    });

    const alone: [string, KeepCode, Inventory][] = [
      [
        'it is the current published value',
        'published',
        inventoryOf([OLD], {
          published: [
            { name: '/sbc-ami/edge/image-id', imageIds: ['ami-old'] },
          ],
        }),
      ],
      [
        'it is among the N previous published values',
        'published',
        inventoryOf([OLD], {
          published: [
            { name: '/p', imageIds: ['ami-new', 'ami-mid', 'ami-old'] },
          ],
        }),
      ],
      [
        'a launch template version other than default and latest uses it',
        'launch-template',
        inventoryOf([OLD], {
          launchTemplateVersions: [
            {
              launchTemplateId: 'lt-1',
              version: 1,
              isDefault: false,
              imageId: 'ami-old',
            },
            {
              launchTemplateId: 'lt-1',
              version: 2,
              isDefault: true,
              imageId: 'ami-x',
            },
            {
              launchTemplateId: 'lt-1',
              version: 3,
              isDefault: false,
              imageId: 'ami-y',
            },
          ],
        }),
      ],
      [
        'a launch configuration uses it',
        'launch-configuration',
        inventoryOf([OLD], {
          launchConfigurations: [{ name: 'lc-sbc', imageId: 'ami-old' }],
        }),
      ],
      [
        'a mixed-instances override of an Auto Scaling group names it',
        'auto-scaling-group',
        inventoryOf([OLD], {
          autoScalingGroups: [
            { name: 'asg-sbc', overrides: [{ imageId: 'ami-old' }] },
          ],
        }),
      ],
      [
        'it is younger than the grace window',
        'grace-window',
        inventoryOf([image('ami-old', { createdAt: hoursAgo(23) })]),
      ],
      [
        'it is tagged to retain',
        'retain-tag',
        inventoryOf([image('ami-old', { tags: { [TAG_RETAIN]: 'true' } })]),
      ],
      [
        'it is among the newest validated images of its profile',
        'newest-validated',
        inventoryOf([image('ami-old', { validated: true })]),
      ],
      [
        'EC2 is still creating it',
        'being-created',
        inventoryOf([image('ami-old', { state: 'pending' })]),
      ],
      [
        'the build of its run is still running',
        'build-running',
        inventoryOf([image('ami-old', { runId: 'run-1' })], {
          runningRunIds: ['run-1'],
        }),
      ],
      [
        'its deregistration protection is on',
        'deregistration-protection',
        inventoryOf([{ ...OLD, deregistrationProtection: true }]),
      ],
      [
        'its creation time is unknown',
        'unknown-age',
        inventoryOf([image('ami-old', { createdAt: 'not a date' })]),
      ],
    ];
    it.each(alone)('keeps the image when %s', (_, code, inventory) => {
      // Act
      const decision = decisionFor(inventory);

      // Assess
      expect(decision.action).toBe('keep');
      expect(codes(decision)).toEqual([code]);
    });

    it.each(['pending', 'running', 'stopping', 'stopped', 'shutting-down'])(
      'keeps the image when an instance in state %s uses it',
      (state) => {
        // Prepare
        const inventory = inventoryOf([OLD], {
          instances: [{ instanceId: 'i-1', imageId: 'ami-old', state }],
        });

        // Act
        const decision = decisionFor(inventory);

        // Assess
        expect(decision.action).toBe('keep');
        expect(codes(decision)).toEqual(['instance']);
        expect(decision.reasons[0]?.text).toContain(`i-1 (${state})`);
      },
    );

    it('deletes the image when only a terminated instance used it', () => {
      const inventory = inventoryOf([OLD], {
        instances: [
          { instanceId: 'i-1', imageId: 'ami-old', state: 'terminated' },
        ],
      });

      expect(decisionFor(inventory).action).toBe('delete');
    });

    it('deletes a published value older than the N previous ones', () => {
      const inventory = inventoryOf([OLD], {
        published: [
          { name: '/p', imageIds: ['ami-3', 'ami-2', 'ami-1', 'ami-old'] },
        ],
      });

      expect(decisionFor(inventory).action).toBe('delete');
    });

    it('counts a value published twice once among the N previous', () => {
      // Prepare: ami-a went out, was rolled back to, and out again.
      const inventory = inventoryOf([OLD], {
        published: [
          { name: '/p', imageIds: ['ami-a', 'ami-b', 'ami-a', 'ami-old'] },
        ],
      });

      // Act
      const decision = decisionFor(inventory);

      // Assess
      expect(decision.action).toBe('keep');
      expect(decision.reasons[0]?.text).toBe(
        'published value of /p, 2 before current',
      );
    });

    const viaGroups: [string, Partial<Inventory>][] = [
      [
        'its launch template at $Latest',
        {
          autoScalingGroups: [
            {
              name: 'asg',
              launchTemplate: { launchTemplateName: 'sbc', version: '$Latest' },
            },
          ],
        },
      ],
      [
        'its launch configuration',
        {
          launchConfigurations: [{ name: 'lc', imageId: 'ami-old' }],
          autoScalingGroups: [{ name: 'asg', launchConfigurationName: 'lc' }],
        },
      ],
      [
        'its mixed-instances launch template',
        {
          autoScalingGroups: [
            {
              name: 'asg',
              mixedInstancesTemplate: {
                launchTemplateId: 'lt-1',
                version: '2',
              },
            },
          ],
        },
      ],
      [
        'a launch template named in a mixed-instances override',
        {
          autoScalingGroups: [
            {
              name: 'asg',
              mixedInstancesTemplate: { launchTemplateId: 'lt-9' },
              overrides: [
                { template: { launchTemplateId: 'lt-1', version: '2' } },
              ],
            },
          ],
        },
      ],
    ];
    it.each(viaGroups)(
      'keeps the image an Auto Scaling group uses through %s',
      (_, more) => {
        // Prepare
        const inventory = inventoryOf([OLD], {
          launchTemplateVersions: [
            {
              launchTemplateId: 'lt-1',
              launchTemplateName: 'sbc',
              version: 1,
              isDefault: true,
              imageId: 'ami-x',
            },
            {
              launchTemplateId: 'lt-1',
              launchTemplateName: 'sbc',
              version: 2,
              isDefault: false,
              imageId: 'ami-old',
            },
          ],
          ...more,
        });

        // Act
        const decision = decisionFor(inventory);

        // Assess
        expect(decision.action).toBe('keep');
        expect(codes(decision)).toContain('auto-scaling-group');
        const group = decision.reasons.find(
          (r) => r.code === 'auto-scaling-group',
        );
        expect(group?.text).toMatch(/^in Auto Scaling group asg via /);
      },
    );

    it('lists every keep reason that applies, all at once', () => {
      // Prepare
      const young = image('ami-old', {
        createdAt: hoursAgo(1),
        validated: true,
        runId: 'run-1',
        tags: { [TAG_RETAIN]: 'true' },
      });
      const inventory = inventoryOf([young], {
        published: [{ name: '/p', imageIds: ['ami-old'] }],
        launchTemplateVersions: [
          {
            launchTemplateId: 'lt-1',
            version: 1,
            isDefault: true,
            imageId: 'ami-old',
          },
        ],
        launchConfigurations: [{ name: 'lc', imageId: 'ami-old' }],
        autoScalingGroups: [{ name: 'asg', launchConfigurationName: 'lc' }],
        instances: [
          { instanceId: 'i-1', imageId: 'ami-old', state: 'running' },
        ],
        runningRunIds: ['run-1'],
      });

      // Act
      const decision = decisionFor(inventory);

      // Assess
      expect(decision.action).toBe('keep');
      expect(codes(decision)).toEqual([
        'published',
        'launch-template',
        'launch-configuration',
        'auto-scaling-group',
        'instance',
        'grace-window',
        'retain-tag',
        'newest-validated',
        'build-running',
      ]);
    });

    it('keeps the newest N validated images per profile and deletes older ones', () => {
      // Prepare
      const inventory = inventoryOf([
        image('ami-e1', { validated: true, createdAt: hoursAgo(100) }),
        image('ami-e2', { validated: true, createdAt: hoursAgo(200) }),
        image('ami-e3', { validated: true, createdAt: hoursAgo(300) }),
        image('ami-e4', { createdAt: hoursAgo(50) }),
        image('ami-c1', {
          validated: true,
          profile: 'core',
          createdAt: hoursAgo(900),
        }),
      ]);

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      const actions = Object.fromEntries(
        plan.decisions.map((d) => [d.id, [d.action, ...codes(d)].join(' ')]),
      );
      expect(actions).toEqual({
        'ami-e1': 'keep newest-validated',
        'ami-e2': 'keep newest-validated',
        'ami-e3': 'delete superseded',
        'ami-e4': 'delete never-validated',
        'ami-c1': 'keep newest-validated',
      });
    });

    it('deletes a failed image past the grace window and keeps a young one', () => {
      // Prepare
      const inventory = inventoryOf([
        image('ami-f1', { state: 'failed' }),
        image('ami-f2', { state: 'failed', createdAt: hoursAgo(2) }),
      ]);

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.decisions.map((d) => [d.id, d.action, codes(d)])).toEqual([
        ['ami-f2', 'keep', ['grace-window']],
        ['ami-f1', 'delete', ['failed']],
      ]);
    });

    it('treats deprecated and disabled images as candidates', () => {
      // Prepare
      const disabled = image('ami-d', { state: 'disabled' });
      const deprecated = { ...image('ami-p'), deprecatedAt: hoursAgo(48) };

      // Act
      const plan = planRetention(
        inventoryOf([disabled, deprecated]),
        POLICY,
        NOW,
      );

      // Assess
      expect(plan.decisions.map((d) => [d.id, d.action])).toEqual([
        ['ami-d', 'delete'],
        ['ami-p', 'delete'],
      ]);
    });

    it('keeps every validated image when the published values are unknown', () => {
      // Prepare
      const inventory = inventoryOf(
        [
          image('ami-v1', { validated: true, createdAt: hoursAgo(100) }),
          image('ami-v2', { validated: true, createdAt: hoursAgo(200) }),
          image('ami-v3', { validated: true, createdAt: hoursAgo(300) }),
          image('ami-n', {}),
        ],
        { publishedUnknown: true },
      );

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.decisions.map((d) => [d.id, d.action])).toEqual([
        ['ami-v1', 'keep'],
        ['ami-v2', 'keep'],
        ['ami-v3', 'keep'],
        ['ami-n', 'delete'],
      ]);
    });

    it('leaves a snapshot another image also records out of the deletion', () => {
      // Prepare
      const inventory = inventoryOf(
        [image('ami-a', { snapshots: ['snap-own', 'snap-shared'] })],
        {
          otherImages: [{ imageId: 'ami-copy', snapshotIds: ['snap-shared'] }],
        },
      );

      // Act
      const decision = decisionFor(inventory, 'ami-a');

      // Assess
      expect(decision.action).toBe('delete');
      expect(decision.snapshotIds).toEqual(['snap-own']);
      expect(decision.sharedSnapshotIds).toEqual(['snap-shared']);
    });
  });

  describe('deletion cap', () => {
    it('deletes the oldest up to the cap and keeps the rest this run', () => {
      // Prepare
      const images = [1, 2, 3, 4, 5].map((n) =>
        image(`ami-${n}`, { createdAt: hoursAgo(100 * n) }),
      );

      // Act
      const plan = planRetention(
        inventoryOf(images),
        { ...POLICY, maxDeletes: 2 },
        NOW,
      );

      // Assess
      const byId = new Map(plan.decisions.map((d) => [d.id, d]));
      expect(byId.get('ami-5')?.action).toBe('delete');
      expect(byId.get('ami-4')?.action).toBe('delete');
      for (const id of ['ami-1', 'ami-2', 'ami-3']) {
        expect(byId.get(id)?.action).toBe('keep');
        expect(codes(byId.get(id) as Decision)).toEqual([
          'deletion-cap',
          'never-validated',
        ]);
      }
    });

    it('deletes nothing when the cap is 0', () => {
      const plan = planRetention(
        inventoryOf([OLD]),
        { ...POLICY, maxDeletes: 0 },
        NOW,
      );

      expect(plan.decisions.map((d) => d.action)).toEqual(['keep']);
    });
  });

  describe('orphan snapshots', () => {
    const tagged = { [TAG_MANAGED_BY]: MANAGED_BY_VALUE };

    it('deletes an old snapshot with no image that carries the pipeline tag', () => {
      // Prepare
      const inventory = inventoryOf([], {
        snapshots: [
          { snapshotId: 'snap-o', createdAt: MONTH_AGO, tags: tagged },
        ],
      });

      // Act
      const decision = decisionFor(inventory, 'snap-o');

      // Assess
      expect(decision).toMatchObject({ kind: 'snapshot', action: 'delete' });
      expect(decision.reasons[0]?.text).toContain(`tagged ${TAG_MANAGED_BY}`);
    });

    it('deletes an untagged orphan only when the pipeline recorded its id', () => {
      // Prepare
      const inventory = inventoryOf([], {
        snapshots: [
          { snapshotId: 'snap-rec', createdAt: MONTH_AGO, tags: {} },
          { snapshotId: 'snap-stranger', createdAt: MONTH_AGO, tags: {} },
        ],
        recordedSnapshotIds: ['snap-rec'],
      });

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.decisions.map((d) => [d.id, d.action, codes(d)])).toEqual([
        ['snap-rec', 'delete', ['orphan-snapshot']],
        ['snap-stranger', 'keep', ['not-provably-ours']],
      ]);
    });

    it('skips snapshots that any image still records', () => {
      // Prepare
      const inventory = inventoryOf(
        [image('ami-a', { snapshots: ['snap-a'] })],
        {
          otherImages: [{ imageId: 'ami-other', snapshotIds: ['snap-b'] }],
          snapshots: [
            { snapshotId: 'snap-a', createdAt: MONTH_AGO, tags: tagged },
            { snapshotId: 'snap-b', createdAt: MONTH_AGO, tags: tagged },
          ],
        },
      );

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.decisions.map((d) => d.id)).toEqual(['ami-a']);
    });

    it('keeps a young orphan, a retained one and one of a running build', () => {
      // Prepare
      const inventory = inventoryOf([], {
        snapshots: [
          { snapshotId: 'snap-young', createdAt: hoursAgo(3), tags: tagged },
          {
            snapshotId: 'snap-kept',
            createdAt: MONTH_AGO,
            tags: { ...tagged, [TAG_RETAIN]: 'true' },
          },
          {
            snapshotId: 'snap-run',
            createdAt: MONTH_AGO,
            tags: { ...tagged, [TAG_RUN_ID]: 'run-7' },
          },
        ],
        runningRunIds: ['run-7'],
      });

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(
        Object.fromEntries(plan.decisions.map((d) => [d.id, codes(d)])),
      ).toEqual({
        'snap-young': ['grace-window'],
        'snap-kept': ['retain-tag'],
        'snap-run': ['build-running'],
      });
    });
  });

  describe('builder leftovers', () => {
    it('sweeps a run whose build is over and whose resources are old', () => {
      // Prepare
      const inventory = inventoryOf([], {
        leftovers: [
          {
            kind: 'instance',
            id: 'i-1',
            runId: 'run-a',
            createdAt: hoursAgo(10),
          },
          {
            kind: 'key-pair',
            id: 'key-1',
            runId: 'run-a',
            createdAt: hoursAgo(10),
          },
          { kind: 'security-group', id: 'sg-1', runId: 'run-a' },
        ],
      });

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.staleRuns).toEqual(['run-a']);
      expect(plan.decisions.map((d) => [d.kind, d.id, d.action])).toEqual([
        ['instance', 'i-1', 'delete'],
        ['key-pair', 'key-1', 'delete'],
        ['security-group', 'sg-1', 'delete'],
      ]);
    });

    it('keeps a run whose build is running, or whose newest resource is recent', () => {
      // Prepare: run-b's test instance started after its build ended.
      const inventory = inventoryOf([], {
        leftovers: [
          {
            kind: 'instance',
            id: 'i-1',
            runId: 'run-a',
            createdAt: hoursAgo(30),
          },
          {
            kind: 'instance',
            id: 'i-2',
            runId: 'run-b',
            createdAt: hoursAgo(30),
          },
          {
            kind: 'instance',
            id: 'i-3',
            runId: 'run-b',
            createdAt: hoursAgo(1),
          },
        ],
        runningRunIds: ['run-a'],
      });

      // Act
      const plan = planRetention(inventory, POLICY, NOW);

      // Assess
      expect(plan.staleRuns).toEqual([]);
      expect(plan.decisions.map((d) => [d.id, codes(d)])).toEqual([
        ['i-1', ['build-running']],
        ['i-2', ['recent-leftover']],
        ['i-3', ['recent-leftover']],
      ]);
    });

    it('sweeps a lone security group of a finished build, saying its age is unknown', () => {
      const inventory = inventoryOf([], {
        leftovers: [{ kind: 'security-group', id: 'sg-9', runId: 'run-z' }],
      });

      const [decision] = planRetention(inventory, POLICY, NOW).decisions;

      expect(decision?.action).toBe('delete');
      expect(decision?.reasons[0]?.text).toContain('age unknown');
    });
  });
});

describe('recordedSnapshots', () => {
  it('takes EBS mappings and the tag, and skips mappings without a snapshot', () => {
    // Prepare
    const record = {
      tags: { [TAG_SNAPSHOT_IDS]: 'snap-2, snap-3 snap-1' },
      blockDevices: [
        { deviceName: '/dev/xvda', snapshotId: 'snap-1' },
        { deviceName: '/dev/sdb' },
        { deviceName: '/dev/sdc', snapshotId: '' },
      ],
    };

    // Act
    const ids = recordedSnapshots(record);

    // Assess
    expect(ids).toEqual(['snap-1', 'snap-2', 'snap-3']);
  });
});
