import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { RotatingPool, SecretCache } from '@rotation-suite/client';

// One cache per process; the queue is subscribed to the suite's SNS topic (or targeted by an
// EventBridge rule for RotationSucceeded), so a rotation is picked up at once, not after the TTL.
export function makePool(sm: SecretsManagerClient, sqs: SQSClient, dbSecretArn: string, queueUrl: string, caBundleFile?: string) {
  const cache = new SecretCache({ client: sm }); // TTL 5 min, served stale while it refreshes
  const stopInvalidation = cache.subscribeQueue(sqs, queueUrl);
  const pool = new RotatingPool({
    cache,
    secretId: dbSecretArn,
    tls: { caBundleFile }, // e.g. Amazon RDS's global bundle; the secret's sslmode and CA are honoured
    pool: { max: 10 },
  });
  return { pool, close: async () => { await stopInvalidation(); await pool.end(); } };
}
