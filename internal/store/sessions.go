package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Expiring is the stored value of a dashboard login code or session: only a hash of it is the key (the
// dashboard's, keyed with the admin token), so a copy of the store (a backup) holds nothing that
// signs in.
type Expiring struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateLoginCode records the hash of a dashboard login code, usable once until expires.
func (s *Store) CreateLoginCode(hash []byte, expires time.Time) error {
	return s.putExpiring(loginCodesBucket, hash, expires)
}

// UseLoginCode deletes the login code whose hash is hash and reports whether it was there and not
// expired at now: a code signs in once, and one tried after it expired is gone too.
func (s *Store) UseLoginCode(hash []byte, now time.Time) (bool, error) {
	valid := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		codes := bucket(tx, loginCodesBucket)
		var e Expiring
		if err := get(codes, hash, &e); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		valid = now.Before(e.ExpiresAt)
		return codes.Delete(hash)
	})
	return valid, err
}

// CreateSession records the hash of a dashboard session token, valid until expires.
func (s *Store) CreateSession(hash []byte, expires time.Time) error {
	return s.putExpiring(sessionsBucket, hash, expires)
}

// SessionValid reports whether the session whose token's hash is hash exists and has not expired
// at now.
func (s *Store) SessionValid(hash []byte, now time.Time) (bool, error) {
	var e Expiring
	err := s.db.View(func(tx *bolt.Tx) error { return get(bucket(tx, sessionsBucket), hash, &e) })
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil && now.Before(e.ExpiresAt), err
}

// DeleteSession ends the session whose token's hash is hash; ending one that is gone is no error.
func (s *Store) DeleteSession(hash []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return bucket(tx, sessionsBucket).Delete(hash) })
}

// putExpiring stores hash → expires in the named bucket, first deleting the entries that have
// expired, so that neither bucket grows with codes never used and sessions never ended.
func (s *Store) putExpiring(name, hash []byte, expires time.Time) error {
	now := time.Now()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, name)
		var expired [][]byte
		err := iterate(b, nil, func(k []byte, e Expiring) (bool, error) {
			if !now.Before(e.ExpiresAt) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return put(b, hash, Expiring{ExpiresAt: expires.UTC()})
	})
}

// EndSessions ends every dashboard session.
func (s *Store) EndSessions() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(rootBucket).DeleteBucket(sessionsBucket); err != nil {
			return err
		}
		_, err := tx.Bucket(rootBucket).CreateBucket(sessionsBucket)
		return err
	})
}
