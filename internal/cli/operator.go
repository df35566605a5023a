package cli

import (
	"os"
	"os/user"
	"strconv"
)

// osOperator names the operator of an offline command in its audit
// events: the operating-system account that runs it, "os:<login>"
// (the prefix keeps it apart from phivault account ids). The login
// comes from the process's user id (os/user), not from $USER, which
// the caller sets at will; "os:uid:<n>" when the account has no name.
// Whoever holds the data directory and the key file can still run the
// command under any account they control: this names the account, and
// the host's own login records say who used it.
func osOperator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "os:" + u.Username
	}
	return "os:uid:" + strconv.Itoa(os.Getuid())
}
