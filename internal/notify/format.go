package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/miaobu/miaobu/internal/api"
	"github.com/miaobu/miaobu/internal/event"
)

// maxLine is the most characters of a commit subject or error line a chat message shows.
const maxLine = 300

// Limits of the receivers, in characters: a longer value makes them refuse the whole message.
const (
	slackSectionMax       = 3000
	slackFieldMax         = 2000
	discordContentMax     = 2000
	discordTitleMax       = 256
	discordDescriptionMax = 4096
	discordFieldMax       = 1024
)

// summary is what every format tells of a payload, in plain text; each format escapes it its own way.
type summary struct {
	Title   string
	Project string
	// Commit is the short SHA; Subject the first line of the commit message, Message all of it.
	Commit, Subject, Message string
	Author, Branch           string
	Duration                 string
	Error                    string
	// Site is the URL to visit, for events whose site is up.
	Site   string
	LogURL string
	// Colour is the event's colour as 0xRRGGBB.
	Colour int
}

// Event colours.
const (
	colourGood    = 0x2EA44F
	colourBad     = 0xD73A49
	colourNeutral = 0x0366D6
)

// summarize reads a payload into a summary.
func summarize(p payload) summary {
	s := summary{LogURL: p.LogURL, Colour: colourNeutral}
	if p.Project != nil {
		s.Project = p.Project.Name
	}
	d := p.Deployment
	if d != nil {
		s.Commit, s.Message = shortSHA(d.CommitSHA), d.CommitMessage
		s.Subject = cut(firstLine(d.CommitMessage), maxLine)
		s.Author, s.Branch = d.CommitAuthor, d.Branch
		s.Error = cut(firstLine(d.ErrorMessage), maxLine)
		if d.BuildTimeSeconds != nil {
			s.Duration = duration(*d.BuildTimeSeconds)
		}
	}
	switch p.Event {
	case event.DeployStarted:
		s.Title = "Deploying " + s.Project
	case event.DeploySucceeded:
		s.Title, s.Colour, s.Site = "Deployed "+s.Project, colourGood, p.Project.SiteURL
	case event.DeployFailed:
		s.Title, s.Colour = "Deployment of "+s.Project+" failed", colourBad
	case event.DeployRecovered:
		s.Title, s.Colour, s.Site = s.Project+" recovered: deployed after a failed deployment", colourGood, p.Project.SiteURL
	case event.PreviewReady:
		s.Title, s.Colour, s.Site = "Preview of "+s.Project+" ready", colourGood, d.URL
	case event.PreviewRemoved:
		s.Title = "Preview of " + s.Project + " removed"
	default:
		s.Title = "Test notification from miaobu"
		if s.Project != "" {
			s.Title += " for " + s.Project
		}
	}
	if d != nil {
		s.Title += fmt.Sprintf(" (#%d)", d.ID)
	}
	return s
}

// facts returns the summary's labelled facts that are known, in the order messages show them.
func (s summary) facts() [][2]string {
	var out [][2]string
	add := func(label, value string) {
		if value != "" {
			out = append(out, [2]string{label, value})
		}
	}
	add("Project", s.Project)
	commit := s.Commit
	if commit != "" && s.Branch != "" {
		commit += " on " + s.Branch
	}
	add("Commit", commit)
	add("Author", s.Author)
	add("Duration", s.Duration)
	return out
}

// slackEscaper escapes the three characters Slack's mrkdwn gives a meaning to.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackText is a Slack text object.
type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackBlock is one Slack layout block.
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []any       `json:"elements,omitempty"`
}

// slackButton is a Slack link button.
type slackButton struct {
	Type string    `json:"type"`
	Text slackText `json:"text"`
	URL  string    `json:"url"`
}

// slackBody is the JSON a Slack incoming webhook is posted: a plain fallback and the blocks.
func slackBody(p payload) ([]byte, error) {
	s := summarize(p)
	esc := slackEscaper.Replace
	// The title leaves room in the lead section for the two lines of at most maxLine characters,
	// which escaping may lengthen; a field's value leaves room for its label.
	text := cut(esc(s.Title), slackSectionMax/2)
	lead := "*" + text + "*"
	for _, line := range []string{s.Subject, s.Error} {
		if line != "" {
			text += ": " + esc(line)
			lead += "\n" + esc(line)
		}
	}
	text, lead = cut(text, slackSectionMax), cut(lead, slackSectionMax)
	blocks := []slackBlock{{Type: "section", Text: &slackText{"mrkdwn", lead}}}
	var fields []slackText
	for _, f := range s.facts() {
		value := cut(esc(f[1]), slackFieldMax-100)
		if f[0] == "Commit" {
			value = "`" + value + "`"
		}
		fields = append(fields, slackText{"mrkdwn", "*" + f[0] + "*\n" + value})
	}
	if len(fields) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	if s.Site != "" {
		blocks = append(blocks, slackBlock{Type: "context", Elements: []any{slackText{"mrkdwn", "<" + s.Site + "|" + esc(s.Site) + ">"}}})
	}
	if s.LogURL != "" {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: []any{
			slackButton{Type: "button", Text: slackText{"plain_text", "View log"}, URL: s.LogURL}}})
	}
	return marshal(struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}{text, blocks})
}

