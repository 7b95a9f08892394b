// Command miaobu is the push-to-deploy agent and its CLI.
package main

import (
	"os"

	"github.com/miaobu/miaobu/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
