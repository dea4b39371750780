package mysqldialect_test

import (
	"context"
	"fmt"
	"log"

	"github.com/racefree/racefree"
	"github.com/racefree/racefree/dialect/mysqldialect"
)

// Wrap a *sql.DB opened with go-sql-driver/mysql, naming its dialect;
// racefree.New reads the server's version and tells MySQL, MariaDB
// (Galera too) and TiDB apart. It needs a server, so it is compiled, not
// run.
func ExampleNew() {
	ctx := context.Background()
	sqlDB, err := mysqldialect.Open("mysql://root@127.0.0.1:3306/test")
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	db, err := racefree.New(ctx, sqlDB, mysqldialect.New())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(db.Dialect().Server()) // "MariaDB 11.4.5", say
}

// Open takes either DSN form and does not connect: the first statement
// does. It needs a server, so it is compiled, not run.
func ExampleOpen() {
	ctx := context.Background()
	sqlDB, err := mysqldialect.Open("root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		log.Fatal(err)
	}
	defer sqlDB.Close()
	if err := sqlDB.PingContext(ctx); err != nil {
		log.Fatal(err)
	}
}

// ParseDSN reads both DSN forms into the driver's Config, with the
// settings racefree relies on turned on unless the DSN turns them off.
func ExampleParseDSN() {
	for _, dsn := range []string{
		"mysql://app:secret@db.example.com:3306/shop",
		"app:secret@tcp(db.example.com:3306)/shop?interpolateParams=false",
	} {
		cfg, err := mysqldialect.ParseDSN(dsn)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(cfg.User, cfg.Addr, cfg.DBName, cfg.ParseTime, cfg.InterpolateParams)
	}
	// Output:
	// app db.example.com:3306 shop true true
	// app db.example.com:3306 shop true false
}
