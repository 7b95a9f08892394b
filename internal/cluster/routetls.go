package cluster

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// routeCAInfo is the HKDF info that derives the seed of the route certificate authority's ed25519
// key from cluster.secret (HKDF-SHA256, no salt); changing it would part every node from the others.
const routeCAInfo = "miaobu cluster route CA v1"

// routeServerName is the name in every node's route certificate, which every node dialing a route
// checks: peers are dialed at addresses no certificate names, and what is checked is that the peer's
// certificate was signed by the cluster's authority.
const routeServerName = "route.miaobu.cluster"

// routeCertLifetime is how long a node's route certificate, made anew at each start, is valid.
const routeCertLifetime = 10 * 365 * 24 * time.Hour

// routeCATemplate is the fixed certificate of the route authority: with the same key, every node
// signs the same bytes (ed25519 signatures are deterministic), so every node builds the same CA.
var routeCATemplate = x509.Certificate{
	SerialNumber:          big.NewInt(1),
	Subject:               pkix.Name{CommonName: "miaobu cluster CA"},
	NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	NotAfter:              time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC),
	KeyUsage:              x509.KeyUsageCertSign,
	BasicConstraintsValid: true,
	IsCA:                  true,
	MaxPathLenZero:        true,
}

// routeCA derives the route certificate authority from secret alone: its certificate and key.
func routeCA(secret string) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, []byte(secret), nil, routeCAInfo, ed25519.SeedSize)
	if err != nil {
		return nil, nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	// The key identifier is set, not left to the Go version's choice, so every build signs the same bytes.
	template := routeCATemplate
	keyID := sha256.Sum256(key.Public().(ed25519.PublicKey))
	template.SubjectKeyId = keyID[:20]
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// routeTLSConfig returns the TLS of the route connections of the node named node: a certificate of
// its own, made now and kept in memory, signed by the authority derived from secret, and both ends
// of a route accept only a peer whose certificate that authority signed.
func routeTLSConfig(node, secret string) (*tls.Config, error) {
	ca, caKey, err := routeCA(secret)
	if err != nil {
		return nil, err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{routeServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(routeCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, pub, caKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   routeServerName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}
