package pipeline

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// openTestLog opens a build log in a temporary directory that masks secret, with a step's writer on it.
func openTestLog(t *testing.T, secret string) (*Log, *lineWriter, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "build.log")
	log, err := OpenLog(path, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	return log, &lineWriter{log: log, mu: &sync.Mutex{}, kept: &[]string{}}, path
}

func TestMultiLineSecretIsMaskedLineByLine(t *testing.T) {
	key := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nAB==\n-----END PRIVATE KEY-----\n"
	log, w, path := openTestLog(t, key)
	_, _ = w.Write([]byte("key is:\n" + key))
	log.Printf("again: %s", key)
	log.Close()
	text := readFile(t, path)
	for _, line := range []string{"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "AB=="} {
		if strings.Contains(text, line) || strings.Contains(strings.Join(*w.kept, "\n"), line) {
			t.Errorf("a line of the secret is in the log: %q\n%s", line, text)
		}
	}
	if !strings.Contains(text, "key is:") {
		t.Errorf("the log lost its other lines:\n%s", text)
	}
}

func TestSecretAcrossTheLongLineSplitIsMasked(t *testing.T) {
	secret := "straddling-secret-0123456789abcdef"
	for _, cut := range []int{1, len(secret) / 2, len(secret) - 1} {
		log, w, path := openTestLog(t, secret)
		// The first write ends inside the secret, past the length at which a line without a newline is cut.
		filler := strings.Repeat("a", maxLineLength-cut+1)
		_, _ = w.Write([]byte(filler + secret[:cut]))
		_, _ = w.Write([]byte(secret[cut:] + " and more\n"))
		w.flush()
		log.Close()
		text := readFile(t, path)
		for _, half := range []string{secret[:cut], secret[cut:]} {
			if strings.Contains(text, half) || strings.Contains(strings.Join(*w.kept, "\n"), half) {
				t.Errorf("cut at %d: part %q of the secret is in the log", cut, half)
			}
		}
		if strings.Count(text, "a") < len(filler) || !strings.Contains(text, mask+" and more") {
			t.Errorf("cut at %d: the log lost its text or the mask:\n%.200s…%s", cut, text, text[len(text)-100:])
		}
	}
}
