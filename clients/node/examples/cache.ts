import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ApiKeyVerifier, Envelope, JwtSigner, JwtVerifier, KmsProvider, SecretCache, cachedSecret, fromCache } from '@rotation-suite/client';

// One SecretCache per process, shared by every consumer; one SQS queue tells it about rotations.
export async function consumers(sm: SecretsManagerClient, kms: KMSClient, sqs: SQSClient, ids: { jwt: string; jwks: string; apiKeys: string; queueUrl: string; kmsKeyArn: string }) {
  const cache = new SecretCache({ client: sm, ttlMs: 5 * 60_000 });
  const stop = cache.subscribeQueue(sqs, ids.queueUrl);
  const envelope = new Envelope({ provider: await KmsProvider.create({ client: kms, keyId: ids.kmsKeyArn }) });
  return {
    signer: await JwtSigner.create({ secret: cachedSecret(cache, ids.jwt), envelope, refreshMs: 1000 }), // cheap: reads memory
    verifier: await JwtVerifier.create({ ...fromCache(cache, ids.jwks), algorithms: ['ES256'], refreshMs: 1000 }),
    apiKeys: await ApiKeyVerifier.create({ ...fromCache(cache, ids.apiKeys), refreshMs: 1000 }),
    stop,
  };
}
