package config

// BulkExport configures FHIR Bulk Data exports (package bulk, ADR 0049).
// The zero value means the defaults.
type BulkExport struct {
	// Expiry is how long a finished export's files are kept before they
	// and their key are destroyed; 0 means the default (24h).
	Expiry Duration `json:"expiry,omitzero"`
	// MaxJobs is how many exports one client may have queued or running
	// at once (more: 429); 0 means the default (2).
	MaxJobs int `json:"max_jobs,omitzero"`
	// FileBytes is the size at which an output file is closed and the
	// next begun; 0 means the default (8 MiB).
	FileBytes int `json:"file_bytes,omitzero"`
}
