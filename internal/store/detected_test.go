package store

import (
	"errors"
	"testing"
)

func TestRecordDetectedKeepsTheNewestBuildsOnTheProject(t *testing.T) {
	s, _ := openTest(t)
	p := newProject(t, s, "site")
	older, newer := &Deployment{ProjectID: p.ID, CommitSHA: sha("a")}, &Deployment{ProjectID: p.ID, CommitSHA: sha("b")}
	for _, d := range []*Deployment{older, newer} {
		if err := s.CreateDeployment(d); err != nil {
			t.Fatal(err)
		}
	}
	// Creating the newer deployment cancelled the older one, which records nothing any more.
	vite := DetectedSettings{Framework: "vite", InstallCommand: "npm ci", BuildCommand: "npm run build", OutputDirectory: "dist"}
	if err := s.RecordDetected(older.ID, vite); !errors.Is(err, ErrFinished) {
		t.Fatalf("recording on a finished deployment: %v, want ErrFinished", err)
	}
	if err := s.RecordDetected(newer.ID, vite); err != nil {
		t.Fatal(err)
	}
	d, err := s.Deployment(newer.ID)
	if err != nil || d.Detected == nil || *d.Detected != vite {
		t.Fatalf("deployment detected %+v (%v), want %+v", d.Detected, err, vite)
	}
	got, err := s.Project(p.ID)
	if err != nil || got.Detected == nil || *got.Detected != vite || got.DetectedBy != newer.ID {
		t.Fatalf("project detected %+v by %d (%v), want %+v by %d", got.Detected, got.DetectedBy, err, vite, newer.ID)
	}

	// A build that detects after a newer one did leaves the project's alone.
	p2 := newProject(t, s, "other")
	first, second := &Deployment{ProjectID: p2.ID, CommitSHA: sha("c")}, &Deployment{ProjectID: p2.ID, CommitSHA: sha("d")}
	for _, d := range []*Deployment{first, second} {
		if err := s.CreateDeployment(d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimNext(func(id int64) bool { return id != p2.ID }); err != nil {
			t.Fatal(err)
		}
	}
	static := DetectedSettings{Framework: "static", OutputDirectory: "."}
	if err := s.RecordDetected(second.ID, vite); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDetected(first.ID, static); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Project(p2.ID); got.Detected == nil || *got.Detected != vite || got.DetectedBy != second.ID {
		t.Errorf("project detected %+v by %d, want the newer build's %+v", got.Detected, got.DetectedBy, vite)
	}
	if d, _ := s.Deployment(first.ID); d.Detected == nil || *d.Detected != static {
		t.Errorf("the older deployment detected %+v, want its own %+v", d.Detected, static)
	}
}
