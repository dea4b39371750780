package gormrf_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/pgdialect"
	"github.com/racefree/racefree/gormrf"
	"github.com/racefree/racefree/gormrf/internal/gormtest"
)

// account exercises GORM's conventions: a column renamed by tag, a Go
// default, zero values, timestamps in two precisions, soft deletion.
type account struct {
	ID        uint   `gorm:"primaryKey"`
	Email     string `gorm:"column:email_address;size:191;uniqueIndex"`
	Name      string
	Age       int
	Active    bool
	Plan      string `gorm:"default:free"`
	CreatedAt time.Time
	UpdatedAt int64 `gorm:"autoUpdateTime:milli"`
	DeletedAt gorm.DeletedAt
}

const accountDDL = `id {{id}}, email_address {{text}} NOT NULL, name {{text}}, age INTEGER NOT NULL,
	active {{bool}} NOT NULL, plan {{text}} NOT NULL, created_at {{time}} NOT NULL,
	updated_at BIGINT NOT NULL, deleted_at {{time}} NULL, CONSTRAINT {{table}}_email UNIQUE (email_address)`

func TestFirstOrCreate(t *testing.T) {
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		ctx := context.Background()
		gdb := e.Open(t, gormtest.SQLitePath(t), 4)
		table := gormtest.CreateTable(t, gdb, "gormrf_acct", accountDDL)
		db := gdb.Table(table).Session(&gorm.Session{}) // reusable: chains start afresh
		before := time.Now().Add(-time.Second)

		var a account
		created, err := gormrf.FirstOrCreate(ctx, db, &a, account{Email: "ann@example.com"}, account{Name: "Ann", Active: true})
		if err != nil || !created {
			t.Fatalf("first call: created %v, err %v", created, err)
		}
		if a.ID == 0 || a.Email != "ann@example.com" || a.Name != "Ann" || !a.Active || a.Age != 0 || a.Plan != "free" {
			t.Errorf("new row read back as %+v", a)
		}
		if a.CreatedAt.Before(before) || time.UnixMilli(a.UpdatedAt).Before(before) {
			t.Errorf("CreatedAt %v, UpdatedAt %v: want both set to now", a.CreatedAt, time.UnixMilli(a.UpdatedAt))
		}

		// GORM reads the same row: the columns are where GORM expects them.
		var viaGorm account
		if err := db.Where("email_address = ?", "ann@example.com").First(&viaGorm).Error; err != nil {
			t.Fatal(err)
		}
		if viaGorm.ID != a.ID || viaGorm.Name != "Ann" || viaGorm.Plan != "free" || !viaGorm.Active {
			t.Errorf("GORM reads %+v, gormrf created %+v", viaGorm, a)
		}

		for _, lookup := range []any{
			account{Email: "ann@example.com"},
			&account{Email: "ann@example.com"},
			map[string]any{"Email": "ann@example.com"},
			racefree.Values{"email_address": "ann@example.com"},
		} {
			var b account
			created, err := gormrf.FirstOrCreate(ctx, db, &b, lookup, account{Name: "not used"})
			if err != nil || created {
				t.Fatalf("lookup %#v: created %v, err %v", lookup, created, err)
			}
			if b.ID != a.ID || b.Name != "Ann" {
				t.Errorf("lookup %#v: got %+v, want the row made first (attrs only apply to a new row)", lookup, b)
			}
		}

		// Soft-deleted rows are invisible, as to GORM's own queries: the
		// new row conflicts with the deleted one on the unique index.
		if err := db.Delete(&account{}, a.ID).Error; err != nil {
			t.Fatal(err)
		}
		var c account
		_, err = gormrf.FirstOrCreate(ctx, db, &c, account{Email: "ann@example.com"}, nil)
		if !errors.Is(err, racefree.ErrUniqueViolation) {
			t.Errorf("after a soft delete: err %v, want a unique violation (the deleted row still holds the e-mail)", err)
		}
		created, err = gormrf.FirstOrCreate(ctx, db.Unscoped(), &c, account{Email: "ann@example.com"}, nil)
		if err != nil || created || c.ID != a.ID || !c.DeletedAt.Valid {
			t.Errorf("Unscoped: created %v, err %v, row %+v: want the soft-deleted row", created, err, c)
		}
	})
}

