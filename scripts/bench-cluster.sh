#!/bin/sh
# Three clustered agents beside one single (bbolt) agent, in the same run on this machine:
#   webhooks - signed pushes of distinct commits fired by cmd/miaobu-load with building paused: at
#              the single agent, at one clustered node, and round-robin at the three nodes; all to
#              one project, then spread over 16 projects;
#   builds   - PROJECTS projects deployed at once, each build sleeping 2 s, with build.concurrency
#              1 on every agent: how long until all are live on one agent and on three.
# Every agent listens on loopback; the cluster's nodes share this machine's disk and cores.
#
# Usage: scripts/bench-cluster.sh, from the repository root.
# Environment: BENCH_DELIVERIES (default 1000) pushes per measured run, BENCH_CLIENTS (default 16)
# concurrent clients, BENCH_PROJECTS (default 9) projects built.
set -eu

deliveries=${BENCH_DELIVERIES:-1000}
clients=${BENCH_CLIENTS:-16}
projects=${BENCH_PROJECTS:-9}
repo_root=$(pwd)
work=$(mktemp -d)
pids=""
cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	for pid in $pids; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

echo "building miaobu and miaobu-load" >&2
go build -o "$work/miaobu" "$repo_root/cmd/miaobu"
go build -o "$work/miaobu-load" "$repo_root/cmd/miaobu-load"

# start_agent NAME PORT CONCURRENCY [ENV...] runs an agent on 127.0.0.1:PORT with data dir
# $work/NAME and waits until it answers.
start_agent() {
	name=$1 port=$2 concurrency=$3
	shift 3
	env MIAOBU_DATA_DIR="$work/$name" MIAOBU_LISTEN="127.0.0.1:$port" MIAOBU_BUILD_CONCURRENCY="$concurrency" \
		MIAOBU_BUILD_SANDBOX=none MIAOBU_CONFIG="$work/none.yaml" "$@" "$work/miaobu" agent >"$work/$name.log" 2>&1 &
	pids="$pids $!"
}

# wait_up PORT waits until the agent on PORT answers.
wait_up() {
	for _ in $(seq 600); do
		curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "the agent on port $1 did not start" >&2
	exit 1
}

# stop_agents stops every agent started so far.
stop_agents() {
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	for pid in $pids; do wait "$pid" 2>/dev/null || true; done
	pids=""
}

# start_single CONCURRENCY runs the single agent on port 8190.
start_single() {
	rm -rf "$work/single"
	start_agent single 8190 "$1"
	wait_up 8190
}

# start_cluster CONCURRENCY runs three clustered agents on ports 8191-8193, routes on 7191-7193.
start_cluster() {
	peers=nats-route://127.0.0.1:7191,nats-route://127.0.0.1:7192,nats-route://127.0.0.1:7193
	for i in 1 2 3; do
		rm -rf "$work/node$i"
		start_agent "node$i" "819$i" "$1" MIAOBU_CLUSTER_NODE="node$i" MIAOBU_CLUSTER_LISTEN="127.0.0.1:719$i" \
			MIAOBU_CLUSTER_PEERS="$peers" MIAOBU_CLUSTER_SECRET=bench-secret-of-the-benchmark-cluster
	done
	for i in 1 2 3; do wait_up "819$i"; done
}

# cli PORT DATA_DIR ARGS... runs the CLI against the agent on PORT.
cli() {
	port=$1 dir=$2
	shift 2
	MIAOBU_AGENT_URL="http://127.0.0.1:$port" MIAOBU_DATA_DIR="$work/$dir" MIAOBU_CONFIG="$work/none.yaml" "$work/miaobu" "$@"
}

# add_load_project PORT DATA_DIR adds the project pushes go to and prints its webhook secret.
add_load_project() {
	cli "$1" "$2" project add load --repo-url https://example.com/x.git --branch main --json |
		sed -n 's/.*"webhook_secret": "\(.*\)".*/\1/p'
}

# add_spread_projects PORT DATA_DIR NODES adds 16 projects and prints, comma-separated, the
# webhook URLs of each project on each of NODES ports (8191 and on; PORT alone when NODES is 0;
# with NODES "affinity", each project on one of the three nodes only, as a balancer that hashes
# the path sends it), then on a second line their secrets in the same order.
add_spread_projects() {
	urls="" secrets=""
	for i in $(seq 16); do
		out=$(cli "$1" "$2" project add "spread-$i" --repo-url "https://example.com/s$i.git" --branch main --json)
		id=$(printf '%s\n' "$out" | sed -n 's/^  "id": \([0-9]*\),/\1/p')
		secret=$(printf '%s\n' "$out" | sed -n 's/.*"webhook_secret": "\(.*\)".*/\1/p')
		case $3 in
		0) ports=$1 ;;
		affinity) ports=$((8191 + i % 3)) ;;
		*) ports=$(seq 8191 $((8190 + $3))) ;;
		esac
		for port in $ports; do
			urls="$urls${urls:+,}http://127.0.0.1:$port$hook$id"
			secrets="$secrets${secrets:+,}$secret"
		done
	done
	printf '%s\n%s\n' "$urls" "$secrets"
}

