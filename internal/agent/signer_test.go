package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// signer computes GitHub's signature the way GitHub documents it, independently of package github.
type signer struct{ secret string }

// sign returns "sha256=" and the hex HMAC-SHA256 of body.
func (s *signer) sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