func TestUpdateOrCreate(t *testing.T) {
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		ctx := context.Background()
		gdb := e.Open(t, gormtest.SQLitePath(t), 4)
		db := gdb.Table(gormtest.CreateTable(t, gdb, "gormrf_acct", accountDDL)).Unscoped().Session(&gorm.Session{})

		var a account
		created, err := gormrf.UpdateOrCreate(ctx, db, &a, account{Email: "bob@example.com"}, account{Name: "Bob", Age: 30})
		if err != nil || !created {
			t.Fatalf("first call: created %v, err %v", created, err)
		}
		if a.ID == 0 || a.Name != "Bob" || a.Age != 30 || a.Plan != "free" || a.CreatedAt.IsZero() || a.UpdatedAt == 0 {
			t.Errorf("new row read back as %+v", a)
		}
		time.Sleep(5 * time.Millisecond) // so that UpdatedAt (milliseconds) moves

		var b account
		created, err = gormrf.UpdateOrCreate(ctx, db, &b, account{Email: "bob@example.com"}, map[string]any{"name": "Robert", "active": true})
		if err != nil || created {
			t.Fatalf("second call: created %v, err %v", created, err)
		}
		if b.ID != a.ID || b.Name != "Robert" || !b.Active || b.Age != 30 {
			t.Errorf("updated row read back as %+v (first %+v)", b, a)
		}
		if !b.CreatedAt.Equal(a.CreatedAt) || b.UpdatedAt <= a.UpdatedAt {
			t.Errorf("CreatedAt %v → %v (must stay), UpdatedAt %d → %d (must move)", a.CreatedAt, b.CreatedAt, a.UpdatedAt, b.UpdatedAt)
		}
	})
}

// TestUpdateOrCreate_Race: 32 goroutines update-or-create one key at once;
// exactly one creates, none fails, every update lands on the one row.
func TestUpdateOrCreate_Race(t *testing.T) {
	gormtest.Watchdog(t, 3*time.Minute)
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		gdb := e.Open(t, gormtest.SQLitePath(t), 16)
		for _, scope := range []string{"unscoped", "soft-delete"} {
			t.Run(scope, func(t *testing.T) {
				updateOrCreateStorm(t, gdb, scope == "unscoped")
			})
		}
	})
}

// updateOrCreateStorm runs the storm; unscoped lets the unique index
// decide, scoped (deleted_at IS NULL in the lookup) racefree's named lock.
func updateOrCreateStorm(t *testing.T, gdb *gorm.DB, unscoped bool) {
	ctx := context.Background()
	table := gormtest.CreateTable(t, gdb, "gormrf_acct", accountDDL)
	db := gdb.Table(table).Session(&gorm.Session{})
	if unscoped {
		db = db.Unscoped()
	}
	const goroutines = 32
	var (
		mu      sync.Mutex // guards created and errs
		created int
		errs    []error
	)
	bar := newBarrier(goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			bar.wait()
			var a account
			c, err := gormrf.UpdateOrCreate(ctx, db, &a, account{Email: "hot@example.com"}, account{Age: i + 1})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if c {
				created++
			}
		})
	}
	wg.Wait()
	var rows int64
	if err := gdb.Table(table).Count(&rows).Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d goroutines: %d created, %d errors, %d rows", goroutines, created, len(errs), rows)
	if len(errs) > 0 || created != 1 || rows != 1 {
		t.Errorf("want 0 errors, 1 created, 1 row; first error: %v", errors.Join(errs...))
	}
}

