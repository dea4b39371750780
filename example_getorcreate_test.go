package racefree_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/racefree/racefree"
)

// exampleTag is the row type of the get-or-create examples: exported
// fields tagged with their columns.
type exampleTag struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Slug string `db:"slug"`
}

// Get a tag by name, creating it the first time. The unique index on name
// makes the constraint strategy safe under any number of concurrent
// callers; the second call finds the row.
func ExampleGetOrCreate() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, slug TEXT NOT NULL)`); err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		tag, created, err := racefree.GetOrCreate[exampleTag](ctx, db, "tags",
			racefree.Values{"name": "go"}, racefree.Values{"slug": "go-lang"}, racefree.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%+v created=%v\n", tag, created)
	}
	// Output:
	// {ID:1 Name:go Slug:go-lang} created=true
	// {ID:1 Name:go Slug:go-lang} created=false
}

// Many lookups in one call: one result per input, in input order, the
// repeated key created once, existing rows returned too.
func ExampleGetOrCreateMany() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, slug TEXT NOT NULL);
		INSERT INTO tags (name, slug) VALUES ('sql', 'sql')`); err != nil {
		fmt.Println(err)
		return
	}
	items := []racefree.Item{
		{Lookup: racefree.Values{"name": "go"}, Defaults: racefree.Values{"slug": "go"}},
		{Lookup: racefree.Values{"name": "sql"}, Defaults: racefree.Values{"slug": "ignored"}},
		{Lookup: racefree.Values{"name": "go"}, Defaults: racefree.Values{"slug": "go-again"}},
	}
	res, err := racefree.GetOrCreateMany[exampleTag](ctx, db, "tags", items, racefree.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res {
		fmt.Printf("%+v created=%v\n", r.Row, r.Created)
	}
	// Output:
	// {ID:2 Name:go Slug:go} created=true
	// {ID:1 Name:sql Slug:sql} created=false
	// {ID:2 Name:go Slug:go} created=false
}

// A counter that must not lose increments: UpdateOrCreateFunc locks the
// row (here: SQLite's write transaction) from the read to the write, and
// creates it on first use. Values works as the row type when no struct
// fits.
func ExampleUpdateOrCreateFunc() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE hits (page TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		row, created, err := racefree.UpdateOrCreateFunc(ctx, db, "hits", racefree.Values{"page": "/"},
			func(cur *racefree.Values) (racefree.Values, error) {
				if cur == nil {
					return racefree.Values{"n": 1}, nil
				}
				return racefree.Values{"n": (*cur)["n"].(int64) + 1}, nil
			}, racefree.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(row["page"], row["n"], created)
	}
	// Output:
	// / 1 true
	// / 2 false
	// / 3 false
}

// Link a post to a tag twice: the join row is added once, and the second
// call is not an error.
func ExampleLink() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE post_tags (post_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (post_id, tag_id))`); err != nil {
		fmt.Println(err)
		return
	}
	link := racefree.Values{"post_id": 1, "tag_id": 7}
	for range 2 {
		created, err := racefree.Link(ctx, db, "post_tags", link, racefree.Options{})
		fmt.Println(created, err)
	}
	deleted, err := racefree.Unlink(ctx, db, "post_tags", link, racefree.Options{})
	fmt.Println(deleted, err)
	// Output:
	// true <nil>
	// false <nil>
	// true <nil>
}

// UpdateOrCreate writes exactly the columns it is given on an existing
// row; Options.CreateOnly holds values used only to create one, and a
// Lazy value is computed only when it is written.
func ExampleUpdateOrCreate() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE profiles (
		email TEXT PRIMARY KEY, name TEXT NOT NULL, token TEXT NOT NULL, bio TEXT)`); err != nil {
		fmt.Println(err)
		return
	}
	type Profile struct {
		Email string  `db:"email"`
		Name  string  `db:"name"`
		Token string  `db:"token"`
		Bio   *string `db:"bio"`
	}
	tokens := 0
	newToken := racefree.Lazy(func(context.Context) (any, error) {
		tokens++ // an expensive call in real code
		return fmt.Sprintf("tok-%d", tokens), nil
	})
	create := racefree.Options{CreateOnly: racefree.Values{"name": "Ann", "token": newToken}}
	p, created, err := racefree.UpdateOrCreate[Profile](ctx, db, "profiles",
		racefree.Values{"email": "ann@example.com"}, racefree.Values{"bio": "hello"}, create)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Token, *p.Bio, created)
	// The row exists: only bio is written; name and token stay, and the
	// Lazy token is not computed.
	p, created, err = racefree.UpdateOrCreate[Profile](ctx, db, "profiles",
		racefree.Values{"email": "ann@example.com"}, racefree.Values{"bio": "hi again"}, create)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Token, *p.Bio, created, tokens)
	// Output:
	// Ann tok-1 hello true
	// Ann tok-1 hi again false 1
}

