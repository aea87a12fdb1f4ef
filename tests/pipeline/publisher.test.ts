import {
  CreateLaunchTemplateVersionCommand,
  DeleteLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type PublisherSettings,
  SsmPublisher,
} from '../../functions/lib/aws/publisher.ts';
import {
  PipelineError,
  PublishError,
  ThrottledError,
} from '../../functions/lib/errors.ts';

const NAME = '/sbc-ami/trunk/image-id';
const IMAGE = 'ami-0new0000000000001';
const PREVIOUS = 'ami-0old0000000000001';
const LT1 = 'lt-0aaaaaaaaaaaaaaa1';
const LT2 = 'lt-0bbbbbbbbbbbbbbb2';

const REQUEST = {
  runId: 'sbc-run-1',
  imageId: IMAGE,
  profileName: 'trunk',
  description: 'trunk run sbc-run-1',
};

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);

function publisher(settings: Partial<PublisherSettings> = {}): SsmPublisher {
  return new SsmPublisher(new SSMClient({}), new EC2Client({}), {
    parameterPrefix: '/sbc-ami',
    launchTemplateIds: [LT1, LT2],
    setDefaultVersion: true,
    readBackRetries: 0,
    undoDelayMs: 0,
    ...settings,
  });
}

function awsError(name: string): Error {
  return Object.assign(new Error(`${name} (simulated)`), { name });
}

/**
 * Every command sent to SSM and EC2, in order, as `Operation key=value`
 * with the inputs that tell the steps apart.
 */
function sent(): string[] {
  const calls = [...ssm.calls(), ...ec2.calls()].sort((a, b) =>
    a.calledBefore(b) ? -1 : 1,
  );
  return calls.map((call) => {
    const command = call.args[0] as unknown as {
      constructor: { name: string };
      input: Record<string, unknown>;
    };
    const input = command.input;
    const detail = [
      input.LaunchTemplateId,
      input.DefaultVersion === undefined
        ? undefined
        : `default=${input.DefaultVersion}`,
      input.Versions === undefined ? undefined : `versions=${input.Versions}`,
      input.Value === undefined ? undefined : `value=${input.Value}`,
    ].filter((part) => part !== undefined);
    return [command.constructor.name.replace(/Command$/, ''), ...detail].join(
      ' ',
    );
  });
}

/** Parameter state a PutParameter changes and GetParameter reads. */
let parameter: string | undefined;

/** Launch templates: default version and the next version number. */
let templates: Map<string, { defaultVersion: number; next: number }>;

beforeEach(() => {
  parameter = PREVIOUS;
  templates = new Map([
    [LT1, { defaultVersion: 3, next: 4 }],
    [LT2, { defaultVersion: 9, next: 10 }],
  ]);
  ssm.on(GetParameterCommand).callsFake(() => {
    if (parameter === undefined) {
      throw awsError('ParameterNotFound');
    }
    return { Parameter: { Name: NAME, Value: parameter } };
  });
  ssm.on(PutParameterCommand).callsFake((input) => {
    parameter = input.Value;
    return { Version: 2 };
  });
  ssm.on(DeleteParameterCommand).callsFake(() => {
    parameter = undefined;
    return {};
  });
  ec2.on(DescribeLaunchTemplatesCommand).callsFake((input) => ({
    LaunchTemplates: (input.LaunchTemplateIds ?? []).map((id: string) => ({
      LaunchTemplateId: id,
      DefaultVersionNumber: templates.get(id)?.defaultVersion,
    })),
  }));
  ec2.on(CreateLaunchTemplateVersionCommand).callsFake((input) => {
    const template = templates.get(input.LaunchTemplateId);
    const version = template?.next ?? 0;
    if (template !== undefined) {
      template.next += 1;
    }
    return { LaunchTemplateVersion: { VersionNumber: version } };
  });
  ec2.on(ModifyLaunchTemplateCommand).resolves({});
  ec2.on(DeleteLaunchTemplateVersionsCommand).callsFake((input) => ({
    SuccessfullyDeletedLaunchTemplateVersions: (input.Versions ?? []).map(
      (v: string) => ({
        LaunchTemplateId: input.LaunchTemplateId,
        VersionNumber: Number(v),
      }),
    ),
    UnsuccessfullyDeletedLaunchTemplateVersions: [],
  }));
});

