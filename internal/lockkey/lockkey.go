// Package lockkey turns lock names of any length and content into the keys
// each engine's named locks accept: a signed 64-bit integer for PostgreSQL
// advisory locks and racefree's lock table, and a string of at most 64
// characters for MySQL/MariaDB GET_LOCK.
//
// The derivations are stable across releases and simple to reproduce in
// another language, so that programs not written in Go can take the same
// locks:
//
//	Key64(name)     = the first 8 bytes of SHA-256("racefree:" + name), big-endian, as int64
//	MySQLName(name) = name, if it is valid UTF-8, at most 64 characters and does not begin with "racefree#";
//	                  otherwise "racefree#" + the first 48 hex digits of SHA-256(name)
package lockkey

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// keyPrefix separates racefree's key space from integers an application
// may pass to pg_advisory_lock itself: a name can only collide with another
// name, with probability about n²/2⁶⁵ for n names.
const keyPrefix = "racefree:"

// Key64 returns the 64-bit key for name.
func Key64(name string) int64 {
	sum := sha256.Sum256([]byte(keyPrefix + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// MaxMySQLName is the longest name GET_LOCK accepts (MySQL 5.7 and later,
// MariaDB), in characters.
const MaxMySQLName = 64

// hashedPrefix marks a hashed MySQL lock name. Names that begin with it are
// hashed too, so a caller cannot pick a short name equal to another name's
// hash.
const hashedPrefix = "racefree#"

// MySQLName returns the GET_LOCK name for name: name itself when it fits,
// so that locks stay readable in performance_schema and interoperate with
// other clients that use the same name, and a hash of it otherwise. The
// hash is 192 bits, so two different names never share a lock in practice.
func MySQLName(name string) string {
	if utf8.ValidString(name) && utf8.RuneCountInString(name) <= MaxMySQLName && !strings.HasPrefix(name, hashedPrefix) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return hashedPrefix + hex.EncodeToString(sum[:24])
}

// Label returns a short, printable, valid UTF-8 form of name for messages
// and for the informational name column of racefree's lock table: at most
// max bytes, cut at a character boundary.
func Label(name string, max int) string {
	s := strings.ToValidUTF8(name, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
