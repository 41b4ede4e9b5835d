#!/bin/sh
# The password comes from the environment, never from the image.
set -eu
umask 077
printf '"%s" "%s"\n' "${DB_USER:-geo}" "${DB_PASSWORD:?set DB_PASSWORD}" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
