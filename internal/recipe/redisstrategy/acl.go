package redisstrategy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
)

// ACL is what the strategy needs of a Redis server. Every method must be
// idempotent: adding a password the user has, or removing one it lacks,
// succeeds.
type ACL interface {
	// AddPassword runs ACL SETUSER user >password as the admin user.
	AddPassword(ctx context.Context, adminUser, adminPassword, user, password string) error
	// RemovePassword runs ACL SETUSER user <password as the admin user.
	RemovePassword(ctx context.Context, adminUser, adminPassword, user, password string) error
	// Auth runs AUTH user password on a new connection.
	Auth(ctx context.Context, user, password string) error
	// PasswordHashes runs ACL GETUSER user as the admin user and returns the
	// user's passwords as Redis lists them: hex SHA-256, never the passwords.
	PasswordHashes(ctx context.Context, adminUser, adminPassword, user string) ([]string, error)
}

// PasswordHash is a password as ACL GETUSER lists it: hex SHA-256.
func PasswordHash(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// ErrAuth is MemACL's refusal of a user and password, like Redis's
// WRONGPASS.
var ErrAuth = errors.New("WRONGPASS invalid username-password pair or user is disabled")

// MemACL is an in-memory Redis ACL: users with sets of passwords.
type MemACL struct {
	mu    sync.Mutex
	users map[string]map[string]bool
}

// NewMemACL returns an ACL with no users.
func NewMemACL() *MemACL { return &MemACL{users: map[string]map[string]bool{}} }

// SetUser creates or resets a user with exactly these passwords.
func (m *MemACL) SetUser(user string, passwords ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[user] = map[string]bool{}
	for _, p := range passwords {
		m.users[user][p] = true
	}
}

// PasswordCount returns how many passwords user has.
func (m *MemACL) PasswordCount(user string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users[user])
}

func (m *MemACL) admin(user, password string) error {
	if !m.users[user][password] {
		return ErrAuth
	}
	return nil
}

// AddPassword implements ACL.
func (m *MemACL) AddPassword(_ context.Context, adminUser, adminPassword, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.admin(adminUser, adminPassword); err != nil {
		return err
	}
	if m.users[user] == nil {
		m.users[user] = map[string]bool{}
	}
	m.users[user][password] = true
	return nil
}

// RemovePassword implements ACL.
func (m *MemACL) RemovePassword(_ context.Context, adminUser, adminPassword, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.admin(adminUser, adminPassword); err != nil {
		return err
	}
	delete(m.users[user], password)
	return nil
}

// PasswordHashes implements ACL.
func (m *MemACL) PasswordHashes(_ context.Context, adminUser, adminPassword, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.admin(adminUser, adminPassword); err != nil {
		return nil, err
	}
	var out []string
	for p := range m.users[user] {
		out = append(out, PasswordHash(p))
	}
	return out, nil
}

// Auth implements ACL.
func (m *MemACL) Auth(_ context.Context, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.users[user][password] {
		return ErrAuth
	}
	return nil
}
