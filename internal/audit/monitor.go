package audit

import "strings"

// Privacy and intrusion monitoring (issue 16, ADR 0046). Every read and
// change of an alert is recorded; refused attempts are the same action
// with OutcomeDenied. Entities name alerts "MonitorAlert/<id>", notes
// "MonitorNote/<id>", suppression rules "MonitorSuppression/<id>" and
// ingest runs "MonitorRun/<id>". Patients are named only for alerts of
// phivault's own log (an ingested source's patient ids are another
// system's and stay sealed).
const (
	// ActionMonitorIngest is an ingest of another system's access log:
	// Entities "MonitorRun/<id>"; Policies "source=<name>",
	// "events=<n>", "alerts=<n>", "suppressed=<n>", "bytes=<n>".
	ActionMonitorIngest Action = "monitor-ingest"
	// ActionMonitorAlertRead is a read of alerts (the queue, one alert,
	// its notes): Entities the alerts read.
	ActionMonitorAlertRead Action = "monitor-alert-read"
	// ActionMonitorDisposition sets an alert's status: Policies
	// "status=<status>".
	ActionMonitorDisposition Action = "monitor-alert-disposition"
	// ActionMonitorAssign assigns an alert: Policies "assignee=<account>".
	ActionMonitorAssign Action = "monitor-alert-assign"
	// ActionMonitorNote adds a sealed note to an alert.
	ActionMonitorNote Action = "monitor-alert-note"
	// ActionMonitorSuppress creates a suppression rule: Entities the
	// rule and the alert it came from; Policies "scope=<user,patient,
	// category>" (which parts are set, never their values).
	ActionMonitorSuppress Action = "monitor-suppress"
	// ActionMonitorAlert is an alert raised or updated by the engine:
	// Entities "MonitorAlert/<id>"; Policies "category=<c>",
	// "severity=<s>", "score=<0.00>", "source=<name>" and, when a rule
	// matched, "suppressed=<rule id>".
	ActionMonitorAlert Action = "monitor-alert"
)

// monitorPrefix begins every monitoring action above.
const monitorPrefix = "monitor-"

// Monitoring reports whether a is one of the monitoring service's own
// actions (the privacy office's work on the log, never an access to a
// record): they are left out of every patient's view ([Event.PatientView]).
func (a Action) Monitoring() bool { return strings.HasPrefix(string(a), monitorPrefix) }
