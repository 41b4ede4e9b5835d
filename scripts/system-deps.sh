#!/usr/bin/env bash
# Install what the project needs from Debian's packages when it is missing.
# Root installs directly; anyone else gets the command to run.
set -euo pipefail

pkgs=()
if [ -z "${GEO_DATABASE_URL:-}" ]; then
  [ -x /usr/lib/postgresql/15/bin/initdb ] || pkgs+=(postgresql-15)
  [ -f /usr/share/postgresql/15/extension/postgis.control ] || pkgs+=(postgresql-15-postgis-3)
  # Road routing (issue 28): pgRouting beside PostGIS; the road tests use it as the oracle.
  [ -f /usr/share/postgresql/15/extension/pgrouting.control ] || pkgs+=(postgresql-15-pgrouting)
fi
command -v psql >/dev/null 2>&1 || pkgs+=(postgresql-client-15)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
# The map tests drive Debian's Chromium (Playwright never downloads a browser here).
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
# CJK glyphs for the map screenshots the browser tests save (names are Chinese), and the
# font embedded in the station posters (GEO_POSTER_FONT_FILE).
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || pkgs+=(fonts-wqy-microhei)
# Pango, which WeasyPrint (the posters' PDF engine, from PyPI) lays text out with.
ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || pkgs+=(libpango-1.0-0 libpangoft2-1.0-0)
# pdftotext, pdftoppm and pdffonts (poppler): the bulletin tests read its PDF back with them.
command -v pdftotext >/dev/null 2>&1 || pkgs+=(poppler-utils)
# GDAL's OAPIF driver is the real OGC client the feed tests read the service with.
command -v ogrinfo >/dev/null 2>&1 || pkgs+=(gdal-bin)
# Running at scale (tests/test_pgbouncer.py, test_serve.py, test_topology.py): the pooler
# in front of the local cluster, nginx to check the load balancer's config with `nginx -t`,
# and docker-compose (no engine) to validate the topology file.
[ -x /usr/sbin/pgbouncer ] || pkgs+=(pgbouncer)
[ -x /usr/sbin/nginx ] || pkgs+=(nginx)
command -v docker-compose >/dev/null 2>&1 || pkgs+=(docker-compose)

if [ ${#pkgs[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${pkgs[*]}" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
echo "installing system packages: ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
