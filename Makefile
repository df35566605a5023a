# Convenience targets. The README's two commands (go run ./cmd/phivault demo,
# go test ./...) need none of this.

.PHONY: screenshots

# screenshots drives Chromium (/usr/bin/chromium, or PHIVAULT_CHROMIUM)
# through the web UI on synthetic demo data and writes a PNG of each role's
# main pages, at desktop and phone widths, to docs/screenshots/.
screenshots:
	PHIVAULT_SCREENSHOTS=$(CURDIR)/docs/screenshots go test ./internal/webui -run '^TestScreenshots$$' -count=1 -v
