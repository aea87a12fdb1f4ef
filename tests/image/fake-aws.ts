import { createHash, createHmac } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * Stand-ins on loopback for what sbc-first-boot talks to on EC2: the
 * instance metadata service (IMDSv2) and the JSON APIs of Secrets Manager
 * and SSM over HTTPS. Every request is recorded, and each AWS request's
 * SigV4 signature is recomputed with the SDK's own signer.
 */

export interface RoleCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

export interface Instance {
  readonly privateIp: string;
  /** Undefined: the instance has no public address (IMDS answers 404). */
  readonly publicIp?: string;
  readonly region: string;
  readonly role: string;
  readonly credentials: RoleCredentials;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** AWS requests only: the recomputed signature matched. */
  readonly signatureValid?: boolean;
}

export interface FakeAws {
  readonly imdsEndpoint: string;
  readonly awsEndpoint: string;
  readonly imdsRequests: RecordedRequest[];
  readonly awsRequests: RecordedRequest[];
  /** Secret ids (Secrets Manager) and parameter names (SSM) with values. */
  readonly values: Map<string, string>;
  close(): Promise<void>;
}

const TOKEN = 'imds-session-token-for-tests';
/** Credential scope (key, date, region, service), signed headers, signature. */
const AUTHORIZATION = new RegExp(
  '^AWS4-HMAC-SHA256 ' +
    'Credential=([^/]+)/(\\d{8})/([^/]+)/([^/]+)/aws4_request, ?' +
    'SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$',
);

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): string | Buffer {
  if (typeof data === 'string') {
    return data;
  }
  return ArrayBuffer.isView(data)
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(data);
}

/** node:crypto in the shape the SDK signer expects. */
class Sha256 {
  private readonly hash;

  constructor(secret?: SourceData) {
    this.hash =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', bytes(secret));
  }

  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

export async function startFakeAws(
  instance: Instance,
  tls: { cert: string; key: string },
): Promise<FakeAws> {
  const imdsRequests: RecordedRequest[] = [];
  const awsRequests: RecordedRequest[] = [];
  const values = new Map<string, string>();

  const imds = createHttpServer(async (request, response) => {
    const body = await readBody(request);
    imdsRequests.push({
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body,
    });
    const reply = (status: number, text: string) => {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(text);
    };

    if (request.method === 'PUT' && request.url === '/latest/api/token') {
      const ttl = request.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      return ttl === undefined ? reply(400, 'no TTL') : reply(200, TOKEN);
    }
    if (request.headers['x-aws-ec2-metadata-token'] !== TOKEN) {
      return reply(401, 'IMDSv2 token required');
    }
    const base = '/latest/meta-data/';
    const credentialsPath = `${base}iam/security-credentials/`;
    const answers: Record<string, string | undefined> = {
      [`${base}local-ipv4`]: instance.privateIp,
      [`${base}public-ipv4`]: instance.publicIp,
      [`${base}placement/region`]: instance.region,
      [`${base}services/domain`]: 'amazonaws.com',
      [credentialsPath]: instance.role,
      [`${credentialsPath}${instance.role}`]: JSON.stringify({
        Code: 'Success',
        Type: 'AWS-HMAC',
        AccessKeyId: instance.credentials.accessKeyId,
        SecretAccessKey: instance.credentials.secretAccessKey,
        Token: instance.credentials.sessionToken,
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }),
    };
    const answer = answers[request.url ?? ''];
    return answer === undefined ? reply(404, 'Not Found') : reply(200, answer);
  });

  const aws = createHttpsServer(tls, async (request, response) => {
    const body = await readBody(request);
    const target = String(request.headers['x-amz-target'] ?? '');
    const service = target.startsWith('AmazonSSM.') ? 'ssm' : 'secretsmanager';
    const signatureValid = await verifySignature(
      request.method ?? 'POST',
      request.url ?? '/',
      request.headers,
      body,
      service,
      instance,
    );
    awsRequests.push({
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body,
      signatureValid,
    });
    const reply = (status: number, json: unknown) => {
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
      });
      response.end(JSON.stringify(json));
    };

    if (!signatureValid) {
      return reply(403, {
        __type: 'InvalidSignatureException',
        message: 'The request signature does not match',
      });
    }
    const input = JSON.parse(body || '{}') as Record<string, unknown>;
    if (target === 'secretsmanager.GetSecretValue') {
      const value = values.get(String(input.SecretId));
      return value === undefined
        ? reply(400, {
            __type: 'ResourceNotFoundException',
            message: "Secrets Manager can't find the specified secret.",
          })
        : reply(200, {
            Name: input.SecretId,
            SecretString: value,
            VersionId: 'v1',
          });
    }
    if (target === 'AmazonSSM.GetParameter') {
      const value = values.get(String(input.Name));
      if (value === undefined) {
        return reply(400, { __type: 'ParameterNotFound', message: '' });
      }
      return reply(200, {
        Parameter: {
          Name: input.Name,
          Type: 'SecureString',
          Value: input.WithDecryption === true ? value : 'AQICAHencrypted',
        },
      });
    }
    return reply(400, { __type: 'UnknownOperationException' });
  });

  const imdsPort = await listen(imds);
  const awsPort = await listen(aws);
  return {
    imdsEndpoint: `http://127.0.0.1:${imdsPort}`,
    awsEndpoint: `https://127.0.0.1:${awsPort}`,
    imdsRequests,
    awsRequests,
    values,
    close: async () => {
      await Promise.all([close(imds), close(aws)]);
    },
  };
}

/**
 * Signs the same request again with the SDK's signer, over exactly the
 * headers the client signed, and compares the signatures.
 */
async function verifySignature(
  method: string,
  path: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  service: string,
  instance: Instance,
): Promise<boolean> {
  const authorization = String(headers.authorization ?? '');
  const match = AUTHORIZATION.exec(authorization);
  if (match === null) {
    return false;
  }
  const [, keyId, , region, scopeService, signedList, signature] = match;
  if (
    keyId !== instance.credentials.accessKeyId ||
    region !== instance.region ||
    scopeService !== service
  ) {
    return false;
  }

  const signedHeaders: Record<string, string> = {};
  for (const name of (signedList ?? '').split(';')) {
    signedHeaders[name] = String(headers[name] ?? '');
  }
  const amzDate = String(headers['x-amz-date'] ?? '');
  const signingDate = new Date(
    amzDate.replace(
      /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
      '$1-$2-$3T$4:$5:$6Z',
    ),
  );
  const [pathname = '/', query = ''] = path.split('?');
  const signer = new SignatureV4({
    service,
    region: instance.region,
    credentials: {
      accessKeyId: instance.credentials.accessKeyId,
      secretAccessKey: instance.credentials.secretAccessKey,
      // Signed when the client signed it; otherwise it only rides along.
      ...(signedHeaders['x-amz-security-token'] === undefined
        ? {}
        : { sessionToken: instance.credentials.sessionToken }),
    },
    sha256: Sha256,
    // Only S3 signs a payload hash header; these JSON APIs do not.
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method,
      protocol: 'https:',
      hostname: String(headers.host ?? '').split(':')[0] ?? '',
      path: pathname,
      query: Object.fromEntries(new URLSearchParams(query)),
      headers: signedHeaders,
      body,
    },
    { signingDate },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(
    String(signed.headers.authorization ?? ''),
  )?.[1];
  return expected === signature;
}

function readBody(request: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
