package envelope

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/rotation-suite/rotation/pkg/extcall"
)

// KMSClient is the subset of *kms.Client the KMS provider uses. Tests wrap
// the real client to count calls.
type KMSClient interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// KMSConfig configures a KMSProvider.
type KMSConfig struct {
	// Client is a KMS client (a *kms.Client). Throttling and transient errors
	// are retried by the client's own retryer (the SDK's standard retryer by
	// default; set aws.Config.Retryer or kms.Options.Retryer to change it).
	Client KMSClient
	// KeyID is the key new data keys are generated under: a key ARN, a key
	// id, an alias name ("alias/app") or an alias ARN.
	KeyID string
	// AllowedKeyIDs are further keys whose blobs may be decrypted (keys a
	// blob may have been wrapped under before a move), in the same forms.
	// KeyID is always allowed.
	AllowedKeyIDs []string
}

// KMSProvider wraps data keys with AWS KMS. Key identifiers that are not
// key ARNs (key ids, aliases, alias ARNs) are resolved to key ARNs with
// DescribeKey once, in NewKMSProvider: the allow-list holds key ARNs only, so
// re-pointing an alias later neither widens nor narrows it, and each blob
// names the key ARN that wrapped it. Decrypt passes that ARN as KeyId (KMS
// refuses a ciphertext under any other key) and checks the KeyId KMS reports.
type KMSProvider struct {
	client  KMSClient
	keyARN  string
	allowed map[string]bool
}

var _ Provider = (*KMSProvider)(nil)

// NewKMSProvider resolves the configured keys to key ARNs and returns the
// provider. Key ARNs are taken as they are (no call); every other form costs
// one kms:DescribeKey at construction.
func NewKMSProvider(ctx context.Context, cfg KMSConfig) (*KMSProvider, error) {
	if cfg.Client == nil || cfg.KeyID == "" {
		return nil, newErr(ErrMalformed, "new", "KMSConfig.Client and KMSConfig.KeyID are required")
	}
	p := &KMSProvider{client: cfg.Client, allowed: map[string]bool{}}
	arn, err := p.resolve(ctx, cfg.KeyID)
	if err != nil {
		return nil, err
	}
	p.keyARN = arn
	p.allowed[arn] = true
	for _, id := range cfg.AllowedKeyIDs {
		arn, err := p.resolve(ctx, id)
		if err != nil {
			return nil, err
		}
		p.allowed[arn] = true
	}
	return p, nil
}

