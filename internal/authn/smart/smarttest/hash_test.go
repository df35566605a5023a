package smarttest_test

import "crypto/sha256"

func hash(tok string) []byte { h := sha256.Sum256([]byte(tok)); return h[:] }
