package pipeline

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// minSecretLength is the shortest secret value that is masked in a build log: masking every "1" or
// "on" would wreck the log and hide nothing worth hiding.
const minSecretLength = 4

// mask replaces secret values in build logs.
const mask = "********"

// Log is a deployment's build log: one file, every line timestamped and written as it is produced,
// with the project's secret values masked.
type Log struct {
	mu      sync.Mutex
	f       *os.File
	secrets []string
	now     func() time.Time
}

// OpenLog opens the build log at path for appending (a build queued again continues its log),
// creating it with mode 0600; secrets are masked in every line.
func OpenLog(path string, secrets []string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the build log: %w", err)
	}
	l := &Log{f: f, now: time.Now}
	for _, s := range secrets {
		if len(s) >= minSecretLength {
			l.secrets = append(l.secrets, s)
		}
		// Output is masked a line at a time, so a secret of several lines (a PEM key) is masked by its lines.
		if strings.Contains(s, "\n") {
			for _, line := range strings.Split(s, "\n") {
				if line = strings.TrimSpace(line); len(line) >= minSecretLength {
					l.secrets = append(l.secrets, line)
				}
			}
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(l.secrets, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	l.secrets = slices.Compact(l.secrets)
	return l, nil
}

// Printf writes one line (or several, each timestamped) to the log.
func (l *Log) Printf(format string, args ...any) {
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		l.line(line)
	}
}

// Write writes p as log lines, so the log can be the destination of an slog handler or a copy.
func (l *Log) Write(p []byte) (int, error) {
	l.Printf("%s", p)
	return len(p), nil
}

// line writes one timestamped, masked line.
func (l *Log) line(s string) {
	s = l.Redact(strings.TrimRight(s, "\r"))
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.f, "[%s] %s\n", l.now().Format("2006-01-02 15:04:05"), s)
}

// Redact masks the log's secrets in s.
func (l *Log) Redact(s string) string {
	for _, secret := range l.secrets {
		s = strings.ReplaceAll(s, secret, mask)
	}
	return s
}

// unfinishedSecret is how many bytes at the end of masked text may be the start of a secret whose
// rest has not been written yet: one less than the longest secret's length.
func (l *Log) unfinishedSecret() int {
	if len(l.secrets) == 0 {
		return 0
	}
	return len(l.secrets[0]) - 1
}

// Close closes the log file.
func (l *Log) Close() error { return l.f.Close() }

// lineWriter turns a command's output into log lines and keeps them for the error message of a
// failed step.
type lineWriter struct {
	log     *Log
	mu      *sync.Mutex // shared by a step's stdout and stderr writers
	partial []byte
	kept    *[]string
}

// maxKeptLines bounds the lines kept from one step for its error message.
const maxKeptLines = 400

// maxLineLength is how long output without a newline grows before it is logged as a line of its own.
const maxLineLength = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLineLength {
		// Masked before it is cut, and the end that may hold the start of a secret still on its way is
		// kept for later: a secret must not reach the log in two unmasked halves.
		masked := w.log.Redact(string(w.partial))
		if cut := len(masked) - w.log.unfinishedSecret(); cut > 0 {
			w.emit(masked[:cut])
			w.partial = append(w.partial[:0], masked[cut:]...)
		}
	}
	return len(p), nil
}

// emit logs one line and keeps it.
func (w *lineWriter) emit(line string) {
	w.log.line(line)
	if len(*w.kept) >= maxKeptLines {
		*w.kept = (*w.kept)[1:]
	}
	*w.kept = append(*w.kept, w.log.Redact(strings.TrimRight(line, "\r")))
}

// flush logs a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emit(string(w.partial))
		w.partial = w.partial[:0]
	}
}

// failureExcerpt picks the lines of a failed step worth putting in the deployment's error message:
// from the first line that mentions an error, else the last lines.
func failureExcerpt(lines []string) string {
	const n = 12
	start := max(0, len(lines)-n)
	for i, line := range lines {
		lower := strings.ToLower(line)
		if strings.Contains(lower, "error") || strings.Contains(lower, "err!") {
			start = i
			break
		}
	}
	excerpt := strings.Join(lines[start:min(len(lines), start+n)], "\n")
	if len(excerpt) > 2000 {
		excerpt = excerpt[:2000] + "…"
	}
	return excerpt
}
