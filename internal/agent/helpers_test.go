package agent_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miaobu/miaobu/internal/agent/agenttest"
	"github.com/miaobu/miaobu/internal/api"
)

// remoteProject is a project of an HTTPS repository named after it, deploying branch.
func remoteProject(name, branch string) api.ProjectCreate {
	return api.ProjectCreate{Name: name, RepoURL: "https://example.com/" + name + ".git", Branch: branch}
}

// localProject is a project of the local repository dir, deploying main.
func localProject(name, dir string) api.ProjectCreate {
	return api.ProjectCreate{Name: name, RepoURL: dir, Branch: "main"}
}

// port is the port of the agent's listener.
func port(ta *agenttest.Agent) string {
	_, p, _ := net.SplitHostPort(ta.Config.Listen)
	return p
}

// fixture reads a payload from testdata/github-payloads.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "github-payloads", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushPayload returns the new-branch push fixture changed to push sha to branch.
func pushPayload(t testing.TB, branch, sha string) []byte {
	t.Helper()
	return movePayload(t, branch, strings.Repeat("0", 40), sha)
}

// movePayload returns the new-branch push fixture changed to move branch from commit before to sha.
func movePayload(t testing.TB, branch, before, sha string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, "push.with-new-branch.payload.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = "refs/heads/" + branch
	p["before"], p["after"] = before, sha
	p["head_commit"].(map[string]any)["id"] = sha
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeSite is a project whose build script writes dist/index.html with body, plus an asset.
func nodeSite(body string) map[string]string {
	return map[string]string{
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist/assets", {recursive: true});
fs.writeFileSync("dist/index.html", ` + "`" + body + "`" + `);
fs.writeFileSync("dist/assets/app-3f9a1c2e.js", "console.log(1)");
if (process.env.SLEEP) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.SLEEP)); }
`,
	}
}
