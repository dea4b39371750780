package gormrf_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/sqlitedialect"
	"github.com/racefree/racefree/gormrf"
)

// Tag is an ordinary GORM model: AutoMigrate gives it a unique index on
// Name, which racefree's get-or-create then relies on.
type Tag struct {
	ID        uint
	Name      string `gorm:"size:64;uniqueIndex"`
	Slug      string
	Uses      int
	Active    bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// exampleDB opens GORM on SQLite the racefree way: racefree's *sql.DB
// (WAL, busy timeout, write transactions IMMEDIATE) handed to GORM's
// dialector, and racefree registered on the result.
func exampleDB(ctx context.Context) (*gorm.DB, func()) {
	dir, err := os.MkdirTemp("", "gormrf-example")
	if err != nil {
		panic(err)
	}
	sqlDB, err := sqlitedialect.Open(filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	db, err := gorm.Open(sqlite.New(sqlite.Config{Conn: sqlDB}), &gorm.Config{})
	if err != nil {
		panic(err)
	}
	if err := gormrf.Register(ctx, db, sqlitedialect.New()); err != nil { // the one line that adopts racefree
		panic(err)
	}
	if err := db.AutoMigrate(&Tag{}); err != nil {
		panic(err)
	}
	return db, func() { sqlDB.Close(); os.RemoveAll(dir) }
}

func ExampleFirstOrCreate() {
	ctx := context.Background()
	db, done := exampleDB(ctx)
	defer done()

	// Where(Tag{Name: "go"}).Attrs(Tag{Slug: "golang"}).FirstOrCreate(&tag), without the race.
	var tag Tag
	created, err := gormrf.FirstOrCreate(ctx, db, &tag, Tag{Name: "go"}, Tag{Slug: "golang"})
	fmt.Println(tag.ID, tag.Name, tag.Slug, created, err, !tag.CreatedAt.IsZero())

	// The attrs apply only to a new row.
	created, err = gormrf.FirstOrCreate(ctx, db, &tag, Tag{Name: "go"}, Tag{Slug: "ignored"})
	fmt.Println(tag.ID, tag.Name, tag.Slug, created, err)

	// Inside GORM's own transaction: racefree joins it.
	err = db.Transaction(func(tx *gorm.DB) error {
		_, err := gormrf.FirstOrCreate(ctx, tx, &tag, map[string]any{"name": "sql"}, map[string]any{"slug": "sql"})
		return err
	})
	fmt.Println(tag.ID, tag.Name, err)
	// Output:
	// 1 go golang true <nil> true
	// 1 go golang false <nil>
	// 2 sql <nil>
}

func ExampleUpdateOrCreate() {
	ctx := context.Background()
	db, done := exampleDB(ctx)
	defer done()

	var tag Tag
	created, err := gormrf.UpdateOrCreate(ctx, db, &tag, Tag{Name: "go"}, Tag{Slug: "go", Active: true})
	fmt.Println(tag.Name, tag.Slug, tag.Active, created, err)

	// Assign applies to the existing row; CreatedAt stays, UpdatedAt moves.
	// A map assigns zero values too.
	first := tag.CreatedAt
	created, err = gormrf.UpdateOrCreate(ctx, db, &tag, Tag{Name: "go"}, map[string]any{"active": false})
	fmt.Println(tag.Name, tag.Slug, tag.Active, created, err, tag.CreatedAt.Equal(first))
	// Output:
	// go go true true <nil>
	// go go false false <nil> true
}

func ExampleRunInTx() {
	ctx := context.Background()
	db, done := exampleDB(ctx)
	defer done()

	// A read-modify-write that RunInTx retries on serialization failures,
	// deadlocks and SQLITE_BUSY; fn gets a *gorm.DB bound to the
	// transaction, and gormrf calls inside join it.
	err := gormrf.RunInTx(ctx, db, racefree.TxOptions{}, func(tx *gorm.DB) error {
		var tag Tag
		if _, err := gormrf.FirstOrCreate(ctx, tx, &tag, Tag{Name: "go"}, nil); err != nil {
			return err
		}
		return tx.Model(&tag).Update("uses", tag.Uses+1).Error
	})
	var tag Tag
	db.First(&tag, "name = ?", "go")
	fmt.Println(tag.Name, tag.Uses, err)
	// Output:
	// go 1 <nil>
}
