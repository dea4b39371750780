package gormrf_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/gormrf"
	"github.com/racefree/racefree/gormrf/internal/gormtest"
)

type counter struct {
	ID int64
	N  int64
}

// TestRunInTx_Retries: 16 goroutines increment one counter with GORM's
// read-then-write inside SERIALIZABLE transactions; the engine fails the
// conflicting ones, RunInTx retries them, and every increment lands.
func TestRunInTx_Retries(t *testing.T) {
	gormtest.Watchdog(t, 3*time.Minute)
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		ctx := context.Background()
		gdb := e.Open(t, gormtest.SQLitePath(t), 16)
		table := gormtest.CreateTable(t, gdb, "gormrf_counter", "id BIGINT PRIMARY KEY, n BIGINT NOT NULL")
		if err := gdb.Table(table).Create(&counter{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		const goroutines, each = 16, 5
		var retries atomic.Int64
		opts := racefree.TxOptions{Retry: onRetry(racefree.Backoff{}, func(int, error, time.Duration) { retries.Add(1) })}
		if e.Name != "sqlite" {
			opts.Isolation = sql.LevelSerializable
		}
		var (
			mu   sync.Mutex // guards errs
			errs []error
		)
		bar := newBarrier(goroutines)
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range each {
					bar.wait()
					err := gormrf.RunInTx(ctx, gdb, opts, func(tx *gorm.DB) error {
						var c counter
						if err := tx.Table(table).First(&c, 1).Error; err != nil {
							return err
						}
						return tx.Table(table).Where("id = ?", 1).Update("n", c.N+1).Error
					})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		var c counter
		if err := gdb.Table(table).First(&c, 1).Error; err != nil {
			t.Fatal(err)
		}
		t.Logf("%d increments: counter %d, %d retries, %d errors", goroutines*each, c.N, retries.Load(), len(errs))
		if len(errs) > 0 || c.N != goroutines*each {
			t.Errorf("counter %d, want %d; errors: %v", c.N, goroutines*each, errors.Join(errs...))
		}
		if e.Name != "sqlite" && retries.Load() == 0 {
			t.Error("no retry: the SERIALIZABLE increments never conflicted, so the test proved nothing")
		}
	})
}

func TestRunInTx(t *testing.T) {
	gormtest.ForEach(t, func(t *testing.T, e gormtest.Engine) {
		ctx := context.Background()
		gdb := e.Open(t, gormtest.SQLitePath(t), 4)
		table := gormtest.CreateTable(t, gdb, "gormrf_counter", "id BIGINT PRIMARY KEY, n BIGINT NOT NULL")
		count := func() int64 {
			var n int64
			if err := gdb.Table(table).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		t.Run("rolls back on error", func(t *testing.T) {
			boom := errors.New("boom")
			err := gormrf.RunInTx(ctx, gdb, racefree.TxOptions{}, func(tx *gorm.DB) error {
				if err := tx.Table(table).Create(&counter{ID: 10}).Error; err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) || count() != 0 {
				t.Errorf("err %v, %d rows: want boom and nothing written", err, count())
			}
		})

		t.Run("executor knows the isolation", func(t *testing.T) {
			level := sql.LevelReadCommitted
			if e.Name == "sqlite" {
				level = sql.LevelDefault
			}
			err := gormrf.RunInTx(ctx, gdb, racefree.TxOptions{Isolation: level}, func(tx *gorm.DB) error {
				ex, err := gormrf.Executor(tx.Table(table))
				if err != nil {
					return err
				}
				rtx, ok := ex.(*racefree.Tx)
				if !ok {
					t.Fatalf("executor %T inside RunInTx, want *racefree.Tx", ex)
				}
				if got, known := rtx.Isolation(); !known || got != level {
					t.Errorf("isolation %v (known %v), want %v", got, known, level)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})

		t.Run("nested in db.Transaction", func(t *testing.T) {
			err := gdb.Transaction(func(tx *gorm.DB) error {
				if err := tx.Table(table).Create(&counter{ID: 20}).Error; err != nil {
					return err
				}
				// The inner part fails and is rolled back to its savepoint;
				// the outer transaction goes on and commits row 20.
				inner := gormrf.RunInTx(ctx, tx, racefree.TxOptions{}, func(tx *gorm.DB) error {
					if err := tx.Table(table).Create(&counter{ID: 21}).Error; err != nil {
						return err
					}
					return errors.New("inner fails")
				})
				if inner == nil {
					t.Error("inner error lost")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			if err := gdb.Table(table).Order("id").Pluck("id", &ids).Error; err != nil {
				t.Fatal(err)
			}
			if len(ids) != 1 || ids[0] != 20 {
				t.Errorf("rows %v, want [20]", ids)
			}
		})
	})
}
