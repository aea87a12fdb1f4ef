import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, type Template } from './package.ts';

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
  NotResource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** A statement and where it comes from. */
export interface OwnedStatement {
  /** Logical id of the role or managed policy. */
  readonly owner: string;
  readonly statement: Statement;
}

const NO_VALUE = { Ref: 'AWS::NoValue' };

/**
 * The items a list may hold once CloudFormation resolves it: both branches
 * of an `Fn::If` (a test must hold whatever the parameters are), without
 * `AWS::NoValue`.
 */
export function branches(value: unknown): unknown[] {
  if (isObject(value) && 'Fn::If' in value) {
    const [, whenTrue, whenFalse] = value['Fn::If'] as unknown[];
    return [...branches(whenTrue), ...branches(whenFalse)];
  }
  if (isObject(value) && JSON.stringify(value) === JSON.stringify(NO_VALUE)) {
    return [];
  }
  return [value];
}

/** Every statement of every identity policy in the template. */
export function identityStatements(template: Template): OwnedStatement[] {
  const found: OwnedStatement[] = [];
  const add = (owner: string, document: unknown) => {
    const statements = (document as { Statement?: unknown[] }).Statement ?? [];
    for (const item of statements.flatMap(branches)) {
      found.push({ owner, statement: item as Statement });
    }
  };
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type === 'AWS::IAM::Role') {
      for (const policy of resource.Properties?.Policies ?? []) {
        add(id, policy.PolicyDocument);
      }
    }
    if (
      resource.Type === 'AWS::IAM::ManagedPolicy' ||
      resource.Type === 'AWS::IAM::Policy'
    ) {
      add(id, resource.Properties?.PolicyDocument);
    }
  }
  return found;
}

export function actionsOf(statement: Statement): string[] {
  return ([] as string[]).concat(statement.Action ?? []);
}

/**
 * The resource patterns of a statement as text: `Fn::Sub` strings as
 * written, `Fn::Split`/`Fn::Join` of literals evaluated, references to
 * resources of the stack as `ref:Id` or `Id.Attribute` (always one ARN).
 */
export function resourceStrings(value: unknown): string[] {
  if (value === undefined) {
    return [];
  }
  if (typeof value === 'string') {
    return [value];
  }
  if (Array.isArray(value)) {
    return value.flatMap(resourceStrings);
  }
  if (!isObject(value)) {
    throw new Error(`unexpected resource ${JSON.stringify(value)}`);
  }
  if ('Fn::If' in value) {
    return branches(value).flatMap(resourceStrings);
  }
  if ('Fn::Sub' in value) {
    const sub = value['Fn::Sub'];
    return [Array.isArray(sub) ? String(sub[0]) : String(sub)];
  }
  if ('Fn::GetAtt' in value) {
    return [(value['Fn::GetAtt'] as string[]).join('.')];
  }
  if ('Ref' in value) {
    return [`ref:${String(value.Ref)}`];
  }
  if ('Fn::Split' in value) {
    const [separator, source] = value['Fn::Split'] as [string, unknown];
    return literal(source).split(separator);
  }
  throw new Error(`unexpected resource ${JSON.stringify(value)}`);
}

function literal(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  if (isObject(value) && 'Fn::Join' in value) {
    const [separator, parts] = value['Fn::Join'] as [string, unknown];
    const items = Array.isArray(parts)
      ? parts.map(literal)
      : resourceStrings(parts);
    return items.join(separator);
  }
  if (isObject(value) && 'Fn::Split' in value) {
    return resourceStrings(value).join(',');
  }
  throw new Error(`not a literal: ${JSON.stringify(value)}`);
}

/** `Operator: { key: value }` as `key -> values`. */
export function conditionValues(statement: Statement): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const keys of Object.values(statement.Condition ?? {})) {
    for (const [key, value] of Object.entries(keys)) {
      const list = branches(value).flatMap((item) =>
        Array.isArray(item) ? item.map(String) : [String(item)],
      );
      values.set(key, [...(values.get(key) ?? []), ...list]);
    }
  }
  return values;
}

/** Actions that only read (the IAM access levels List and Read). */
export function isReadOnly(action: string): boolean {
  return /^[a-z0-9-]+:(Describe|List|Get|BatchGet|Head)/.test(action);
}

// --------------------------------------------------- code path of a handler

/** The SDK client packages and their IAM service prefixes. */
const SERVICE_PREFIX: Record<string, string> = {
  'auto-scaling': 'autoscaling',
  codebuild: 'codebuild',
  ec2: 'ec2',
  kms: 'kms',
  s3: 's3',
  sfn: 'states',
  sns: 'sns',
  ssm: 'ssm',
};

/** SDK operations whose IAM action has another name, or more than one. */
const OPERATION_ACTIONS: Record<string, string[]> = {
  's3:HeadObject': ['s3:GetObject'],
  's3:ListObjectsV2': ['s3:ListBucket'],
  // With a VersionId, GetObject is authorized as GetObjectVersion.
  's3:GetObject': ['s3:GetObject', 's3:GetObjectVersion'],
};

/**
 * The IAM actions of every AWS SDK command (or paginator) imported by any
 * module the handler's entry reaches. Imports are a superset of the calls
 * the handler's code path can send: a role that grants more than this
 * grants an action its function never calls.
 */
export async function reachableActions(entry: string): Promise<Set<string>> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
  });
  const actions = new Set<string>();
  for (const input of Object.keys(result.metafile?.inputs ?? {})) {
    const source = await readFile(join(ROOT, input), 'utf8');
    for (const action of importedActions(source)) {
      actions.add(action);
    }
  }
  return actions;
}

/** Actions of the commands a module imports from `@aws-sdk/client-*`. */
export function importedActions(source: string): string[] {
  const imports = source.matchAll(
    /import\s+(type\s+)?\{([^}]*)\}\s*from\s*'@aws-sdk\/client-([a-z0-9-]+)'/g,
  );
  const actions: string[] = [];
  for (const [, typeOnly, names = '', client = ''] of imports) {
    const prefix = SERVICE_PREFIX[client];
    if (typeOnly !== undefined || prefix === undefined) {
      continue;
    }
    for (const raw of names.split(',')) {
      const name = raw.trim();
      const operation = name.startsWith('type ')
        ? undefined
        : name.endsWith('Command')
          ? name.slice(0, -'Command'.length)
          : name.startsWith('paginate')
            ? name.slice('paginate'.length)
            : undefined;
      if (operation !== undefined && operation.length > 0) {
        const action = `${prefix}:${operation}`;
        actions.push(...(OPERATION_ACTIONS[action] ?? [action]));
      }
    }
  }
  return actions;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ------------------------------------------------ statements by owner

/** A wildcard in the resource part of an ARN (not in account or region). */
export function hasWildcardResource(arn: string): boolean {
  const parts = arn.replace(/\$\{[^}]*\}/g, 'x').split(':');
  return (parts.length >= 6 ? parts.slice(5).join(':') : arn).includes('*');
}

export function allowed(template: Template): OwnedStatement[] {
  return identityStatements(template).filter(
    (item) => item.statement.Effect === 'Allow',
  );
}

export function grantedActions(template: Template, owner: string): Set<string> {
  return new Set(
    allowed(template)
      .filter((item) => item.owner === owner)
      .flatMap((item) => actionsOf(item.statement)),
  );
}

export function statementBySid(
  template: Template,
  owner: string,
  sid: string,
): Statement {
  const found = identityStatements(template).find(
    (item) => item.owner === owner && item.statement.Sid === sid,
  );
  if (found === undefined) {
    throw new Error(`${owner} has no statement ${sid}`);
  }
  return found.statement;
}
