import {
  BatchGetBuildsCommand,
  type Build,
  type CodeBuildClient,
  ListBuildsForProjectCommand,
} from '@aws-sdk/client-codebuild';
import { throttleAware } from '../errors.ts';
import { ApiCallCounter, collectPages } from './paging.ts';

/** The environment variable that carries the run id into the build. */
export const RUN_ID_VARIABLE = 'RUN_ID';

/**
 * CodeBuild's longest build timeout (36 h) plus its longest queue timeout
 * (8 h): a build that started earlier than this cannot still be running.
 */
export const MAX_BUILD_HOURS = 44;

export interface CodeBuildRunLookupOptions {
  readonly codeBuild: CodeBuildClient;
  readonly projectName: string;
  readonly runIdVariable?: string;
  readonly maxBuildHours?: number;
  readonly counter?: ApiCallCounter;
  readonly now?: () => Date;
}

interface RunningBuilds {
  readonly runIds: ReadonlySet<string>;
  /** An unfinished build whose run id cannot be read: assume every run. */
  readonly unidentified: string[];
}

/**
 * Answers "is this run's build still running?" from the project's recent
 * builds, listed once (newest first) and read in batches of 100: the cost
 * does not grow with the number of images or runs asked about.
 */
export class CodeBuildRunLookup {
  readonly options: CodeBuildRunLookupOptions;
  readonly counter: ApiCallCounter;
  private running: Promise<RunningBuilds> | undefined;

  constructor(options: CodeBuildRunLookupOptions) {
    this.options = options;
    this.counter = options.counter ?? new ApiCallCounter();
  }

  readonly isBuildRunning = async (runId: string): Promise<boolean> => {
    this.running ??= this.load();
    const running = await this.running;
    return running.unidentified.length > 0 || running.runIds.has(runId);
  };

  private async load(): Promise<RunningBuilds> {
    const variable = this.options.runIdVariable ?? RUN_ID_VARIABLE;
    const now = (this.options.now ?? (() => new Date()))().getTime();
    const oldest =
      now - (this.options.maxBuildHours ?? MAX_BUILD_HOURS) * 3_600_000;
    const runIds = new Set<string>();
    const unidentified: string[] = [];

    await collectPages('ListBuildsForProject', async (token) => {
      const page = await this.call('ListBuildsForProject', () =>
        this.options.codeBuild.send(
          new ListBuildsForProjectCommand({
            projectName: this.options.projectName,
            sortOrder: 'DESCENDING',
            nextToken: token,
          }),
        ),
      );
      const builds = await this.read(page.ids ?? []);
      for (const build of builds) {
        if (build.buildComplete === true) {
          continue;
        }
        const runId = build.environment?.environmentVariables?.find(
          (entry) => entry.name === variable,
        )?.value;
        if (runId === undefined || runId === '') {
          unidentified.push(build.id ?? '(unknown build)');
        } else {
          runIds.add(runId);
        }
      }
      // Newest first: once a whole page started before the longest
      // possible build, no later page can hold a running one.
      const done =
        builds.length > 0 &&
        builds.every(
          (build) =>
            build.buildComplete === true &&
            (build.startTime?.getTime() ?? 0) < oldest,
        );
      return { items: [], next: page.nextToken, done };
    });
    return { runIds, unidentified };
  }

  private async read(ids: readonly string[]): Promise<Build[]> {
    if (ids.length === 0) {
      return [];
    }
    const output = await this.call('BatchGetBuilds', () =>
      this.options.codeBuild.send(new BatchGetBuildsCommand({ ids: [...ids] })),
    );
    return output.builds ?? [];
  }

  private call<T>(command: string, send: () => Promise<T>): Promise<T> {
    this.counter.add(command);
    return throttleAware(command, send);
  }
}
