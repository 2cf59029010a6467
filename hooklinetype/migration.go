package hooklinetype

import "io/fs"

// MigrationSet is an application's own goose SQL migrations, for the tables
// its handlers write. Each set is tracked in a version table of its own,
// <Name>_db_version, so an application numbers its files from 00001 and
// never collides with Hookline's.
type MigrationSet struct {
	// Name is lower-case letters, digits and _, starting with a letter.
	// "hookline" and "river" are taken.
	Name string
	// FS holds the files, named NNNNN_description.sql, usually an embed.FS
	// (fs.Sub it if the files sit in a subdirectory).
	FS fs.FS
}
