package racefree

import (
	"context"

	"github.com/racefree/racefree/dialect"
)

// ignoreChecker is the dialect's check of what INSERT IGNORE skipped, or
// nil: a batch uses IGNORE only where it can tell a skipped row from a
// value stored altered (see dialect.IgnoreChecker).
func (o *op) ignoreChecker() dialect.IgnoreChecker {
	ic, _ := o.d.(dialect.IgnoreChecker)
	return ic
}

// checkIgnored fails when the INSERT IGNORE just run on q, which sent rows
// and got returned rows back, stored some value altered. q must be the
// same session: a transaction or savepoint, which the caller rolls back.
func (o *op) checkIgnored(ctx context.Context, q dialect.Querier, sent, returned int) error {
	altered, err := o.ignoreChecker().CheckIgnored(ctx, q, sent, returned)
	if err != nil {
		return o.db.wrapErr(o.verb, err)
	}
	if altered == "" {
		return nil
	}
	return inputError(o.verb, "%d of %d rows were skipped, but the server would have stored a value altered (%s); the batch was rolled back",
		sent-returned, sent, altered)
}
