package gormrf

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect"
)

// PluginName is the name gormrf registers under in gorm.Config.Plugins.
const PluginName = "racefree"

// ErrNotRegistered is returned by every function of the package when
// Register was not called on the *gorm.DB (or the DB it was made from).
var ErrNotRegistered = errors.New("gormrf: racefree is not registered on this *gorm.DB: call gormrf.Register(ctx, db, dialect) once after gorm.Open")

// plugin is the racefree handle kept in gorm.Config.Plugins, so that every
// session and transaction made from the registered *gorm.DB finds it.
type plugin struct {
	db *racefree.DB

	// txs maps a *sql.Tx that RunInTx began to racefree's *Tx for it, which
	// knows the isolation level and numbers its savepoints. Entries live
	// while RunInTx's function runs.
	txs sync.Map // *sql.Tx → *racefree.Tx
}

var _ gorm.Plugin = (*plugin)(nil)

// Name implements gorm.Plugin.
func (p *plugin) Name() string { return PluginName }

// Initialize implements gorm.Plugin. Register did the work.
func (p *plugin) Initialize(*gorm.DB) error { return nil }

// Register makes racefree available on db: it wraps db's *sql.DB with
// racefree.New and d, the racefree dialect of db's engine
// (pgdialect.New(), mysqldialect.New() or sqlitedialect.New()), and keeps
// the result as a GORM plugin. Call it once, after gorm.Open; sessions and
// transactions made from db share it. ctx governs racefree.New's ping and
// version check.
//
// d must name the engine GORM talks to: a mismatch is an error. For SQLite,
// open the *sql.DB with sqlitedialect.Open (or sqlitedialect.DriverDSN) and
// hand it to GORM's dialector as its Conn, so that write transactions
// begin IMMEDIATE (see package sqlitedialect).
func Register(ctx context.Context, db *gorm.DB, d dialect.Dialect) error {
	if db == nil || db.Config == nil {
		return errors.New("gormrf: register: nil *gorm.DB")
	}
	if d == nil {
		return errors.New("gormrf: register: nil dialect")
	}
	if db.Dialector != nil && db.Dialector.Name() != d.Name() {
		return fmt.Errorf("gormrf: register: GORM talks to %s, but the racefree dialect is for %s", db.Dialector.Name(), d.Name())
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("gormrf: register: get *sql.DB: %w", err)
	}
	rdb, err := racefree.New(ctx, sqlDB, d)
	if err != nil {
		return err
	}
	if err := db.Use(&plugin{db: rdb}); err != nil {
		rdb.Close()
		return fmt.Errorf("gormrf: register: %w", err)
	}
	return nil
}

// pluginOf returns the plugin Register stored on db's config.
func pluginOf(db *gorm.DB) (*plugin, error) {
	if db == nil || db.Config == nil {
		return nil, errors.New("gormrf: nil *gorm.DB")
	}
	p, ok := db.Config.Plugins[PluginName].(*plugin)
	if !ok {
		return nil, ErrNotRegistered
	}
	return p, nil
}

// DB returns the *racefree.DB that Register made for db.
func DB(db *gorm.DB) (*racefree.DB, error) {
	p, err := pluginOf(db)
	if err != nil {
		return nil, err
	}
	return p.db, nil
}

// Executor returns where racefree operations run for db: inside db's
// transaction when db is bound to one (GORM's db.Transaction or db.Begin, or
// RunInTx), on its pinned connection after db.Connection, else on the pool.
// Pass it to any racefree verb to join GORM's work, for example
//
//	err := db.Transaction(func(tx *gorm.DB) error {
//		ex, err := gormrf.Executor(tx)
//		if err != nil {
//			return err
//		}
//		return racefree.LockNamed(ctx, ex.(*racefree.Tx), "invoice-run", racefree.LockOptions{})
//	})
//
// A transaction GORM began is adopted with racefree's DB.WrapTx without
// options: GORM does not record the isolation level it was begun with, so
// racefree assumes the strictest case that still lets it work (see
// racefree.DB.WrapTx). Begin it with RunInTx to give racefree the level.
func Executor(db *gorm.DB) (racefree.Executor, error) {
	p, err := pluginOf(db)
	if err != nil {
		return nil, err
	}
	var pool gorm.ConnPool = db.ConnPool
	if db.Statement != nil && db.Statement.ConnPool != nil {
		pool = db.Statement.ConnPool
	}
	if ptx, ok := pool.(*gorm.PreparedStmtTX); ok {
		pool = ptx.Tx
	}
	switch c := pool.(type) {
	case *sql.Tx:
		if t, ok := p.txs.Load(c); ok {
			return t.(*racefree.Tx), nil
		}
		return p.db.WrapTx(c, nil), nil
	case *sql.Conn:
		return p.db.WrapConn(c), nil
	case *sql.DB:
		if c != p.db.SQL() {
			return nil, errors.New("gormrf: the *gorm.DB uses another *sql.DB than the one racefree was registered with")
		}
		return p.db, nil
	case *gorm.PreparedStmtDB:
		return p.db, nil
	}
	return nil, fmt.Errorf("gormrf: unsupported GORM connection pool %T (want *sql.DB, *sql.Tx or *sql.Conn)", pool)
}

// optionsKey is the gorm setting WithOptions stores racefree.Options under.
const optionsKey = "gormrf:options"

// WithOptions returns db with racefree.Options for the gormrf calls made
// with it: a strategy demanded, coalescing, the transaction options of the
// lock strategy. Without it the zero Options apply.
//
//	created, err := gormrf.FirstOrCreate(ctx, gormrf.WithOptions(db, racefree.Options{NoCoalesce: true}), &tag, Tag{Name: "go"}, nil)
func WithOptions(db *gorm.DB, opts racefree.Options) *gorm.DB {
	return db.Set(optionsKey, opts)
}

func optionsOf(db *gorm.DB) racefree.Options {
	if v, ok := db.Get(optionsKey); ok {
		if o, ok := v.(racefree.Options); ok {
			return o
		}
	}
	return racefree.Options{}
}
