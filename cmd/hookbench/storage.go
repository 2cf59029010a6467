package main

import (
	"context"
	"fmt"
	"strings"
)

// storageResult is what one relation of the inbox or River's job table
// holds per row of its table, after the CPU phase's load.
type storageResult struct {
	Server   string  `json:"server"`
	Relation string  `json:"relation"`
	Table    string  `json:"table"`
	Rows     int64   `json:"rows"`
	Bytes    int64   `json:"bytes"`
	PerRow   float64 `json:"bytes_per_row"`
	IsIndex  bool    `json:"is_index"`
	Indexdef string  `json:"indexdef,omitempty"`
}

// storage measures, in db, the heap and each index of inbox_events and
// river_job, per row: what each event costs on disk. Sizes are of the
// relations' main forks, so a table's figure leaves out its TOAST
// (payloads over ~2 KB).
func storage(ctx context.Context, server string, db *database) ([]storageResult, error) {
	var out []storageResult
	for _, table := range []string{"inbox_events", "river_job"} {
		var n int64
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		if n == 0 {
			continue
		}
		rows, err := db.pool.Query(ctx, `
			SELECT c.relname, pg_relation_size(c.oid), i.indexrelid IS NOT NULL, coalesce(pg_get_indexdef(i.indexrelid), '')
			FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
			WHERE c.oid = $1::regclass OR i.indrelid = $1::regclass
			ORDER BY i.indexrelid IS NOT NULL, c.relname`, table)
		if err != nil {
			return nil, fmt.Errorf("sizes of %s: %w", table, err)
		}
		for rows.Next() {
			r := storageResult{Server: server, Table: table, Rows: n}
			if err := rows.Scan(&r.Relation, &r.Bytes, &r.IsIndex, &r.Indexdef); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sizes of %s: %w", table, err)
			}
			r.PerRow = float64(r.Bytes) / float64(n)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sizes of %s: %w", table, err)
		}
	}
	return out, nil
}

// storageMarkdown writes the storage table of the CPU phase's batch
// receiver.
func (r *report) storageMarkdown(b *strings.Builder) {
	if len(r.Storage) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Storage per event (%s, after the CPU phase)\n\n", r.Storage[0].Server)
	fmt.Fprintf(b, "Each relation's main fork (`pg_relation_size`) divided by its table's rows: the average bytes stored per event; TOAST is left out. Every insert adds a heap row and an entry to each index, on pages of 8 KB.\n\n")
	fmt.Fprintf(b, "| Table | Relation | Rows | Bytes per row |\n|---|---|---:|---:|\n")
	for _, s := range r.Storage {
		kind := "heap"
		if s.IsIndex {
			kind = "index"
		}
		fmt.Fprintf(b, "| %s | %s (%s) | %d | %.0f |\n", s.Table, s.Relation, kind, s.Rows, s.PerRow)
	}
}
