package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookline/hookline/examples/balances"
	"github.com/hookline/hookline/internal/migrate"
)

// database is a throwaway, migrated database for one measurement.
type database struct {
	name  string
	url   string
	pool  *pgxpool.Pool
	admin string
}

func newDatabase(ctx context.Context, adminURL, name string) (*database, error) {
	name = fmt.Sprintf("hookbench_%d_%s", os.Getpid(), name)
	if err := adminExec(ctx, adminURL, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return nil, err
	}
	if err := adminExec(ctx, adminURL, `CREATE DATABASE `+name); err != nil {
		return nil, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse admin URL: %w", err)
	}
	u.Path = "/" + name
	db := &database{name: name, url: u.String(), admin: adminURL}
	if db.pool, err = pgxpool.New(ctx, db.url); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	if _, err := migrate.Up(ctx, db.pool, balances.Migrations()); err != nil {
		db.drop(ctx)
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return db, nil
}

func (db *database) drop(ctx context.Context) {
	db.pool.Close()
	_ = adminExec(context.WithoutCancel(ctx), db.admin, `DROP DATABASE IF EXISTS `+db.name+` WITH (FORCE)`)
}

func (db *database) count(ctx context.Context, sql string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the admin database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// process is a server the benchmark started.
type process struct {
	cmd  *exec.Cmd
	base string
}

func startProcess(ctx context.Context, bin string, args, env []string, healthURL string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	// Logs go nowhere, but are still formatted and written: each server pays
	// the same per-request logging cost it would in production.
	cmd.Stdout, cmd.Stderr = devnull, devnull
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, base: healthURL}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(healthURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s did not become healthy at %s", bin, healthURL)
}

// peakRSSMB returns the process's peak resident set size (VmHWM).
func (p *process) peakRSSMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return -1
}

// stop sends SIGTERM and waits up to 30s before killing.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
