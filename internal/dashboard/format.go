package dashboard

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/store"
)

// funcs are the helpers the templates call.
var funcs = template.FuncMap{
	"ago":       ago,
	"stamp":     stamp,
	"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"tone":      tone,
	"short":     shortSHA,
	"firstLine": func(s string) string { first, _, _ := strings.Cut(s, "\n"); return first },
	"seconds":   func(s float64) string { return (time.Duration(s*10) * time.Second / 10).String() },
	"running":   func(status string) bool { return !store.IsTerminal(store.Status(status)) },
	"size":      size,
}

// size says how many bytes n is in KiB, or MiB from 1 MiB on.
func size(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

// ago says how long before now t was, in the largest whole unit.
func ago(t time.Time) string {
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if n := int(d / u.size); n >= 1 {
			if n == 1 {
				return "1 " + u.name + " ago"
			}
			return fmt.Sprintf("%d %ss ago", n, u.name)
		}
	}
	return "just now"
}

// stamp is t as an absolute time in UTC, for a title.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// tone is the colour class of a deployment status, as the CLI colours it: deployed green, failed
// red, cancelled faint, anything still under way yellow.
func tone(status string) string {
	switch status {
	case api.StatusDeployed:
		return "ok"
	case api.StatusFailed:
		return "bad"
	case api.StatusCancelled:
		return "off"
	}
	return "busy"
}

// shortSHA is the first 7 characters of a commit SHA.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
