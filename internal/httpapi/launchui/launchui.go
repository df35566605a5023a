// Package launchui holds the server-rendered pages of the SMART App
// Launch authorize flow (sign-in, second factor, patient picker,
// consent, errors) and their stylesheet, embedded in the binary.
//
// # Security invariants
//
//   - Pages are html/template: every value is escaped in context.
//   - No inline script or style and no third-party asset: the pages run
//     under a CSP of default-src 'none' with style-src 'self'.
//   - Every form carries the sealed flow and the CSRF token bound to the
//     browser's flow cookie; the handlers check both.
package launchui

import (
	"embed"
	"html/template"
)

//go:embed authorize.html
var pages embed.FS

// CSS is the stylesheet served at /oauth2/assets/launch.css.
//
//go:embed launch.css
var CSS []byte

// Templates are the pages: "error", "login", "mfa", "picker", "consent".
var Templates = template.Must(template.ParseFS(pages, "authorize.html"))