// discordEscaper escapes the characters Discord's markdown gives a meaning to, mentions included.
var discordEscaper = func() *strings.Replacer {
	var pairs []string
	for _, c := range `\*_~` + "`" + `|>#-[]()<@` {
		pairs = append(pairs, string(c), `\`+string(c))
	}
	return strings.NewReplacer(pairs...)
}()

// discordField is one field of a Discord embed.
type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// discordEmbed is a Discord rich embed.
type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	URL         string         `json:"url,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp"`
}

// discordBody is the JSON a Discord webhook is posted: the title as content, one embed, and no
// mention that could ping anyone.
func discordBody(p payload) ([]byte, error) {
	s := summarize(p)
	esc := discordEscaper.Replace
	var lines []string
	for _, line := range []string{s.Subject, s.Error} {
		if line != "" {
			lines = append(lines, esc(line))
		}
	}
	embed := discordEmbed{Title: cut(esc(s.Title), discordTitleMax), Description: cut(strings.Join(lines, "\n"), discordDescriptionMax),
		URL: s.LogURL, Color: s.Colour, Timestamp: p.Timestamp.Format(time.RFC3339)}
	for _, f := range s.facts() {
		embed.Fields = append(embed.Fields, discordField{f[0], cut(esc(f[1]), discordFieldMax), true})
	}
	if s.Site != "" {
		embed.Fields = append(embed.Fields, discordField{"Site", cut(s.Site, discordFieldMax), false})
	}
	type mentions struct {
		Parse []string `json:"parse"`
	}
	return marshal(struct {
		Content         string         `json:"content"`
		Embeds          []discordEmbed `json:"embeds"`
		AllowedMentions mentions       `json:"allowed_mentions"`
	}{cut(esc(s.Title), discordContentMax), []discordEmbed{embed}, mentions{Parse: []string{}}})
}

// webhookData is the data of a Standard Webhooks body: the API's objects.
type webhookData struct {
	Project    *api.Project    `json:"project,omitempty"`
	Deployment *api.Deployment `json:"deployment,omitempty"`
}

// webhookBody is the JSON of a Standard Webhooks message.
func webhookBody(p payload) ([]byte, error) {
	return marshal(struct {
		Type      string      `json:"type"`
		Timestamp string      `json:"timestamp"`
		Data      webhookData `json:"data"`
	}{p.Event, p.Timestamp.Format(time.RFC3339), webhookData{p.Project, p.Deployment}})
}

// emailParts returns an email's subject, plain text and HTML.
func emailParts(p payload) (subject, text, htmlBody string) {
	s := summarize(p)
	facts := s.facts()
	if s.Site != "" {
		facts = append(facts, [2]string{"Site", s.Site})
	}
	if s.LogURL != "" {
		facts = append(facts, [2]string{"Log", s.LogURL})
	}
	if s.Error != "" {
		facts = append(facts, [2]string{"Error", s.Error})
	}
	var t, h strings.Builder
	t.WriteString(s.Title + "\n\n")
	h.WriteString("<!DOCTYPE html>\n<html><body>\n<h2>" + html.EscapeString(s.Title) + "</h2>\n<table>\n")
	for _, f := range facts {
		t.WriteString(f[0] + ": " + f[1] + "\n")
		value := html.EscapeString(f[1])
		if f[0] == "Site" || f[0] == "Log" {
			value = `<a href="` + value + `">` + value + `</a>`
		}
		h.WriteString("<tr><th align=\"left\">" + f[0] + "</th><td>" + value + "</td></tr>\n")
	}
	h.WriteString("</table>\n")
	if s.Message != "" {
		t.WriteString("\n" + s.Message + "\n")
		h.WriteString("<pre>" + html.EscapeString(s.Message) + "</pre>\n")
	}
	h.WriteString("</body></html>\n")
	return "[miaobu] " + s.Title, t.String(), h.String()
}

// marshal encodes v as JSON without escaping &, < and > (no receiver puts it in HTML), so that
// what a format escaped reaches the receiver as it was written.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// firstLine returns s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// cut returns s with at most n characters, ending in "…" when it was longer.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shortSHA returns the first seven characters of a commit SHA.
func shortSHA(sha string) string {
	return sha[:min(7, len(sha))]
}

// duration formats a build's seconds as "12s" or "3m 5s".
func duration(seconds float64) string {
	d := time.Duration(math.Round(seconds)) * time.Second
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
}
