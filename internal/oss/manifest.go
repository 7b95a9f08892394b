package oss

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"slices"

	"github.com/miaobu/miaobu/internal/serving"
)

// bookkeepingDir is the site-relative folder holding the uploader's own objects.
const bookkeepingDir = ".miaobu"

// manifestRel is the site-relative path of the manifest object.
const manifestRel = bookkeepingDir + "/manifest.json.gz"

// Metadata keys every uploaded object carries, so its state can be read back with one HEAD
// when the manifest does not vouch for it.
const (
	metaMD5     = "md5"
	metaHeaders = "headers"
)

// manifest records, per site file, the MD5 and the hash of the headers of the last upload, because
// ListObjectsV2 returns ETags but not headers; it is written only after every upload succeeded.
type manifest struct {
	Version int                      `json:"version"`
	Files   map[string]manifestEntry `json:"files"`
	// Kept lists stale hashed assets left in place for one more deploy, so pages still open in a
	// browser can load them; the next deploy deletes them.
	Kept []string `json:"kept,omitempty"`
}

// manifestEntry is the state of one uploaded file.
type manifestEntry struct {
	MD5     string `json:"md5"`
	Headers string `json:"headers"`
}

// manifestVersion is the format written; other versions are ignored and rebuilt.
const manifestVersion = 1

// encode returns the gzipped JSON of m; equal manifests give equal bytes.
func (m manifest) encode() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	_ = json.NewEncoder(zw).Encode(m)
	_ = zw.Close()
	return b.Bytes()
}

// decodeManifest parses a manifest; a damaged or foreign one is reported as an error.
func decodeManifest(r io.Reader) (manifest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return manifest{}, err
	}
	var m manifest
	if err := json.NewDecoder(zr).Decode(&m); err != nil {
		return manifest{}, err
	}
	if m.Version != manifestVersion {
		return manifest{}, errUnknownManifest
	}
	return m, nil
}

// nextManifest records the files about to be live and the assets kept for one more deploy.
func nextManifest(files []*localFile, kept []string) manifest {
	m := manifest{Version: manifestVersion, Files: make(map[string]manifestEntry, len(files)), Kept: kept}
	for _, f := range files {
		m.Files[f.rel] = manifestEntry{MD5: hex.EncodeToString(f.md5[:]), Headers: headersHash(serving.ContentType(f.rel), serving.CacheControl(f.rel))}
	}
	return m
}

// relevant returns m without the kept entries whose objects are gone or about to be deleted (deletes
// is sorted): they no longer say anything, so they alone do not make the manifest worth rewriting.
func (m manifest) relevant(remote map[string]remoteObject, deletes []string) manifest {
	out := manifest{Version: m.Version, Files: m.Files}
	for _, rel := range m.Kept {
		_, listed := remote[rel]
		if _, deleting := slices.BinarySearch(deletes, rel); listed && !deleting {
			out.Kept = append(out.Kept, rel)
		}
	}
	return out
}

// sameManifest reports whether a and b record the same state.
func sameManifest(a, b manifest) bool {
	return maps.Equal(a.Files, b.Files) && slices.Equal(a.Kept, b.Kept)
}

// headersHash identifies the headers an object is served with, so a policy change re-uploads it.
func headersHash(contentType, cacheControl string) string {
	h := sha256.Sum256([]byte("Content-Type: " + contentType + "\nCache-Control: " + cacheControl + "\n"))
	return hex.EncodeToString(h[:8])
}
