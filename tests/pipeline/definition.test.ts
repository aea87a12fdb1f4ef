import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import {
  DEFINITION_FILE,
  loadDefinition,
  taskFunctions,
} from '../../functions/lib/local/state-machine.ts';
import { taskHandlers } from '../../functions/tasks.ts';
import { BEGIN, END, mermaidDiagram, README } from '../../scripts/diagram.ts';

interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  BackoffRate?: number;
  JitterStrategy?: string;
  MaxAttempts?: number;
}

interface State {
  Type: string;
  Resource?: string;
  Retry?: Retrier[];
  Catch?: { ErrorEquals: string[]; ResultPath?: string; Next: string }[];
  Choices?: { Variable: string; Next: string }[];
  Default?: string;
  SecondsPath?: string;
  Next?: string;
}

const text = readFileSync(DEFINITION_FILE, 'utf8');
const states = loadDefinition().States as unknown as Record<string, State>;
const tasks = Object.entries(states).filter(([, s]) => s.Type === 'Task');

/** The transient errors every Task must retry. */
const TRANSIENT = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'ThrottledError',
];

describe('statemachine/pipeline.asl.json', () => {
  it('is valid ASL for asl-validator once its ARNs are substituted', () => {
    const substituted = JSON.parse(
      text.replace(
        /\$\{(\w+)\}/g,
        'arn:aws:lambda:eu-west-1:111122223333:function:$1',
      ),
    );

    const result = aslValidator(substituted);

    expect(result.errorsText?.('\n') ?? '').toBe('');
    expect(result.isValid).toBe(true);
  });

  it('writes no function ARN in: every Task resource is a substitution', () => {
    for (const [name, state] of tasks) {
      expect(state.Resource, name).toMatch(/^\$\{\w+FunctionArn\}$/);
    }
    expect(text).not.toMatch(/arn:aws:lambda/);
  });

  it('binds every substituted function to a handler file and a handler', () => {
    const handlers = taskHandlers(() => {
      throw new Error('no dependencies are needed to bind handlers');
    });
    for (const fn of new Set(Object.values(taskFunctions()))) {
      const file = fn.replace(
        /[A-Z]/g,
        (c, i) => `${i ? '-' : ''}${c.toLowerCase()}`,
      );
      expect(
        existsSync(
          join(import.meta.dirname, '..', '..', 'functions', `${file}.ts`),
        ),
        fn,
      ).toBe(true);
      expect(handlers[fn], fn).toBeTypeOf('function');
    }
  });

  it('retries transient errors in every Task with backoff and full jitter', () => {
    for (const [name, state] of tasks) {
      const covered = new Set(
        (state.Retry ?? [])
          .filter(
            (r) =>
              (r.BackoffRate ?? 0) >= 2 &&
              r.JitterStrategy === 'FULL' &&
              (r.MaxAttempts ?? 0) >= 3,
          )
          .flatMap((r) => r.ErrorEquals),
      );
      for (const error of TRANSIENT) {
        expect(covered.has(error), `${name} retries ${error}`).toBe(true);
      }
    }
  });

  it('catches everything in every Task, keeping the input beside the error', () => {
    for (const [name, state] of tasks) {
      const all = state.Catch?.find((c) =>
        c.ErrorEquals.includes('States.ALL'),
      );
      expect(all, `${name} catches States.ALL`).toBeDefined();
      expect(all?.ResultPath, name).toMatch(/^\$\.\w+/);
      expect(states[all?.Next ?? ''], name).toBeDefined();
    }
  });

  it('routes every caught pipeline error into the failure path', () => {
    const failurePath = new Set([
      'TerminateAfterFailure',
      'NotifyRejected',
      // Steps after the image is published: their failure is reported, not fatal.
      'CleanupOrphans',
      'NotifySuccess',
      'Published',
      // The failure path itself goes on to its next step.
      'DiscardImage',
      'SweepBuildLeftovers',
      'NotifyFailure',
      'FailedUnnotified',
      // A queued build that failed for CodeBuild's reasons starts again.
      'StartBuild',
    ]);
    for (const [name, state] of tasks) {
      for (const caught of state.Catch ?? []) {
        expect(failurePath.has(caught.Next), `${name} -> ${caught.Next}`).toBe(
          true,
        );
      }
    }
  });

  it('bounds every wait loop by an attempt cap that takes the failure path', () => {
    const waits = Object.entries(states).filter(([, s]) => s.Type === 'Wait');
    expect(waits.map(([name]) => name)).toEqual([
      'WaitForBuild',
      'WaitForImage',
      'WaitForTestInstance',
    ]);
    for (const [name, wait] of waits) {
      const check = states[wait.Next ?? ''];
      const choice = states[check?.Next ?? ''];
      expect(choice?.Type, name).toBe('Choice');
      expect(choice?.Default, name).toBe(name);
      const cap = choice?.Choices?.find((c) =>
        c.Variable.endsWith('.poll.attempt'),
      );
      expect(cap, `${name} has an attempt cap`).toBeDefined();
      const expired = states[cap?.Next ?? ''];
      expect(expired?.Next, name).toBe('TerminateAfterFailure');
      expect(wait.SecondsPath, name).toMatch(/\.poll\.waitSeconds$/);
    }
  });
});

describe('README architecture diagram', () => {
  it('is the diagram generated from the definition', () => {
    const readme = readFileSync(README, 'utf8');
    const begin = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);

    expect(begin).toBeGreaterThanOrEqual(0);
    expect(readme.slice(begin + BEGIN.length, end).trim()).toBe(
      mermaidDiagram().trim(),
    );
  });
});
