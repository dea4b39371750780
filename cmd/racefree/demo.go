package main

import (
	"context"
	"io"
)

type DemoCommand struct{}

func (c *DemoCommand) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return nil
}