# load URLS SECRET CLIENTS runs miaobu-load and prints its result line.
load() {
	"$work/miaobu-load" -url "$1" -secret "$2" -c "$3" -n "$deliveries" -warmup 100
}

hook=/api/v1/webhooks/github/
echo "## webhooks: $deliveries signed pushes per run, building paused"
start_single 0
secret=$(add_load_project 8190 single)
echo "single agent, 1 client:          $(load "http://127.0.0.1:8190${hook}1" "$secret" 1)"
echo "single agent, $clients clients:         $(load "http://127.0.0.1:8190${hook}1" "$secret" "$clients")"
spread=$(add_spread_projects 8190 single 0)
echo "single agent, $clients clients, 16 projects: $(load "$(echo "$spread" | sed -n 1p)" "$(echo "$spread" | sed -n 2p)" "$clients")"
stop_agents
start_cluster 0
secret=$(add_load_project 8191 node1)
id=$(cli 8191 node1 project list --json | sed -n 's/.*"id": \([0-9]*\),.*/\1/p' | head -1)
echo "one clustered node, 1 client:    $(load "http://127.0.0.1:8191${hook}$id" "$secret" 1)"
echo "one clustered node, $clients clients:   $(load "http://127.0.0.1:8191${hook}$id" "$secret" "$clients")"
urls="http://127.0.0.1:8191${hook}$id,http://127.0.0.1:8192${hook}$id,http://127.0.0.1:8193${hook}$id"
echo "three nodes round-robin, $clients clients: $(load "$urls" "$secret" "$clients")"
spread=$(add_spread_projects 8191 node1 1)
echo "one clustered node, $clients clients, 16 projects: $(load "$(echo "$spread" | sed -n 1p)" "$(echo "$spread" | sed -n 2p)" "$clients")"
spread=$(add_spread_projects 8191 node1 3)
echo "three nodes round-robin, $clients clients, 16 projects: $(load "$(echo "$spread" | sed -n 1p)" "$(echo "$spread" | sed -n 2p)" "$clients")"
spread=$(add_spread_projects 8191 node1 affinity)
echo "three nodes, a project's pushes to one node, $clients clients, 16 projects: $(load "$(echo "$spread" | sed -n 1p)" "$(echo "$spread" | sed -n 2p)" "$clients")"
stop_agents

# The site every project builds: a build script that takes 2 s, no dependencies to install.
site="$work/site"
mkdir -p "$site"
git -C "$site" init --quiet --initial-branch=main
printf '<h1>bench</h1>\n' >"$site/index.html"
printf '{"name":"bench","private":true,"scripts":{"build":"sleep 2 && mkdir -p dist && cp index.html dist/"}}\n' >"$site/package.json"
git -C "$site" add -A
git -C "$site" -c user.name=bench -c user.email=bench@example.com commit --quiet -m bench

# build_all PORT DATA_DIR adds the projects, deploys them all at once and prints the milliseconds
# until every one is live.
build_all() {
	for i in $(seq "$projects"); do
		cli "$1" "$2" project add "bench-$i" --repo-url "$site" --branch main --install-command true --output-dir dist >/dev/null 2>&1
	done
	start=$(now_ms)
	for i in $(seq "$projects"); do cli "$1" "$2" deploy "bench-$i" >/dev/null 2>&1; done
	while [ "$(cli "$1" "$2" deployment list --json --limit 1000 | grep -c '"status": "deployed"')" -lt "$projects" ]; do
		sleep 0.2
	done
	echo $(($(now_ms) - start))
}

echo
echo "## builds: $projects projects deployed at once, 2 s each, build.concurrency 1 per agent"
start_single 1
single_ms=$(build_all 8190 single)
stop_agents
start_cluster 1
cluster_ms=$(build_all 8191 node1)
echo "single agent:   all live in ${single_ms} ms"
echo "three nodes:    all live in ${cluster_ms} ms"
awk -v a="$single_ms" -v b="$cluster_ms" 'BEGIN {printf "three nodes / single agent: %.2fx the throughput\n", a / b}'
