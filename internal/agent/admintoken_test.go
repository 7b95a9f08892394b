package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEmptyAdminTokenIsReplaced(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	token, err := loadOrCreateAdminToken(file)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil || len(token) != 43 || string(data) != token+"\n" {
		t.Fatalf("token %q, file %q, %v", token, data, err)
	}
	if info, _ := os.Stat(file); info.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", info.Mode().Perm())
	}
	// The token written is the one kept.
	again, err := loadOrCreateAdminToken(file)
	if err != nil || again != token {
		t.Fatalf("second start: %q %v", again, err)
	}
}
