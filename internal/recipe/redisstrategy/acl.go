package redisstrategy

import (
	"context"
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

// Auth implements ACL.
func (m *MemACL) Auth(_ context.Context, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.users[user][password] {
		return ErrAuth
	}
	return nil
}