// A lookup and defaults written as structs rather than column names: the
// db tags name the columns, and omitempty leaves zero fields out (here the
// id, which the database assigns).
func ExampleValuesOf() {
	ctx := context.Background()
	db, cleanup, err := openExampleDB(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE members (
		id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`); err != nil {
		fmt.Println(err)
		return
	}
	type Member struct {
		ID    int64  `db:"id,omitempty"`
		Email string `db:"email"`
		Name  string `db:"name"`
	}
	type ByEmail struct {
		Email string `db:"email"`
	}
	lookup, err := racefree.ValuesOf(ByEmail{Email: "ann@example.com"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defaults, err := racefree.ValuesOf(struct {
		Name string `db:"name"`
	}{Name: "Ann"})
	if err != nil {
		fmt.Println(err)
		return
	}
	m, created, err := racefree.GetOrCreate[Member](ctx, db, "members", lookup, defaults, racefree.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.ID, m.Email, m.Name, created)
	whole, _ := racefree.ValuesOf(Member{Email: "bo@example.com", Name: "Bo"})
	fmt.Println(len(whole), whole["email"], whole["id"] == nil)
	// Output:
	// 1 ann@example.com Ann true
	// 2 bo@example.com true
}

// CreateOrGet suits lookups that are mostly new, such as recording each
// order's idempotency key: it inserts first, so a new key costs one
// statement, and a key seen before costs two.
func ExampleCreateOrGet() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE requests (id INTEGER PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE, status TEXT NOT NULL)`)
	defer cleanup()

	type request struct {
		ID     int64  `db:"id"`
		Status string `db:"status"`
	}
	for _, key := range []string{"req-1", "req-2", "req-1"} {
		r, created, err := racefree.CreateOrGet[request](ctx, db, "requests",
			racefree.Values{"idem_key": key}, racefree.Values{"status": "accepted"}, racefree.Options{})
		fmt.Println(key, r.ID, created, err)
	}
	// Output:
	// req-1 1 true <nil>
	// req-2 2 true <nil>
	// req-1 1 false <nil>
}

// Unlink removes a join row; of concurrent Unlinks of one link, exactly
// one reports deleting it, so a counter kept beside the links stays right.
func ExampleUnlink() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE follows (follower INTEGER NOT NULL, followee INTEGER NOT NULL, PRIMARY KEY (follower, followee));
		INSERT INTO follows VALUES (1, 2)`)
	defer cleanup()

	follow := racefree.Values{"follower": 1, "followee": 2}
	for range 2 {
		deleted, err := racefree.Unlink(ctx, db, "follows", follow, racefree.Options{})
		fmt.Println(deleted, err)
	}
	// Output:
	// true <nil>
	// false <nil>
}

// Explain tells how a get-or-create on these lookup columns decides who
// creates the row: with a unique index on exactly them, the index decides;
// without one, a named lock does. racefree doctor prints the same.
func ExampleExplain() {
	ctx := context.Background()
	db, cleanup := mustExampleDB(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);
		CREATE UNIQUE INDEX users_email ON users (email)`)
	defer cleanup()

	for _, lookup := range []string{"email", "name"} {
		e, err := racefree.Explain(ctx, db, "users", lookup)
		if err != nil {
			fmt.Println(err)
			return
		}
		index := "no covering index"
		if e.Index != nil {
			index = e.Index.Name
		}
		fmt.Printf("%s: %v (%s), nullable %v\n", lookup, e.Strategy, index, e.Nullable)
	}
	// Output:
	// email: constraint (users_email), nullable []
	// name: lock (no covering index), nullable [name]
}

// A get-or-create whose INSERT was cut off with no answer, and that then
// found the row, returns the row with a *CreatedUnknownError: the row is
// right, only whether this call created it is unknown. (The error is made
// up here: a connection cut during the INSERT cannot be staged on SQLite.)
func ExampleCreatedUnknownError() {
	welcome := func(created bool, err error) string {
		var unknown *racefree.CreatedUnknownError
		switch {
		case errors.As(err, &unknown):
			// Send the welcome mail through an idempotent path (RunOnce
			// keyed by the user), since this call may have created the user.
			return "maybe new user in " + unknown.Table + ": welcome once"
		case err != nil:
			return "error: " + err.Error()
		case created:
			return "new user: welcome"
		}
		return "existing user"
	}
	fmt.Println(welcome(true, nil))
	fmt.Println(welcome(false, nil))
	err := &racefree.CreatedUnknownError{Verb: "get or create", Table: "users", Err: io.ErrUnexpectedEOF}
	fmt.Println(welcome(false, fmt.Errorf("sign up: %w", err)))
	fmt.Println(errors.Is(err, racefree.ErrCreatedUnknown), errors.Is(err, racefree.ErrCommitUnknown))
	// Output:
	// new user: welcome
	// existing user
	// maybe new user in users: welcome once
	// true true
}
