# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bootstrap system-deps db migrate seed maps guide serve bench bench-areas lint typecheck compose-check clean-db

run: db migrate seed maps guide serve

# The app's JavaScript: ESLint (eslint.config.mjs) and node's own test runner over the
# pure modules (tests/app/*.test.mjs; tests/app/nearest_offline.mjs is pytest's harness).
ESLINT := node_modules/.bin/eslint
NODE_TESTS := node --test --test-reporter=spec tests/app/*.test.mjs

test: db guide
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(ESLINT) .
	$(NODE_TESTS)
	$(BIN)/python -m pytest -q

NPM_STAMP := node_modules/.installed-stamp

bootstrap: system-deps $(STAMP) $(NPM_STAMP)

system-deps:
	@scripts/system-deps.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev,docs]"
	touch $(STAMP)

# Front-end and test assets come from npm at setup, never from a CDN at run time.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

db: bootstrap
	$(BIN)/geo-service db start

migrate: db
	$(BIN)/geo-service migrate

seed: migrate
	$(BIN)/geo-service seed

# The sample city's three maps, Leaflet written into each file (they open offline;
# the OpenStreetMap basemap shows where there is internet). Linked from the root page.
SAMPLE_AREA ?= 460200
maps: seed
	$(BIN)/geo-service maps render --area $(SAMPLE_AREA) --ensure-run --offline --basemap osm

# The manual (docs/, MkDocs Material), served at /guide/. --strict: a broken link or a
# page left out of the navigation fails the build, and with it `make test` (never add
# --quiet: it hides the warnings --strict counts, and a broken build then passes).
guide: bootstrap
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -f docs/mkdocs.yml

serve:
	@echo "serving on http://$(HOST):$(PORT)/ (API docs at /docs)"
	$(BIN)/geo-service serve --host $(HOST) --port $(PORT)

# wrk is the API side's load generator (Debian's package), needed only here.
bench: db
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "run: sudo apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python bench/run_all.py --coverage --feeds --maps
	$(BIN)/python bench/bench_memory_nearest.py
	$(BIN)/python bench/area_assign.py
	$(BIN)/python bench/app_size.py
	$(BIN)/python bench/bench_scaling.py
	$(BIN)/python bench/app_load.py
	$(BIN)/python bench/bench_roads.py
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev,docs,bench]"
	$(BIN)/python bench/bench_reco.py

# Point -> area assignment on real boundaries, 1M points (bench/AREAS.md); not in make test.
bench-areas: db
	$(BIN)/python bench/area_assign.py

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(ESLINT) .

compose-check:
	@command -v docker-compose >/dev/null || { [ "$$(id -u)" -eq 0 ] \
		&& apt-get install -y -qq docker-compose >/dev/null; } \
		|| { echo "run: sudo apt-get install -y docker-compose" >&2; exit 1; }
	docker-compose -f docker-compose.yml config -q

clean-db:
	-$(BIN)/geo-service db stop
	rm -rf .pgdata
