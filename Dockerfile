FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY geo_service ./geo_service
COPY migrations ./migrations
COPY seed ./seed
# Editable: migrations, alembic.ini and seed/ are read from /app at run time.
RUN pip install --no-cache-dir -e .
RUN useradd --system --home /app geo && chown -R geo /app
USER geo
EXPOSE 8000
CMD ["geo-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
