package cluster

import (
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/miaobu/miaobu/internal/store"
)

// sessionsTTL is how long the sessions bucket keeps an entry: longer than any dashboard session or
// login code lives, so that JetStream forgets what has expired without anyone sweeping.
const sessionsTTL = 13 * time.Hour

// Prefixes of the sessions bucket's keys, each followed by a hash in hex.
const (
	loginCodePrefix = "code."
	sessionPrefix   = "session."
)

// CreateLoginCode records the hash of a dashboard login code, usable once until expires.
func (s *Store) CreateLoginCode(hash []byte, expires time.Time) error {
	return s.putExpiring(loginCodePrefix+hex.EncodeToString(hash), expires)
}

// UseLoginCode deletes the login code whose hash is hash and reports whether it was there and not
// expired at now; of nodes using one code at once, the one whose delete matches its revision wins.
func (s *Store) UseLoginCode(hash []byte, now time.Time) (bool, error) {
	ctx, cancel := opContext()
	defer cancel()
	key := loginCodePrefix + hex.EncodeToString(hash)
	var e store.Expiring
	rev, err := getJSON(ctx, s.sessions, key, &e)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err)
	}
	if err := s.sessions.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		if conflicted(err) {
			return false, nil // used by another sign-in first
		}
		return false, unavailable(err)
	}
	return now.Before(e.ExpiresAt), nil
}

// CreateSession records the hash of a dashboard session token, valid until expires.
func (s *Store) CreateSession(hash []byte, expires time.Time) error {
	return s.putExpiring(sessionPrefix+hex.EncodeToString(hash), expires)
}

// SessionValid reports whether the session whose token's hash is hash exists and has not expired at now.
func (s *Store) SessionValid(hash []byte, now time.Time) (bool, error) {
	ctx, cancel := opContext()
	defer cancel()
	var e store.Expiring
	_, err := getJSON(ctx, s.sessions, sessionPrefix+hex.EncodeToString(hash), &e)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && now.Before(e.ExpiresAt), unavailable(err)
}

// DeleteSession ends the session whose token's hash is hash; ending one that is gone is no error.
func (s *Store) DeleteSession(hash []byte) error {
	ctx, cancel := opContext()
	defer cancel()
	err := s.sessions.Delete(ctx, sessionPrefix+hex.EncodeToString(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return unavailable(err)
}

// EndSessions ends every dashboard session.
func (s *Store) EndSessions() error {
	ctx, cancel := opContext()
	defer cancel()
	keys, err := s.sessions.ListKeys(ctx)
	if err != nil {
		return unavailable(err)
	}
	for key := range keys.Keys() {
		if !strings.HasPrefix(key, sessionPrefix) {
			continue
		}
		if err := s.sessions.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return unavailable(err)
		}
	}
	return nil
}

// putExpiring stores key → expires in the sessions bucket.
func (s *Store) putExpiring(key string, expires time.Time) error {
	ctx, cancel := opContext()
	defer cancel()
	return unavailable(casJSON(ctx, s.sessions, key, store.Expiring{ExpiresAt: expires.UTC()}, 0))
}
