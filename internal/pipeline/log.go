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
	"unicode/utf8"

	"github.com/miaobu/miaobu/internal/termsafe"
)

// minSecretLength is the shortest secret value that is masked in a build log: masking every "1" or
// "on" would wreck the log and hide nothing worth hiding.
const minSecretLength = 4

// mask replaces secret values in build logs.
const mask = "********"

// logText is how text is cleaned before it is masked and stored: what a terminal would act on is
// dropped but colours, and a carriage return becomes a line break, so that what any reader of the
// log renders, through its own cleaning or on a terminal, is the text that was masked.
var logText = termsafe.Sanitizer{KeepSGR: true, NewlineForCR: true}

// MaxLogBytes bounds a build log's file: the lines that would take it further are dropped, after one
// line that says so, so that a build's output cannot fill the disk or the memory of its readers.
const MaxLogBytes = 16 << 20

// Log is a deployment's build log: one file, every line timestamped and written as it is produced,
// cleaned like logText and with the project's secret values masked, and cut at MaxLogBytes.
type Log struct {
	mu      sync.Mutex
	f       *os.File
	secrets []string // cleaned, longest first
	now     func() time.Time
	// size is the file's length, limit what it may grow to, and cut is set once a line was dropped.
	size, limit int64
	cut         bool
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
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the build log: %w", err)
	}
	l := &Log{f: f, now: time.Now, size: info.Size(), limit: MaxLogBytes}
	for _, s := range secrets {
		// Secrets are looked for in the visible text of the log, so they are cleaned the same way.
		s = termsafe.Sanitizer{NewlineForCR: true}.Clean(s)
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
	// Longest first, for splitUnfinished.
	slices.SortFunc(l.secrets, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	l.secrets = slices.Compact(l.secrets)
	return l, nil
}

// Printf writes one line (or several, each timestamped) to the log.
func (l *Log) Printf(format string, args ...any) {
	for _, line := range strings.Split(strings.TrimRight(l.Redact(fmt.Sprintf(format, args...)), "\n"), "\n") {
		l.write(line)
	}
}

// Write writes p as log lines, so the log can be the destination of an slog handler or a copy.
func (l *Log) Write(p []byte) (int, error) {
	l.Printf("%s", p)
	return len(p), nil
}

// write writes one timestamped line of cleaned, masked text, unless the log was cut; the line that
// would take the log past its limit is replaced by one that says it was cut.
func (l *Log) write(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return
	}
	stamped := "[" + l.now().Format("2006-01-02 15:04:05") + "] "
	if l.size+int64(len(stamped)+len(line)+1) > l.limit {
		l.cut = true
		line = fmt.Sprintf("The build log reached %d MiB: the rest of the build's output is not logged.", MaxLogBytes>>20)
	}
	n, _ := l.f.WriteString(stamped + line + "\n")
	l.size += int64(n)
}

// Redact cleans s as the log does and masks the log's secrets in it.
func (l *Log) Redact(s string) string {
	return l.mask(logText.Clean(s))
}

// mask replaces each secret found in the visible text of s, cleaned text, with the mask, and with it
// the colour sequences inside the secret, so that no colour splits a secret that a reader then sees
// whole.
func (l *Log) mask(s string) string {
	if len(l.secrets) == 0 {
		return s
	}
	vis, at := visible(s)
	var spans [][2]int
	for _, secret := range l.secrets {
		for i := 0; ; {
			j := strings.Index(vis[i:], secret)
			if j < 0 {
				break
			}
			spans = append(spans, [2]int{i + j, i + j + len(secret)})
			i += j + 1
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var out strings.Builder
	from, end := 0, -1 // end: where the span being masked ends in vis
	for _, span := range spans {
		if span[0] <= end {
			end = max(end, span[1])
			continue
		}
		if end >= 0 {
			from = at[end-1] + 1
		}
		out.WriteString(s[from:at[span[0]]])
		out.WriteString(mask)
		end = span[1]
	}
	out.WriteString(s[at[end-1]+1:])
	return out.String()
}

// visible returns the text of s, cleaned text, without its colour sequences, and where each of its
// bytes is in s.
func visible(s string) (string, []int) {
	vis := make([]byte, 0, len(s))
	at := make([]int, 0, len(s))
	for i := 0; i < len(s); i++ {
		// In cleaned text an escape only starts a colour sequence, which ends with 'm'.
		if s[i] == 0x1b {
			if n := strings.IndexByte(s[i:], 'm'); n > 0 {
				i += n
				continue
			}
		}
		vis = append(vis, s[i])
		at = append(at, i)
	}
	return string(vis), at
}

// splitUnfinished splits s, cleaned and masked text, before the end that may hold the start of a
// secret whose rest has not been written yet: its last visible bytes, one fewer than the longest
// secret has. The colour sequences among them go with the head, which keeps the tail short.
func (l *Log) splitUnfinished(s string) (head, tail string) {
	if len(l.secrets) == 0 {
		return s, ""
	}
	vis, at := visible(s)
	start := max(0, len(vis)-(len(l.secrets[0])-1))
	for start > 0 && start < len(vis) && !utf8.RuneStart(vis[start]) {
		start--
	}
	if start == len(vis) {
		return s, ""
	}
	h := []byte(s[:at[start]])
	for i, k := at[start], start; i < len(s); i++ {
		if k < len(at) && at[k] == i {
			k++
			continue
		}
		h = append(h, s[i])
	}
	return string(h), vis[start:]
}

// Close closes the log file.
func (l *Log) Close() error { return l.f.Close() }

// lineWriter turns a command's output into log lines and keeps them for the error message of a
// failed step.
type lineWriter struct {
	log     *Log
	mu      *sync.Mutex // shared by a step's stdout and stderr writers
	clean   termsafe.Sanitizer
	partial []byte // cleaned output not logged yet
	kept    *[]string
}

// newLineWriter returns a lineWriter to log that keeps lines in kept under mu.
func newLineWriter(log *Log, mu *sync.Mutex, kept *[]string) *lineWriter {
	return &lineWriter{log: log, mu: mu, clean: logText, kept: kept}
}

// maxKeptLines bounds the lines kept from one step for its error message.
const maxKeptLines = 400

// maxLineLength is how long output without a newline grows before it is logged as a line of its own.
const maxLineLength = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = w.clean.Append(w.partial, p)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.emit(w.log.mask(string(w.partial[:i])))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLineLength {
		// Masked before it is cut, and the end that may hold the start of a secret still on its way is
		// kept for later: a secret must not reach the log in two unmasked halves.
		head, tail := w.log.splitUnfinished(w.log.mask(string(w.partial)))
		w.emit(head)
		w.partial = append(w.partial[:0], tail...)
	}
	return len(p), nil
}

// emit logs one masked line and keeps it.
func (w *lineWriter) emit(line string) {
	w.log.write(line)
	if len(*w.kept) >= maxKeptLines {
		*w.kept = (*w.kept)[1:]
	}
	*w.kept = append(*w.kept, line)
}

// flush logs a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.partial = w.clean.Finish(w.partial); len(w.partial) > 0 {
		w.emit(w.log.mask(string(w.partial)))
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