// isKeyARN reports whether id is a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID).
func isKeyARN(id string) bool {
	parts := strings.SplitN(id, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" && strings.HasPrefix(parts[5], "key/") && len(parts[5]) > len("key/")
}

func (p *KMSProvider) resolve(ctx context.Context, id string) (string, error) {
	if isKeyARN(id) {
		return id, nil
	}
	var out *kms.DescribeKeyOutput
	err := extcall.Do(ctx, "kms:DescribeKey", func(ctx context.Context) error {
		var err error
		out, err = p.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		return err
	})
	if err != nil {
		return "", kmsError("kms:DescribeKey", "resolving "+id, err)
	}
	if out.KeyMetadata == nil || !isKeyARN(aws.ToString(out.KeyMetadata.Arn)) {
		return "", newErr(ErrProvider, "kms:DescribeKey", "no key ARN for %q", id)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// ID returns ProviderKMS.
func (p *KMSProvider) ID() ProviderID { return ProviderKMS }

// KeyARN returns the ARN of the key new data keys are generated under.
func (p *KMSProvider) KeyARN() string { return p.keyARN }

// Allowed reports whether keyID is a key ARN on the allow-list.
func (p *KMSProvider) Allowed(keyID string) bool { return p.allowed[keyID] }

func (p *KMSProvider) allowedBytes(keyID []byte) bool { return p.allowed[string(keyID)] }

// GenerateDataKey calls kms:GenerateDataKey (AES_256) with ec as the
// encryption context and checks the key KMS used.
func (p *KMSProvider) GenerateDataKey(ctx context.Context, ec Context) (*DataKey, error) {
	var out *kms.GenerateDataKeyOutput
	err := extcall.Do(ctx, "kms:GenerateDataKey", func(ctx context.Context) error {
		var err error
		out, err = p.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId: aws.String(p.keyARN), KeySpec: types.DataKeySpecAes256, EncryptionContext: kmsContext(ec),
		})
		return err
	})
	if err != nil {
		return nil, kmsError("kms:GenerateDataKey", "generating a data key under "+p.keyARN, err)
	}
	dk := &DataKey{KeyID: aws.ToString(out.KeyId), Encrypted: out.CiphertextBlob, Plaintext: out.Plaintext}
	if dk.KeyID != p.keyARN {
		dk.Destroy()
		return nil, newErr(ErrProvider, "kms:GenerateDataKey", "KMS used key %q, not the configured %q", aws.ToString(out.KeyId), p.keyARN)
	}
	return dk, nil
}

// DecryptDataKey refuses key ARNs not on the allow-list without calling
// KMS, then calls kms:Decrypt with KeyId pinned to keyID and ec as the
// encryption context, and checks that the KeyId KMS reports is keyID.
func (p *KMSProvider) DecryptDataKey(ctx context.Context, keyID string, edk []byte, ec Context) (*DataKey, error) {
	if !p.allowed[keyID] {
		return nil, newErr(ErrKeyNotAllowed, "kms:Decrypt", "key %q is not on the allow-list", keyID)
	}
	var out *kms.DecryptOutput
	err := extcall.Do(ctx, "kms:Decrypt", func(ctx context.Context) error {
		var err error
		out, err = p.client.Decrypt(ctx, &kms.DecryptInput{
			KeyId: aws.String(keyID), CiphertextBlob: edk, EncryptionContext: kmsContext(ec),
		})
		return err
	})
	if err != nil {
		return nil, kmsError("kms:Decrypt", "unwrapping a data key under "+keyID, err)
	}
	dk := &DataKey{KeyID: aws.ToString(out.KeyId), Encrypted: edk, Plaintext: out.Plaintext}
	if dk.KeyID != keyID {
		dk.Destroy()
		return nil, newErr(ErrKeyNotAllowed, "kms:Decrypt", "KMS decrypted with key %q, the blob names %q", aws.ToString(out.KeyId), keyID)
	}
	return dk, nil
}

// ReWrap calls kms:ReEncrypt from keyID to toKeyID (both must be allowed),
// keeping the encryption context; the plaintext data key stays inside KMS.
func (p *KMSProvider) ReWrap(ctx context.Context, keyID string, edk []byte, ec Context, toKeyID string) (*DataKey, error) {
	if !p.allowed[keyID] || !p.allowed[toKeyID] {
		return nil, newErr(ErrKeyNotAllowed, "kms:ReEncrypt", "re-wrap from %q to %q: both keys must be on the allow-list", keyID, toKeyID)
	}
	var out *kms.ReEncryptOutput
	err := extcall.Do(ctx, "kms:ReEncrypt", func(ctx context.Context) error {
		var err error
		kc := kmsContext(ec)
		out, err = p.client.ReEncrypt(ctx, &kms.ReEncryptInput{
			CiphertextBlob: edk, SourceKeyId: aws.String(keyID), SourceEncryptionContext: kc,
			DestinationKeyId: aws.String(toKeyID), DestinationEncryptionContext: kc,
		})
		return err
	})
	if err != nil {
		return nil, kmsError("kms:ReEncrypt", "re-wrapping from "+keyID+" to "+toKeyID, err)
	}
	if aws.ToString(out.SourceKeyId) != keyID || aws.ToString(out.KeyId) != toKeyID {
		return nil, newErr(ErrKeyNotAllowed, "kms:ReEncrypt", "KMS re-wrapped from %q to %q, asked from %q to %q", aws.ToString(out.SourceKeyId), aws.ToString(out.KeyId), keyID, toKeyID)
	}
	return &DataKey{KeyID: toKeyID, Encrypted: out.CiphertextBlob}, nil
}

func (p *KMSProvider) String() string { return "envelope.KMSProvider{key:" + p.keyARN + "}" }

// GoString prints the key ARN only, like String.
func (p *KMSProvider) GoString() string { return p.String() }

func kmsContext(ec Context) map[string]string {
	if len(ec) == 0 {
		return nil
	}
	return ec
}

// kmsError classifies a failed KMS call. A ciphertext KMS will not open under
// the named key and context is ErrAuthentication (the context itself was
// already checked against the blob); everything else is ErrProvider with an
// *extcall.Error carrying the class, which the rotation engine acts on.
func kmsError(op, doing string, err error) error {
	var ee *extcall.Error
	if errors.As(err, &ee) { // a budget timeout from extcall.Do
		return &Error{Kind: ErrProvider, Op: op, Detail: doing, Cause: err}
	}
	var ae smithy.APIError
	class := extcall.ClassDependency
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidCiphertextException", "IncorrectKeyException":
			return &Error{Kind: ErrAuthentication, Op: op, Detail: doing + ": KMS refused the wrapped data key", Cause: err}
		case "AccessDeniedException":
			class = extcall.ClassPermission
		case "DisabledException", "KMSInvalidStateException", "NotFoundException", "InvalidKeyUsageException":
			class = extcall.ClassConfiguration
		case "ThrottlingException", "LimitExceededException":
			class = extcall.ClassThrottling
		case "KMSInternalException", "DependencyTimeoutException":
			class = extcall.ClassDependency
		}
	} else {
		var ne net.Error
		if errors.As(err, &ne) {
			class = extcall.ClassNetwork
		}
	}
	return &Error{Kind: ErrProvider, Op: op, Cause: extcall.NewError(class, op, doing, err)}
}
