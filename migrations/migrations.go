// Package migrations embeds Hookline's own SQL migrations, in goose format.
// River's migrations are applied separately, by rivermigrate; see
// internal/migrate, which runs both.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// FS returns the migration files, named NNNNN_description.sql.
func FS() fs.FS { return files }
