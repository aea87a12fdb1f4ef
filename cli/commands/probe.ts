import type { Command } from 'commander';
import {
  formatReport,
  GENESYS_CIPHERS,
  LIMITS,
  type ProbeOptions,
  ProbeOptionsError,
  type ProbeReport,
  parseClosedPorts,
  runProbe,
} from '../../functions/lib/probe/index.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../exit.ts';
import type { RegisterCommand } from '../main.ts';

/** The flags of `sbc-ami probe`, as commander hands them over. */
export interface ProbeFlags {
  sni?: string;
  ca?: string;
  udpPort: string;
  tcpPort: string;
  tlsPort: string;
  minDays: string;
  timeout: string;
  closed?: string;
  accept: string;
  ciphers: string;
  json?: boolean;
}

export interface CommandOutput {
  readonly out?: (text: string) => void;
}

/** The flag a person typed for each probe option, for error messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  host: 'HOST',
  sni: '--sni',
  caFile: '--ca',
  udpPort: '--udp-port',
  tcpPort: '--tcp-port',
  tlsPort: '--tls-port',
  minDays: '--min-days',
  timeoutMs: '--timeout',
  closed: '--closed',
  acceptedStatuses: '--accept',
  allowedCiphers: '--ciphers',
};

export const registerProbe: RegisterCommand = (
  program: Command,
  exit: (code: number) => void,
) => {
  program
    .command('probe')
    .description(
      'SIP OPTIONS over UDP, TCP and TLS, and the TLS a Genesys trunk needs',
    )
    .argument('<host>', 'address or name of the SBC')
    .option('--sni <name>', 'FQDN sent as SNI and checked (default: HOST)')
    .option('--ca <file>', 'CA bundle, PEM (default: the system store)')
    .option('--udp-port <port>', 'SIP over UDP', '5060')
    .option('--tcp-port <port>', 'SIP over TCP', '5060')
    .option('--tls-port <port>', 'SIP over TLS', '5061')
    .option('--min-days <n>', 'days the certificate must still be valid', '14')
    .option('--timeout <ms>', 'budget of each check', '5000')
    .option('--closed <list>', 'ports that must not answer: 22/tcp,2223/udp')
    .option('--accept <statuses>', 'final statuses that pass: 200,...', '200')
    .option(
      '--ciphers <list>',
      'allowed TLS 1.2 suites, OpenSSL names, colon-separated',
      GENESYS_CIPHERS.join(':'),
    )
    .option('--json', 'print the report as JSON')
    .action(async (host: string, flags: ProbeFlags) => {
      exit(await runProbeCommand(host, flags));
    });
};

/**
 * Probes an SBC and prints the report; resolves to the exit code (0 every
 * check passed, 1 one failed). A bad flag throws `UsageError` naming it.
 */
export async function runProbeCommand(
  host: string,
  flags: ProbeFlags,
  output: CommandOutput = {},
): Promise<number> {
  const out = output.out ?? ((text: string) => console.log(text));
  const report = await probeWithFlags(toOptions(host, flags));
  out(
    flags.json === true
      ? JSON.stringify(report, null, 2)
      : formatReport(report),
  );
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

function toOptions(host: string, flags: ProbeFlags): ProbeOptions {
  return {
    host,
    ...(flags.sni === undefined ? {} : { sni: flags.sni }),
    ...(flags.ca === undefined ? {} : { caFile: flags.ca }),
    udpPort: whole('--udp-port', flags.udpPort, PORT),
    tcpPort: whole('--tcp-port', flags.tcpPort, PORT),
    tlsPort: whole('--tls-port', flags.tlsPort, PORT),
    minDays: whole('--min-days', flags.minDays, DAYS),
    timeoutMs: whole('--timeout', flags.timeout, TIMEOUT),
    closed: asUsage(() => parseClosedPorts(flags.closed ?? '')),
    acceptedStatuses: statuses(flags.accept),
    allowedCiphers: flags.ciphers
      .split(':')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  };
}

async function probeWithFlags(options: ProbeOptions): Promise<ProbeReport> {
  try {
    return await runProbe(options);
  } catch (error) {
    throw usageErrorFrom(error);
  }
}

function asUsage<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw usageErrorFrom(error);
  }
}

/** A bad option becomes a usage error that names the flag; others pass. */
function usageErrorFrom(error: unknown): unknown {
  if (!(error instanceof ProbeOptionsError)) {
    return error;
  }
  const option = error.field.split('.')[0] ?? error.field;
  const flag = FLAG_OF[option] ?? option;
  return new UsageError(`${flag}: ${error.problem}`, { cause: error });
}

/** What a number flag takes, for the message when it gets something else. */
interface NumberFlag {
  readonly what: string;
  readonly min: number;
  readonly max: number;
}

const PORT: NumberFlag = { what: 'a port', ...LIMITS.port };
const DAYS: NumberFlag = { what: 'a whole number of days', ...LIMITS.minDays };
const TIMEOUT: NumberFlag = {
  what: 'a whole number of milliseconds',
  ...LIMITS.timeoutMs,
};
const STATUS: NumberFlag = { what: 'a SIP status', ...LIMITS.status };

/** A whole number within the flag's range, or a usage error saying so. */
function whole(flag: string, text: string, spec: NumberFlag): number {
  const trimmed = text.trim();
  const number = /^[0-9]{1,9}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!(number >= spec.min && number <= spec.max)) {
    throw new UsageError(
      `${flag}: must be ${spec.what} from ${spec.min} to ${spec.max}, ` +
        `got ${JSON.stringify(text)}`,
    );
  }
  return number;
}

/** `--accept 200,202`: each item a status, named by its place. */
function statuses(text: string): number[] {
  const items = text.split(',');
  return items.map((item, index) =>
    whole(
      items.length > 1 ? `--accept item ${index + 1}` : '--accept',
      item,
      STATUS,
    ),
  );
}
