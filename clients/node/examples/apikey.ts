import type { IncomingMessage, ServerResponse } from 'node:http';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApiKeyError, ApiKeyVerifier, secretReader } from '@rotation-suite/client';

export function makeApiKeyVerifier(sm: SecretsManagerClient, verifierSecretArn: string, pepperSecretArn?: string) {
  return ApiKeyVerifier.create({
    source: secretReader(sm, verifierSecretArn),
    // only when the records use hmac-sha256
    pepper: pepperSecretArn ? async () => Buffer.from(await secretReader(sm, pepperSecretArn)()) : undefined,
  });
}

// A guard for node:http (Express and NestJS guards look the same): 401 without echoing the key.
export function apiKeyGuard(v: ApiKeyVerifier) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<string | undefined> => {
    const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    try {
      return await v.verify(key); // the key id, for logs and authorization
    } catch (e) {
      const reason = e instanceof ApiKeyError ? e.code : 'error';
      console.warn('api key refused', { keyId: e instanceof ApiKeyError ? e.keyId : undefined, reason }); // never the key
      res.writeHead(reason === 'no-keyring' ? 503 : 401).end();
      return undefined;
    }
  };
}
