// The aws-kms provider of the envelope (docs/envelope-format.md §5): data
// keys from GenerateDataKey under the canonical context's pairs, unwrapped
// with Decrypt pinned to the key ARN named in the blob, on an allow-list of
// ARNs resolved once with DescribeKey.

import { DecryptCommand, DescribeKeyCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { EnvelopeError, PROVIDER_KMS, type DataKey, type EncryptionContext, type Provider } from './envelope.js';

export interface KmsProviderConfig {
  client: KMSClient;
  /** The key that wraps new data keys: an ARN, key id or alias (resolved to its ARN once). */
  keyId: string;
  /** More keys whose blobs may be opened (old keys after a key move); resolved the same way. */
  decryptKeyIds?: string[];
}

const isKeyArn = (s: string) => /^arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(s);

/** The aws-kms provider (id 0x01). Create it with KmsProvider.create. */
export class KmsProvider implements Provider {
  readonly id = PROVIDER_KMS;
  readonly #client: KMSClient;
  readonly #arn: string;
  readonly #allow: Set<string>;
  /** KMS calls made (for tests and metrics). */
  calls = 0;

  private constructor(client: KMSClient, arn: string, allow: Set<string>) {
    this.#client = client;
    this.#arn = arn;
    this.#allow = allow;
  }

  static async create(cfg: KmsProviderConfig): Promise<KmsProvider> {
    const resolve = async (id: string) => {
      if (isKeyArn(id)) return id;
      try {
        const out = await cfg.client.send(new DescribeKeyCommand({ KeyId: id }));
        const arn = out.KeyMetadata?.Arn;
        if (!arn || !isKeyArn(arn)) throw new Error('DescribeKey returned no key ARN');
        return arn;
      } catch (e) {
        throw new EnvelopeError('provider', 'kms:DescribeKey', `resolve ${JSON.stringify(id)}`, { cause: e });
      }
    };
    const arn = await resolve(cfg.keyId);
    const allow = new Set([arn]);
    for (const k of cfg.decryptKeyIds ?? []) allow.add(await resolve(k));
    return new KmsProvider(cfg.client, arn, allow);
  }

  get keyArn(): string {
    return this.#arn;
  }

  allowed(keyId: string): boolean {
    return this.#allow.has(keyId);
  }

  async generateDataKey(ec: EncryptionContext): Promise<DataKey> {
    this.calls++;
    const ctx = Object.keys(ec).length ? { ...ec } : undefined; // an empty context is sent as none
    const out = await this.#client.send(new GenerateDataKeyCommand({ KeyId: this.#arn, KeySpec: 'AES_256', EncryptionContext: ctx })).catch((e) => {
      throw kmsError('kms:GenerateDataKey', e);
    });
    if (!out.Plaintext || out.Plaintext.length !== 32 || !out.CiphertextBlob || out.KeyId !== this.#arn) {
      throw new EnvelopeError('provider', 'kms:GenerateDataKey', 'unexpected response');
    }
    return { keyId: this.#arn, encrypted: Buffer.from(out.CiphertextBlob), plaintext: Buffer.from(out.Plaintext) };
  }

  async decryptDataKey(keyId: string, wrapped: Buffer, ec: EncryptionContext): Promise<DataKey> {
    if (!this.#allow.has(keyId)) throw new EnvelopeError('key-not-allowed', 'kms:Decrypt', `key ${keyId}`);
    this.calls++;
    const ctx = Object.keys(ec).length ? { ...ec } : undefined;
    const out = await this.#client.send(new DecryptCommand({ CiphertextBlob: wrapped, KeyId: keyId, EncryptionContext: ctx })).catch((e) => {
      throw kmsError('kms:Decrypt', e);
    });
    if (out.KeyId !== keyId) throw new EnvelopeError('key-not-allowed', 'kms:Decrypt', 'KMS answered for another key');
    if (!out.Plaintext || out.Plaintext.length !== 32) throw new EnvelopeError('authentication', 'kms:Decrypt', 'the data key is not 32 bytes');
    return { keyId, encrypted: wrapped, plaintext: Buffer.from(out.Plaintext) };
  }
}

/** InvalidCiphertextException (a wrong context, key or damaged blob) is an authentication failure; the rest are provider failures. */
function kmsError(op: string, e: unknown): EnvelopeError {
  const name = (e as { name?: string })?.name ?? '';
  if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') return new EnvelopeError('authentication', op, name, { cause: e });
  return new EnvelopeError('provider', op, name || 'request failed', { cause: e });
}
