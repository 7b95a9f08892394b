package store

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCommitMessagesAreCut(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	long := strings.Repeat("é", 3*MaxCommitMessage) // two bytes each: a plain cut would split one
	check := func(how string, id int64) {
		t.Helper()
		d, err := s.Deployment(id)
		if err != nil {
			t.Fatal(err)
		}
		msg := d.CommitMessage
		if len(msg) > MaxCommitMessage || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "…") ||
			!strings.HasPrefix(long, strings.TrimSuffix(msg, "…")) || len(msg) < MaxCommitMessage-4 {
			t.Errorf("%s: stored a message of %d bytes ending %q", how, len(msg), msg[max(0, len(msg)-8):])
		}
		if len(d.CommitAuthor) > 256 {
			t.Errorf("%s: stored an author of %d bytes", how, len(d.CommitAuthor))
		}
	}

	res, err := s.RecordPush(context.Background(), Push{ProjectID: p.ID, DeliveryID: "d", CommitSHA: sha("a"), Branch: "main",
		CommitMessage: long, CommitAuthor: strings.Repeat("a", 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	check("webhook", res.DeploymentID)
	manual := &Deployment{ProjectID: p.ID, CommitSHA: sha("b"), Branch: "main", CommitMessage: long}
	if err := s.CreateDeployment(manual); err != nil {
		t.Fatal(err)
	}
	check("deploy", manual.ID)
	if err := s.UpdateRunning(manual.ID, func(d *Deployment) { d.CommitMessage = long + "x" }); err != nil {
		t.Fatal(err)
	}
	check("build", manual.ID)

	short := &Deployment{ProjectID: p.ID, CommitSHA: sha("c"), Branch: "main", CommitMessage: "Fix the header\n\nDetails."}
	if err := s.CreateDeployment(short); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Deployment(short.ID); d.CommitMessage != short.CommitMessage {
		t.Errorf("a short message was changed: %q", d.CommitMessage)
	}
	exact := strings.Repeat("x", MaxCommitMessage)
	if LimitCommitMessage(exact) != exact || LimitCommitMessage(exact+"y") == exact+"y" {
		t.Error("the limit is not exactly MaxCommitMessage bytes")
	}
}
