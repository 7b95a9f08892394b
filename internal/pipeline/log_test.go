package pipeline

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMultiLineSecretIsMaskedLineByLine(t *testing.T) {
	key := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nAB==\n-----END PRIVATE KEY-----\n"
	path := filepath.Join(t.TempDir(), "build.log")
	log, err := OpenLog(path, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var kept []string
	w := &lineWriter{log: log, mu: &mu, kept: &kept}
	_, _ = w.Write([]byte("key is:\n" + key))
	log.Printf("again: %s", key)
	log.Close()
	text := readFile(t, path)
	for _, line := range []string{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "AB=="} {
		if strings.Contains(text, line) || strings.Contains(strings.Join(kept, "\n"), line) {
			t.Errorf("a line of the secret is in the log: %q\n%s", line, text)
		}
	}
	if !strings.Contains(text, "key is:") {
		t.Errorf("the log lost its other lines:\n%s", text)
	}
}
