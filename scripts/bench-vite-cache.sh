#!/bin/sh
# Push-to-live of a Vite + React app through a running agent, measured beside the same work done
# by hand, in the same run, interleaved so both see the same machine:
#   first  - a new project's first deploy (empty build cache) against `npm ci && vite build` by hand
#            with an empty npm cache;
#   second - a push of a second commit with the lockfile unchanged against a bare `vite build`.
# Each round adds a new project. Dependencies come from the npm registry.
#
# Usage: scripts/bench-vite-cache.sh [ROUNDS] (default 5), from the repository root.
# Environment: BENCH_LISTEN (default 127.0.0.1:8097) is where the agent listens.
set -eu

rounds=${1:-5}
listen=${BENCH_LISTEN:-127.0.0.1:8097}
repo_root=$(pwd)
work=$(mktemp -d)
agent_pid=""
cleanup() {
	if [ -n "$agent_pid" ]; then
		kill "$agent_pid" 2>/dev/null || true
		wait "$agent_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# median prints the median of its arguments.
median() {
	printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}

# seconds prints milliseconds as seconds.
seconds() { awk -v ms="$1" 'BEGIN {printf "%.2f s", ms / 1000}'; }

echo "building miaobu" >&2
go build -o "$work/miaobu" "$repo_root/cmd/miaobu"
miaobu() { "$work/miaobu" "$@"; }

# The app: what `npm create vite -- --template react` makes, reduced to one component.
app=$work/app
mkdir -p "$app/src"
cat >"$app/package.json" <<'EOF'
{
  "name": "bench-app",
  "private": true,
  "version": "0.0.0",
  "type": "module",
  "scripts": {"dev": "vite", "build": "vite build", "preview": "vite preview"},
  "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1"},
  "devDependencies": {"@vitejs/plugin-react": "^4.7.0", "vite": "^6.4.1"}
}
EOF
cat >"$app/vite.config.js" <<'EOF'
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

export default defineConfig({ plugins: [react()] })
EOF
cat >"$app/src/main.jsx" <<'EOF'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import App from './App.jsx'

createRoot(document.getElementById('root')).render(<StrictMode><App /></StrictMode>)
EOF
printf 'node_modules\ndist\n' >"$app/.gitignore"

# version writes a version of the app whose page and component both carry marker.
version() {
	cat >"$app/index.html" <<EOF
<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8" /><title>$1</title></head>
  <body><div id="root"></div><script type="module" src="/src/main.jsx"></script></body>
</html>
EOF
	cat >"$app/src/App.jsx" <<EOF
import { useState } from 'react'

export default function App() {
  const [count, setCount] = useState(0)
  return <button onClick={() => setCount((c) => c + 1)}>$1: {count}</button>
}
EOF
}

# commit commits the app as it is and prints the commit.
commit() {
	git -C "$app" add -A
	git -C "$app" -c user.name=bench -c user.email=bench@example.com commit -q -m "$1"
	git -C "$app" rev-parse HEAD
}

version "initial"
echo "locking the app's dependencies (npm registry)" >&2
(cd "$app" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
git -C "$app" init -q -b main
commit "initial" >/dev/null
git clone -q "$app" "$work/hand"

export MIAOBU_DATA_DIR="$work/data" MIAOBU_LISTEN="$listen" MIAOBU_AGENT_URL="http://$listen"
"$work/miaobu" agent >"$work/agent.log" 2>&1 &
agent_pid=$!
until curl -fs "http://$listen/healthz" >/dev/null 2>&1; do
	kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log" >&2; exit 1; }
	sleep 0.1
done

# push delivers a signed push of commit $3 to project $1 whose webhook secret is $2.
push() {
	body=$(printf '{"ref":"refs/heads/main","after":"%s","head_commit":{"id":"%s","message":"bench","author":{"name":"bench"}}}' "$3" "$3")
	sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$2" | sed 's/.*= //')
	curl -fs -o /dev/null -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
		-H "X-GitHub-Delivery: bench-$(date +%s%N)" -H "X-Hub-Signature-256: sha256=$sig" \
		--data-binary "$body" "http://$listen/api/v1/webhooks/github/$1"
}

# live waits until site $1 serves a page that contains $2.
live() {
	until curl -fs -H "Host: $1.localhost" "http://$listen/" 2>/dev/null | grep -q "$2"; do
		sleep 0.01
	done
}

hand_ms="" first_ms="" second_ms="" bare_ms=""
round=1
while [ "$round" -le "$rounds" ]; do
	project=$(miaobu project add "bench$round" --repo-url "$app" --branch main --json)
	id=$(printf '%s' "$project" | sed -n 's/^ *"id": \([0-9]*\),$/\1/p')
	secret=$(printf '%s' "$project" | sed -n 's/.*"webhook_secret": "\(.*\)".*/\1/p')

	version "first-$round"
	sha=$(commit "first $round")
	# By hand: a fresh install with an empty npm cache, then the build.
	git -C "$work/hand" pull -q
	start=$(now_ms)
	(cd "$work/hand" && rm -rf node_modules dist &&
		npm_config_cache="$work/npm-cache-$round" npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
		./node_modules/.bin/vite build >/dev/null)
	hand=$(($(now_ms) - start))
	start=$(now_ms)
	push "$id" "$secret" "$sha"
	live "bench$round" "first-$round"
	first=$(($(now_ms) - start))

	version "second-$round"
	sha=$(commit "second $round")
	start=$(now_ms)
	push "$id" "$secret" "$sha"
	live "bench$round" "second-$round"
	second=$(($(now_ms) - start))
	git -C "$work/hand" pull -q
	start=$(now_ms)
	(cd "$work/hand" && ./node_modules/.bin/vite build >/dev/null)
	bare=$(($(now_ms) - start))

	echo "round $round: first deploy $(seconds "$first") (by hand $(seconds "$hand")); second push to live $(seconds "$second") (bare vite build $(seconds "$bare"))" >&2
	hand_ms="$hand_ms $hand" first_ms="$first_ms $first" second_ms="$second_ms $second" bare_ms="$bare_ms $bare"
	round=$((round + 1))
done

hand=$(median $hand_ms) first=$(median $first_ms) second=$(median $second_ms) bare=$(median $bare_ms)
echo
echo "medians of $rounds rounds:"
echo "  npm ci && vite build by hand   $(seconds "$hand")"
echo "  first deploy, push to live     $(seconds "$first")   target <= $(seconds $((hand + 1000)))"
echo "  bare vite build                $(seconds "$bare")"
echo "  second push to live            $(seconds "$second")   target <= $(seconds $((bare * 3 / 2 + 500)))"
echo
grep -h 'Installing: skipped' "$work"/data/logs/*.log | tail -1
