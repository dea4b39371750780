package gormrf_test

import (
	"context"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/racefree/racefree/gormrf"
	"github.com/racefree/racefree/gormrf/internal/gormtest"
)

// BenchmarkFirstOrCreate_Hit compares a hit (the row exists) of gormrf's
// FirstOrCreate with GORM's own FirstOrCreate and with GORM's First, the
// plain read every get-or-create must at least do, on 1000 keys.
//
//	go test -run '^$' -bench FirstOrCreate_Hit -benchmem
func BenchmarkFirstOrCreate_Hit(b *testing.B) {
	for _, e := range gormtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			e.Require(b)
			ctx := context.Background()
			gdb := e.Open(b, gormtest.SQLitePath(b), 8)
			table := gormtest.CreateTable(b, gdb, "gormrf_bench", raceDDL(true))
			const keys = 1000
			db := gdb.Table(table).Session(&gorm.Session{})
			for i := range keys {
				var u raceUser
				if _, err := gormrf.FirstOrCreate(ctx, db, &u, raceUser{Email: fmt.Sprint(i)}, raceUser{Name: "n"}); err != nil {
					b.Fatal(err)
				}
			}
			run := func(b *testing.B, call func(key string) error) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := call(fmt.Sprint(i % keys)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			}
			b.Run("gorm-first", func(b *testing.B) {
				run(b, func(key string) error {
					var u raceUser
					return gdb.WithContext(ctx).Table(table).Where("email = ?", key).First(&u).Error
				})
			})
			b.Run("gorm-firstorcreate", func(b *testing.B) {
				run(b, func(key string) error {
					var u raceUser
					return gdb.WithContext(ctx).Table(table).Where(raceUser{Email: key}).Attrs(raceUser{Name: "n"}).FirstOrCreate(&u).Error
				})
			})
			b.Run("gormrf", func(b *testing.B) {
				run(b, func(key string) error {
					var u raceUser
					_, err := gormrf.FirstOrCreate(ctx, db, &u, raceUser{Email: key}, raceUser{Name: "n"})
					return err
				})
			})
		})
	}
}
