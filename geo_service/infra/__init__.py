"""Infrastructure: settings, the connection pools, standbys, PgBouncer, the local
cluster, backups and paths. Imports no web framework and no room."""