afterEach(() => {
  ssm.reset();
  ec2.reset();
});

async function publishError(target: SsmPublisher): Promise<PipelineError> {
  const error = await target.publish(REQUEST).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PipelineError);
  return error as PipelineError;
}

describe('SsmPublisher.publish', () => {
  it('records the state before each change and publishes in order', async () => {
    // Act
    const result = await publisher().publish(REQUEST);

    // Assess
    expect(sent()).toEqual([
      'GetParameter',
      `PutParameter value=${IMAGE}`,
      'GetParameter',
      `DescribeLaunchTemplates`,
      `CreateLaunchTemplateVersion ${LT1}`,
      `ModifyLaunchTemplate ${LT1} default=4`,
      'DescribeLaunchTemplates',
      `CreateLaunchTemplateVersion ${LT2}`,
      `ModifyLaunchTemplate ${LT2} default=10`,
    ]);
    expect(
      ec2.commandCalls(DescribeLaunchTemplatesCommand)[0]?.args[0].input,
    ).toEqual({ LaunchTemplateIds: [LT1] });
    expect(result).toMatchObject({
      parameterName: NAME,
      launchTemplateId: LT2,
      launchTemplateVersion: 10,
    });
  });

  it('puts every change back, newest first, when a template version is refused', async () => {
    // Prepare
    ec2
      .on(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: LT2 })
      .rejects(awsError('UnauthorizedOperation'));

    // Act
    const error = await publishError(publisher());

    // Assess: default back before the version is deleted, parameter last.
    expect(sent()).toEqual([
      'GetParameter',
      `PutParameter value=${IMAGE}`,
      'GetParameter',
      'DescribeLaunchTemplates',
      `CreateLaunchTemplateVersion ${LT1}`,
      `ModifyLaunchTemplate ${LT1} default=4`,
      'DescribeLaunchTemplates',
      `CreateLaunchTemplateVersion ${LT2}`,
      `ModifyLaunchTemplate ${LT1} default=3`,
      `DeleteLaunchTemplateVersions ${LT1} versions=4`,
      `PutParameter value=${PREVIOUS}`,
      'GetParameter',
    ]);
    expect(
      ssm.commandCalls(PutParameterCommand)[1]?.args[0].input,
    ).toMatchObject({
      Name: NAME,
      Value: PREVIOUS,
      DataType: 'aws:ec2:image',
      Overwrite: true,
    });
    expect(parameter).toBe(PREVIOUS);
    expect(error).toBeInstanceOf(PublishError);
    expect(error.message).toBe(
      `publishing ${IMAGE} to ${NAME} failed at CreateLaunchTemplateVersion ` +
        `${LT2}: UnauthorizedOperation: UnauthorizedOperation (simulated); ` +
        `rolled back: launch template ${LT1} default back to version 3; ` +
        `launch template ${LT1} version 4 deleted; ` +
        `parameter ${NAME} back to ${PREVIOUS}`,
    );
    expect(error.data).toMatchObject({ notUndone: [] });
  });

  it('deletes the parameter when it did not exist before', async () => {
    // Prepare
    parameter = undefined;
    ec2
      .on(CreateLaunchTemplateVersionCommand)
      .rejects(awsError('UnauthorizedOperation'));

    // Act
    const error = await publishError(publisher({ launchTemplateIds: [LT1] }));

    // Assess
    expect(sent()).toEqual([
      'GetParameter',
      `PutParameter value=${IMAGE}`,
      'GetParameter',
      'DescribeLaunchTemplates',
      `CreateLaunchTemplateVersion ${LT1}`,
      'DeleteParameter',
    ]);
    expect(ssm.commandCalls(DeleteParameterCommand)[0]?.args[0].input).toEqual({
      Name: NAME,
    });
    expect(error.message).toContain(
      `rolled back: parameter ${NAME} deleted (it did not exist before)`,
    );
  });

  it('leaves as ThrottledError after a clean rollback, so the retry starts afresh', async () => {
    // Prepare
    ec2
      .on(ModifyLaunchTemplateCommand)
      .rejects(awsError('RequestLimitExceeded'));

    // Act
    const error = await publishError(publisher({ launchTemplateIds: [LT1] }));

    // Assess: the default never changed, so only the version is deleted.
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error.name).toBe('ThrottledError');
    expect(sent().slice(-4)).toEqual([
      `ModifyLaunchTemplate ${LT1} default=4`,
      `DeleteLaunchTemplateVersions ${LT1} versions=4`,
      `PutParameter value=${PREVIOUS}`,
      'GetParameter',
    ]);
    expect(error.message).toContain(
      'ModifyLaunchTemplate was throttled <- RequestLimitExceeded',
    );
  });

  it('retries a throttled undo call instead of giving it up', async () => {
    // Prepare
    parameter = undefined;
    ec2
      .on(CreateLaunchTemplateVersionCommand)
      .rejects(awsError('UnauthorizedOperation'));
    ssm
      .on(DeleteParameterCommand)
      .rejectsOnce(awsError('ThrottlingException'))
      .resolves({});

    // Act
    const error = await publishError(publisher({ launchTemplateIds: [LT1] }));

    // Assess
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(2);
    expect(error).toBeInstanceOf(PublishError);
    expect(error.data).toMatchObject({ notUndone: [] });
  });

  it('keeps a version that is still the default and says what to fix by hand', async () => {
    // Prepare: the new default is set, the next template fails, and the
    // old default cannot be put back.
    ec2
      .on(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: LT2 })
      .rejects(awsError('RequestLimitExceeded'));
    ec2
      .on(ModifyLaunchTemplateCommand, { DefaultVersion: '3' })
      .rejects(awsError('UnauthorizedOperation'));

    // Act
    const error = await publishError(publisher());

    // Assess: EC2 refuses to delete a default version, so none is tried;
    // the parameter is still put back.
    expect(ec2.commandCalls(DeleteLaunchTemplateVersionsCommand)).toHaveLength(
      0,
    );
    expect(parameter).toBe(PREVIOUS);
    // Throttled, but not clean: a retry would publish twice.
    expect(error).toBeInstanceOf(PublishError);
    expect(error.message).toContain(
      `NOT rolled back, fix by hand: launch template ${LT1} still defaults ` +
        'to version 4; set it back to 3, then delete version 4 ' +
        '(UnauthorizedOperation: UnauthorizedOperation (simulated))',
    );
    expect(error.message).toContain(`parameter ${NAME} back to ${PREVIOUS}`);
  });

  it('reports a version EC2 would not delete', async () => {
    // Prepare
    ec2
      .on(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: LT2 })
      .rejects(awsError('UnauthorizedOperation'));
    ec2.on(DeleteLaunchTemplateVersionsCommand).resolves({
      UnsuccessfullyDeletedLaunchTemplateVersions: [
        {
          LaunchTemplateId: LT1,
          VersionNumber: 4,
          ResponseError: { Code: 'unexpectedError', Message: 'try later' },
        },
      ],
    });

    // Act
    const error = await publishError(publisher());

    // Assess
    expect(error.data).toMatchObject({
      notUndone: [
        `launch template ${LT1} version 4 names the image; delete it ` +
          '(PublishError: unexpectedError: try later)',
      ],
    });
  });

  it('counts a version that is already gone as deleted', async () => {
    // Prepare
    ec2
      .on(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: LT2 })
      .rejects(awsError('UnauthorizedOperation'));
    ec2.on(DeleteLaunchTemplateVersionsCommand).resolves({
      UnsuccessfullyDeletedLaunchTemplateVersions: [
        {
          LaunchTemplateId: LT1,
          VersionNumber: 4,
          ResponseError: { Code: 'launchTemplateVersionDoesNotExist' },
        },
      ],
    });

    // Act
    const error = await publishError(publisher());

    // Assess
    expect(error.data).toMatchObject({ notUndone: [] });
  });

  it('says when the parameter could not be restored', async () => {
    // Prepare: the publish's put goes through, the restoring one does not.
    ec2
      .on(CreateLaunchTemplateVersionCommand)
      .rejects(awsError('UnauthorizedOperation'));
    ssm
      .on(PutParameterCommand)
      .callsFakeOnce((input) => {
        parameter = input.Value;
        return { Version: 2 };
      })
      .rejects(awsError('AccessDeniedException'));

    // Act
    const error = await publishError(publisher({ launchTemplateIds: [LT1] }));

    // Assess
    expect(parameter).toBe(IMAGE);
    expect(error.data).toMatchObject({
      notUndone: [
        `parameter ${NAME} may still hold ${IMAGE}; set it back to ` +
          `${PREVIOUS} (AccessDeniedException: AccessDeniedException ` +
          '(simulated))',
      ],
    });
  });

  it('changes nothing and needs no undo when the first read fails', async () => {
    // Prepare
    ssm.on(GetParameterCommand).rejects(awsError('ThrottlingException'));

    // Act
    const error = await publishError(publisher());

    // Assess
    expect(sent()).toEqual(['GetParameter']);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error.message).toContain('nothing had changed');
  });

  it('creates versions without touching defaults when told not to', async () => {
    // Prepare
    ec2
      .on(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: LT2 })
      .rejects(awsError('UnauthorizedOperation'));

    // Act
    await publishError(publisher({ setDefaultVersion: false }));

    // Assess
    expect(sent().slice(3)).toEqual([
      `CreateLaunchTemplateVersion ${LT1}`,
      `CreateLaunchTemplateVersion ${LT2}`,
      `DeleteLaunchTemplateVersions ${LT1} versions=4`,
      `PutParameter value=${PREVIOUS}`,
      'GetParameter',
    ]);
  });
});

