package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miaobu/miaobu/internal/termsafe"
)

// openTestLog opens a build log in a temporary directory that masks secret, with a step's writer on it.
func openTestLog(t *testing.T, secret string) (*Log, *lineWriter, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "build.log")
	log, err := OpenLog(path, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	return log, newLineWriter(log, &sync.Mutex{}, &[]string{}), path
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

// splitters are what a build may put inside a secret to keep it from being masked: a carriage
// return, a colour reset, a backspace and a title set, all removed by a reader of the log.
var splitters = []string{"\r", "\x1b[0m", "\b", "\x1b]0;x\a"}

func TestSecretSplitByControlCharactersIsMasked(t *testing.T) {
	const secret = "split-secret-0123456789abcdef"
	for _, splitter := range splitters {
		log, w, path := openTestLog(t, secret)
		_, _ = w.Write([]byte("\x1b[31mred\x1b[0m " + secret[:10] + splitter + secret[10:] + " after\n"))
		log.Printf("printed %s", secret[:10]+splitter+secret[10:])
		w.flush()
		log.Close()
		text := readFile(t, path)
		shown := termsafe.Sanitizer{}.Clean(text) // what `miaobu deployment logs` shows on a pipe
		if strings.Contains(shown, secret) || strings.Contains(strings.Join(*w.kept, "\n"), secret) {
			t.Errorf("split by %q: the secret is shown:\n%q", splitter, text)
		}
		if splitter != "\r" && strings.Count(text, mask) != 2 {
			t.Errorf("split by %q: the secret is not masked:\n%q", splitter, text)
		}
		if !strings.Contains(text, "\x1b[31mred\x1b[0m ") || !strings.Contains(text, " after\n") {
			t.Errorf("split by %q: the log lost its colours or text:\n%q", splitter, text)
		}
		if strings.ContainsAny(text, "\r\b\a") || strings.Contains(text, "\x1b]") {
			t.Errorf("split by %q: the log keeps what a terminal acts on:\n%q", splitter, text)
		}
	}
}

// FuzzLogShowsNoSecret writes any output, split anywhere and past the long-line cut, to a log that
// masks a secret: no line's visible text holds the secret and, for output without line breaks, neither
// do the lines read one after the other.
func FuzzLogShowsNoSecret(f *testing.F) {
	for _, splitter := range splitters {
		f.Add([]byte("a secret-value"+splitter+"-0123 b"), "secret-value-0123", uint(9), uint(3))
	}
	f.Add([]byte("x secret-value-0123\x1b[0m"), "secret-value-0123", uint(5), uint(10))
	f.Add([]byte("\x1b[31mab\x1b[0mcd\x1b[1mef"), "abcdef", uint(4), uint(2))
	f.Fuzz(func(t *testing.T, out []byte, secret string, split, pad uint) {
		// A secret with the mask's character can be made by masking; lines break at a newline.
		if strings.ContainsAny(secret, "*\n\r") {
			t.Skip()
		}
		log, w, path := openTestLog(t, secret)
		// Past the long-line cut when pad is small.
		filler := []byte(strings.Repeat("-", max(0, maxLineLength-int(pad%64))))
		in := append(filler, out...)
		cut := len(filler) + int(split%uint(len(out)+1))
		_, _ = w.Write(in[:cut])
		_, _ = w.Write(in[cut:])
		w.flush()
		log.Close()
		var joined strings.Builder
		for _, line := range strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n") {
			_, text, _ := strings.Cut(line, "] ")
			vis, _ := visible(text)
			for _, s := range log.secrets {
				if strings.Contains(vis, s) {
					t.Fatalf("%q shows secret %q in line %q", out, s, line)
				}
			}
			joined.WriteString(vis)
		}
		if bytes.ContainsAny(out, "\n\r") {
			return
		}
		for _, s := range log.secrets {
			if strings.Contains(joined.String(), s) {
				t.Fatalf("%q cut at %d shows secret %q across lines", out, cut, s)
			}
		}
	})
}

func TestLogIsCutAtItsLimit(t *testing.T) {
	log, w, path := openTestLog(t, "")
	log.limit = 1000
	for range 100 {
		_, _ = w.Write([]byte(strings.Repeat("x", 40) + "\n"))
	}
	log.Printf("published")
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) > 1000+200 || !strings.Contains(lines[len(lines)-1], "the rest of the build's output is not logged") ||
		strings.Count(string(b), "not logged") != 1 {
		t.Fatalf("a log past its limit, %d bytes:\n%s", len(b), b)
	}
	// A build queued again continues its log, which stays cut.
	again, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	again.limit = 1000
	again.Printf("queued again")
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "queued again") {
		t.Errorf("a cut log grew on:\n%s", b)
	}
}
