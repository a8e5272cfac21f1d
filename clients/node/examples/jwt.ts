import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Envelope, JwtSigner, JwtVerifier, KmsProvider, currentSecret, secretReader } from '@rotation-suite/client';

// Signing service: kms:Decrypt on the JWT key (under the jwt-signing-key context) and
// secretsmanager:GetSecretValue on the signing-key secret.
export async function makeSigner(sm: SecretsManagerClient, kms: KMSClient, signingSecretArn: string, kmsKeyArn: string) {
  const envelope = new Envelope({ provider: await KmsProvider.create({ client: kms, keyId: kmsKeyArn }) });
  return JwtSigner.create({ secret: currentSecret(sm, signingSecretArn), envelope, refreshMs: 10 * 60_000 }); // ≤ JWT_SIGNER_CACHE
}

// Verifying service: GetSecretValue on the public-JWKS secret (or the signing-key secret); no KMS.
export async function makeVerifier(sm: SecretsManagerClient, publicJwksSecretArn: string) {
  return JwtVerifier.create({ source: secretReader(sm, publicJwksSecretArn), algorithms: ['ES256'] }); // pinned
}

export async function issueAndCheck(signer: JwtSigner, verifier: JwtVerifier): Promise<string | undefined> {
  const token = await signer.sign({ sub: 'user-1', iss: 'https://auth.example', exp: Math.floor(Date.now() / 1000) + 3600 });
  const { payload } = await verifier.verify(token, { issuer: 'https://auth.example', clockTolerance: 120 });
  return payload.sub;
}