describe('SsmPublisher.launchTemplateVersionsUsing', () => {
  it('asks each configured template for versions naming the image', async () => {
    // Prepare
    ec2
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: LT1 })
      .resolves({
        LaunchTemplateVersions: [{ VersionNumber: 4, DefaultVersion: true }],
      })
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: LT2 })
      .resolves({ LaunchTemplateVersions: [] });

    // Act
    const uses = await publisher().launchTemplateVersionsUsing(IMAGE);

    // Assess
    expect(uses).toEqual([`launch template ${LT1} version 4 (default)`]);
    expect(
      ec2
        .commandCalls(DescribeLaunchTemplateVersionsCommand)
        .map((call) => call.args[0].input),
    ).toEqual([
      {
        LaunchTemplateId: LT1,
        Filters: [{ Name: 'image-id', Values: [IMAGE] }],
      },
      {
        LaunchTemplateId: LT2,
        Filters: [{ Name: 'image-id', Values: [IMAGE] }],
      },
    ]);
  });
});

describe('SsmPublisher.history', () => {
  it('lists the values newest first', async () => {
    // Prepare
    ssm.on(GetParameterHistoryCommand).resolves({
      Parameters: [{ Value: PREVIOUS }, { Value: IMAGE }],
    });

    // Act
    const history = await publisher().history('trunk');

    // Assess
    expect(history).toEqual([IMAGE, PREVIOUS]);
    expect(
      ssm.commandCalls(GetParameterHistoryCommand)[0]?.args[0].input,
    ).toEqual({ Name: NAME });
  });

  it('is empty for a profile never published', async () => {
    ssm.on(GetParameterHistoryCommand).rejects(awsError('ParameterNotFound'));

    expect(await publisher().history('trunk')).toEqual([]);
  });

  it('turns throttling into ThrottledError', async () => {
    ssm.on(GetParameterHistoryCommand).rejects(awsError('ThrottlingException'));

    await expect(publisher().history('trunk')).rejects.toBeInstanceOf(
      ThrottledError,
    );
  });
});
