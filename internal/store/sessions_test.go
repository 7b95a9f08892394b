package store

import (
	"testing"
	"time"
)

func TestLoginCodesWorkOnceBeforeTheyExpire(t *testing.T) {
	s, _ := openTest(t)
	now := time.Now()
	fresh, late := []byte("fresh-code-hash"), []byte("late-code-hash")
	if err := s.CreateLoginCode(fresh, now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLoginCode(late, now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hash []byte
		at   time.Time
		want bool
	}{
		{"first use", fresh, now, true},
		{"second use", fresh, now, false},
		{"after it expired", late, now.Add(5*time.Minute + time.Second), false},
		{"unexpired, but tried once after it expired", late, now, false},
		{"never issued", []byte("other"), now, false},
	} {
		if ok, err := s.UseLoginCode(tc.hash, tc.at); err != nil || ok != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, ok, err, tc.want)
		}
	}
}

func TestSessionsExpireAndEnd(t *testing.T) {
	s, dir := openTest(t)
	now := time.Now()
	kept, ended := []byte("kept"), []byte("ended")
	for _, h := range [][]byte{kept, ended} {
		if err := s.CreateSession(h, now.Add(12*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSession(ended); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		hash []byte
		at   time.Time
		want bool
	}{
		{"kept across a reopen", kept, now, true},
		{"past its expiry", kept, now.Add(12*time.Hour + time.Second), false},
		{"ended", ended, now, false},
	} {
		if ok, err := s.SessionValid(tc.hash, tc.at); err != nil || ok != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, ok, err, tc.want)
		}
	}
	// Creating one deletes those that have expired.
	if err := s.CreateSession([]byte("gone"), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession([]byte("new"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SessionValid([]byte("gone"), now.Add(-time.Hour)); err != nil || ok {
		t.Errorf("an expired session was kept: %v %v", ok, err)
	}
}
