# Front-end assets (Leaflet, markercluster, Swagger UI, ReDoc, the app's libraries) come from npm at
# build time and are served by the service, never fetched from a CDN at run time.
FROM node:20-bookworm-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# The manual (docs/, MkDocs Material), built strictly here and served at /guide/; the
# build tools stay in this stage.
FROM python:3.11-slim-bookworm AS guide
WORKDIR /src
COPY pyproject.toml README.md ./
COPY geo_service ./geo_service
COPY docs ./docs
RUN pip install --no-cache-dir ".[docs]" \
    && NO_MKDOCS_2_WARNING=1 mkdocs build --strict -f docs/mkdocs.yml

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The station posters' PDF engine (WeasyPrint) lays text out with Pango and embeds this
# Chinese font (GEO_POSTER_FONT_FILE).
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 \
        libpangoft2-1.0-0 fonts-wqy-microhei && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md alembic.ini ./
COPY geo_service ./geo_service
COPY migrations ./migrations
COPY seed ./seed
COPY --from=assets /assets/node_modules ./node_modules
COPY --from=guide /src/build/guide ./build/guide
# Editable: migrations, alembic.ini and seed/ are read from /app at run time.
RUN pip install --no-cache-dir -e .
RUN mkdir -p /app/maps /var/lib/geo_service && useradd --system --home /app geo \
    && chown -R geo /app /var/lib/geo_service
USER geo
EXPOSE 8000
CMD ["geo-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
