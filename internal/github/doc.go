// Package github owns miaobu's side of GitHub: checking and parsing the webhooks that GitHub
// sends, and the small REST client (Client) that reads repositories, branches and files and
// manages a repository's webhook, against api.github.com or a GitHub Enterprise server.
//
// The client speaks only to the endpoints that miaobu needs, through go-github, and turns
// failures into *Error values whose messages say what to do next and never contain the token.
package github
