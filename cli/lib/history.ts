import {
  GetExecutionHistoryCommand,
  type HistoryEvent,
  paginateGetExecutionHistory,
  type SFNClient,
} from '@aws-sdk/client-sfn';

/** The most GetExecutionHistory returns in one page. */
const PAGE_SIZE = 1000;

/**
 * Every event of an execution, oldest first, following `nextToken` to the
 * last page. The pipeline stays far below the 25,000-event limit, so a
 * whole history is a few pages at most.
 */
export async function readHistory(
  client: SFNClient,
  executionArn: string,
): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  const pages = paginateGetExecutionHistory(
    { client, pageSize: PAGE_SIZE },
    { executionArn, includeExecutionData: true },
  );
  for await (const page of pages) {
    events.push(...(page.events ?? []));
  }
  return events;
}

/** The state an execution entered last, read from the end of its history. */
export async function lastStateEntered(
  client: SFNClient,
  executionArn: string,
): Promise<{ name: string; type: string } | undefined> {
  // After the last state entered come only its task's attempts (three
  // events each, at most 11 attempts under the ASL's Retry policies) and
  // the execution's end: one page from the end holds it.
  const page = await client.send(
    new GetExecutionHistoryCommand({
      executionArn,
      reverseOrder: true,
      maxResults: 100,
      includeExecutionData: false,
    }),
  );
  for (const event of page.events ?? []) {
    const type = event.type ?? '';
    if (type.endsWith('StateEntered')) {
      return {
        name: event.stateEnteredEventDetails?.name ?? '?',
        type: type.slice(0, -'StateEntered'.length),
      };
    }
  }
  return undefined;
}
