// Package racefree is a stub of github.com/racefree/racefree for the
// analyzer's tests: the declarations the analyzer looks at, with their
// real signatures, and no behaviour. The analyzer matches them by package
// path and name, so the tests need no dependency on the real module.
package racefree

import (
	"cmp"
	"context"
)

type Values map[string]any

type Executor interface{}

type Options struct{}

type Item struct{ Lookup, Defaults Values }

type ItemResult[T any] struct {
	Row     T
	Created bool
	Err     error
}

type Tx struct{}

type RowLockOptions struct{}

func GetOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, defaults Values, opts Options) (row T, created bool, err error) {
	return row, false, nil
}

func CreateOrGet[T any](ctx context.Context, ex Executor, table string, lookup, defaults Values, opts Options) (row T, created bool, err error) {
	return row, false, nil
}

func UpdateOrCreate[T any](ctx context.Context, ex Executor, table string, lookup, values Values, opts Options) (row T, created bool, err error) {
	return row, false, nil
}

func UpdateOrCreateFunc[T any](ctx context.Context, ex Executor, table string, lookup Values, update func(current *T) (Values, error), opts Options) (row T, created bool, err error) {
	return row, false, nil
}

func GetOrCreateMany[T any](ctx context.Context, ex Executor, table string, items []Item, opts Options) ([]ItemResult[T], error) {
	return nil, nil
}

// LockRows' type parameter is a key type, not a row type: never reported.
func LockRows[K cmp.Ordered](ctx context.Context, tx *Tx, table, column string, keys []K, lock RowLockOptions) ([]K, error) {
	return keys, nil
}

func ValuesOf(v any) (Values, error) { return nil, nil }

// The library calls its own verbs with its type parameter: never
// reported.
func getOrCreateOne[T any](ctx context.Context, ex Executor) (T, error) {
	row, _, err := GetOrCreate[T](ctx, ex, "t", nil, nil, Options{})
	return row, err
}