func TestFirstOrCreate_BadInput(t *testing.T) {
	ctx := context.Background()
	e := gormtest.Get("sqlite")
	gdb := e.Open(t, gormtest.SQLitePath(t), 2)
	db := gdb.Table(gormtest.CreateTable(t, gdb, "gormrf_acct", accountDDL)).Session(&gorm.Session{})
	var a account
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"nil dest", func() error {
			_, err := gormrf.FirstOrCreate[account](ctx, db, nil, account{Email: "x"}, nil)
			return err
		}},
		{"empty lookup", func() error { _, err := gormrf.FirstOrCreate(ctx, db, &a, account{}, nil); return err }},
		{"lookup of another type", func() error {
			_, err := gormrf.FirstOrCreate(ctx, db, &a, struct{ Email string }{"x"}, nil)
			return err
		}},
		{"unknown column", func() error {
			_, err := gormrf.FirstOrCreate(ctx, db, &a, map[string]any{"mail": "x"}, nil)
			return err
		}},
		{"column in lookup and attrs", func() error {
			_, err := gormrf.FirstOrCreate(ctx, db, &a, account{Email: "x"}, account{Email: "y"})
			return err
		}},
		{"Where conditions", func() error {
			_, err := gormrf.FirstOrCreate(ctx, db.Where("age > ?", 3), &a, account{Email: "x"}, nil)
			return err
		}},
		{"Omit", func() error {
			_, err := gormrf.FirstOrCreate(ctx, db.Omit("name"), &a, account{Email: "x"}, nil)
			return err
		}},
		{"nothing to assign", func() error { _, err := gormrf.UpdateOrCreate(ctx, db, &a, account{Email: "x"}, nil); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, racefree.ErrInvalidInput) {
				t.Errorf("err %v, want one matching racefree.ErrInvalidInput", err)
			}
		})
	}
	var rows int64
	if err := db.Count(&rows).Error; err != nil || rows != 0 {
		t.Errorf("%d rows written by bad calls (err %v)", rows, err)
	}

	t.Run("not registered", func(t *testing.T) {
		plain, err := gorm.Open(gdb.Dialector, &gorm.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gormrf.FirstOrCreate(ctx, plain, &a, account{Email: "x"}, nil); !errors.Is(err, gormrf.ErrNotRegistered) {
			t.Errorf("err %v, want ErrNotRegistered", err)
		}
	})
}

func TestRegister_DialectMismatch(t *testing.T) {
	e := gormtest.Get("sqlite")
	gdb := e.Open(t, gormtest.SQLitePath(t), 2)
	fresh, err := gorm.Open(gdb.Dialector, &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = gormrf.Register(context.Background(), fresh, pgdialect.New())
	if err == nil || err.Error() != "gormrf: register: GORM talks to sqlite, but the racefree dialect is for postgres" {
		t.Errorf("err %v, want the mismatch named", err)
	}
}

// TestFirstOrCreate_PreparedStmt: under GORM's PrepareStmt the
// transaction's pool is a *gorm.PreparedStmtTX; racefree still joins the
// transaction underneath.
func TestFirstOrCreate_PreparedStmt(t *testing.T) {
	ctx := context.Background()
	gdb := gormtest.Get("sqlite").Open(t, gormtest.SQLitePath(t), 2)
	table := gormtest.CreateTable(t, gdb, "gormrf_acct", accountDDL)
	prepared := gdb.Session(&gorm.Session{PrepareStmt: true})
	var a account
	err := prepared.Transaction(func(tx *gorm.DB) error {
		if _, ok := tx.Statement.ConnPool.(*gorm.PreparedStmtTX); !ok {
			t.Errorf("pool %T, want *gorm.PreparedStmtTX", tx.Statement.ConnPool)
		}
		ex, err := gormrf.Executor(tx)
		if err != nil {
			return err
		}
		if _, ok := ex.(*racefree.Tx); !ok {
			t.Errorf("executor %T, want *racefree.Tx", ex)
		}
		_, err = gormrf.FirstOrCreate(ctx, tx.Table(table), &a, account{Email: "p@example.com"}, nil)
		if err != nil {
			return err
		}
		return errors.New("roll back")
	})
	var rows int64
	if err := gdb.Table(table).Unscoped().Count(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if err == nil || a.ID == 0 || rows != 0 {
		t.Errorf("err %v, row %+v, %d rows after rollback: want the row made inside, gone with the transaction", err, a, rows)
	}
}
