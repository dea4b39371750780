package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// InheritedListener returns the listening socket a worker process inherits
// from Prefork at ListenerFD.
func InheritedListener() (net.Listener, error) {
	f := os.NewFile(ListenerFD, "listener")
	if f == nil {
		return nil, fmt.Errorf("serve: no listening socket at file descriptor %d (a worker is started by racefree serve)", ListenerFD)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("serve: no listening socket at file descriptor %d (a worker is started by racefree serve): %w", ListenerFD, err)
	}
	return ln, nil
}

// shutdownGrace is how long Serve waits for requests in flight when it
// stops.
const shutdownGrace = 5 * time.Second

// Serve serves h on ln until ctx ends, then stops accepting and waits up to
// a few seconds for the requests in flight. Once it accepts connections it
// writes ReadyLine and the process id, one line, to ready.
//
// Keep-alive is off: each connection carries one request, so that every
// request may be accepted by any worker process, as behind a load balancer;
// a browser's kept-alive connection would tie its requests to one process.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, ready io.Writer) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.SetKeepAlivesEnabled(false)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(ready, "%s %d\n", ReadyLine, os.Getpid()); err != nil {
		srv.Close()
		return fmt.Errorf("serve: report ready: %w", err)
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
		return fmt.Errorf("serve: requests still running %v after the stop: closed", shutdownGrace)
	}
	if err != nil {
		return fmt.Errorf("serve: shut down: %w", err)
	}
	return nil
}
