package envelope

import (
	"bytes"
	"fmt"
)

// Format constants of version 1 (docs/envelope-format.md is the normative
// description; these are the limits every length is checked against before
// anything is allocated).
const (
	Version1 = 1

	MessageIDSize  = 32
	CommitmentSize = 32
	NonceSize      = 12
	TagSize        = 16
	DataKeySize    = 32

	MaxContextBytes = 8192     // canonical context, count included (KMS allows 8 KiB of context)
	MaxKeyIDBytes   = 2048     // KMS key ARNs are at most 2048 characters
	MaxEDKBytes     = 6144     // KMS ciphertext blobs are at most 6144 bytes
	MaxPlaintext    = 64 << 20 // 64 MiB per message

	// fixed part of the authenticated header: version, provider, message id,
	// context length, commitment, nonce, body length.
	fixedAADSize = 1 + 1 + MessageIDSize + 2 + CommitmentSize + NonceSize + 4

	// MaxBlobSize is the largest well-formed version-1 blob.
	MaxBlobSize = fixedAADSize + MaxContextBytes + 2 + MaxKeyIDBytes + 2 + MaxEDKBytes + MaxPlaintext + TagSize
)

// ProviderID names the key provider that wrapped a blob's data key. It is
// part of the authenticated header.
type ProviderID uint8

// Provider ids. Ids 128–254 are free for providers outside this package.
const (
	ProviderKMS   ProviderID = 1
	ProviderLocal ProviderID = 2
)

func (p ProviderID) String() string {
	switch p {
	case ProviderKMS:
		return "aws-kms"
	case ProviderLocal:
		return "local"
	}
	return fmt.Sprintf("provider-%d", uint8(p))
}

// Header is the parsed, not yet authenticated header of a blob. Nothing in
// it is secret. Its fields are authenticated only once Decrypt succeeds.
type Header struct {
	Version          int
	Provider         ProviderID
	MessageID        [MessageIDSize]byte // format 1 only (format 2 has no message id; zero)
	Context          Context             // format 1: the context; format 2: the stable context (the provider's)
	MessageContext   Context             // format 2: the context authenticated with the body only; empty in format 1
	KeyID            string              // the key that wrapped the data key: a KMS key ARN, or a local key's id
	EncryptedDataKey []byte              // the wrapped data key, as the provider returned it
	BodyLen          int                 // ciphertext plus the 16-byte tag
}

// ParseHeader reads a blob's header without decrypting anything: format
// version, key provider, key id (ARN), context. The result is not
// authenticated; use it for routing and inventory (which blobs still name an
// old key), never for access decisions. The whole blob is checked for
// well-formedness, trailing bytes included.
func ParseHeader(blob []byte) (*Header, error) {
	if len(blob) > 0 && blob[0] == Version2 {
		var l layout2
		if err := parse2Into(blob, &l); err != nil {
			return nil, err
		}
		stable, err := parseContext(l.stable)
		if err != nil {
			return nil, err
		}
		msg, err := parseContext(l.message)
		if err != nil {
			return nil, err
		}
		return &Header{
			Version: Version2, Provider: l.provider, Context: stable, MessageContext: msg,
			KeyID: string(l.keyID), EncryptedDataKey: bytes.Clone(l.edk), BodyLen: len(l.body),
		}, nil
	}
	l, err := parse(blob)
	if err != nil {
		return nil, err
	}
	ctx, err := parseContext(l.context)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Version:          Version1,
		Provider:         l.provider,
		Context:          ctx,
		MessageContext:   Context{},
		KeyID:            string(l.keyID),
		EncryptedDataKey: bytes.Clone(l.edk),
		BodyLen:          len(l.body),
	}
	copy(h.MessageID[:], l.messageID)
	return h, nil
}
