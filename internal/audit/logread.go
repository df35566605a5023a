package audit

// ActionLogRead is an auditor's read of audit events through the
// transparency log's entry bundles (/log/tile/entries/...). Entities
// carry the bundle path ("log/tile/entries/<N>[.p/<W>]"); denied
// attempts carry OutcomeDenied. Reading the public checkpoint, hash
// tiles and proofs is not audited: they reveal no event.
const ActionLogRead Action = "audit-log-read"
