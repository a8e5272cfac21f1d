// Readers of a secret's AWSCURRENT, through Secrets Manager or through the
// service's SecretCache: SecretReader for the JWT signer, fromCache for the
// JWT and API-key verifiers.

import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretCache } from '../cache.js';

/** Reads the AWSCURRENT value of a secret: its name and SecretString. */
export type SecretReader = () => Promise<{ name: string; value: string }>;

/** A SecretReader through the service's SecretCache (a fresh value from memory; the cache refreshes it). */
export function cachedSecret(cache: SecretCache, secretId: string): SecretReader {
  return async () => {
    const v = await cache.get(secretId);
    return { name: v.name, value: v.value };
  };
}

/** The source and forced source of a secret's text through a SecretCache (for JwtVerifier and ApiKeyVerifier). */
export function fromCache(cache: SecretCache, secretId: string): { source: () => Promise<string>; forcedSource: () => Promise<string> } {
  return { source: async () => (await cache.get(secretId)).value, forcedSource: async () => (await cache.refresh(secretId)).value };
}

/** A SecretReader of AWSCURRENT through Secrets Manager (asked for by stage). */
export function currentSecret(sm: SecretsManagerClient, secretId: string): SecretReader {
  return async () => {
    const out = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
    return { name: out.Name ?? '', value: out.SecretString ?? '' };
  };
}
