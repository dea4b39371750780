package main

import (
	"context"
	"io"
)

type DoctorCommand struct{}

func (c *DoctorCommand) Run(ctx context.Context, args []string, stdout io.Writer) error { return nil }
