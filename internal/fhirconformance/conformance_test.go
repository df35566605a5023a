package fhirconformance_test

import (
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// TestConformance runs every check against one server per driver.
func TestConformance(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		t.Run("read", func(t *testing.T) { checkRead(t, s) })
		t.Run("create", func(t *testing.T) { checkCreate(t, s) })
		t.Run("update", func(t *testing.T) { checkUpdate(t, s) })
		t.Run("conditional update", func(t *testing.T) { checkConditionalUpdate(t, s) })
		t.Run("delete", func(t *testing.T) { checkDelete(t, s) })
		t.Run("patch", func(t *testing.T) { checkPatch(t, s) })
		t.Run("history", func(t *testing.T) { checkHistory(t, s) })
		t.Run("search", func(t *testing.T) { checkSearch(t, s) })
		t.Run("batch and transaction", func(t *testing.T) { checkBundles(t, s) })
		t.Run("capabilities", func(t *testing.T) { checkCapabilities(t, s) })
		t.Run("content negotiation", func(t *testing.T) { checkFormats(t, s) })
	})
}
