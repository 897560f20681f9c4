# Tocsin in a container: applies the migrations, then serves (with the worker in-process).
#   docker build -t tocsin .
#   docker run -p 8080:8080 -v tocsin-data:/var/lib/tocsin tocsin
# On PostgreSQL set TOCSIN_DATABASE_URL (and TOCSIN_SECRET_KEY, TOCSIN_PUBLIC_URL); run
# workers from the same image with the command `tocsin worker` (and --no-healthcheck: a
# worker answers no HTTP). docs/operations.md has the rest.

FROM python:3.11-slim AS build
WORKDIR /src
# Only what the package is built from (see .dockerignore).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[otel]"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tocsin --create-home \
        --shell /usr/sbin/nologin tocsin
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "tocsin[otel]" \
    && rm -rf /wheels
ENV TOCSIN_DATABASE_URL=sqlite+aiosqlite:////var/lib/tocsin/tocsin.db \
    TOCSIN_HOST=0.0.0.0 \
    TOCSIN_PORT=8080 \
    PYTHONUNBUFFERED=1
USER tocsin
WORKDIR /var/lib/tocsin
VOLUME ["/var/lib/tocsin"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TOCSIN_PORT', '8080') + '/healthz', timeout=4)"]
CMD ["sh", "-c", "tocsin db upgrade && exec tocsin serve"]
