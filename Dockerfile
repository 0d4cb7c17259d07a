# RestART Tutor: a slim image that runs `restart-tutor` as a non-root user.
#
#   docker build -t restart-tutor .
#   docker run -e TELEGRAM_BOT_TOKEN=... -v tutor-data:/data restart-tutor          # long polling, SQLite
#   docker run ... restart-tutor run --webhook-url https://tutor.example.org/telegram/webhook
#   docker run ... restart-tutor db upgrade | lessons check | verify CODE
#
# The default database is SQLite in the /data volume; set DATABASE_URL=postgresql://... for
# PostgreSQL (several instances: see docker-compose.yml and docs/deploying.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group tutor

# The application from pyproject.toml: runtime dependencies only (no [test] extras). Built from a
# throwaway folder so nothing but the installed package is importable as `bot` or `storage`.
COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY storage /src/storage
RUN pip install /src && rm -rf /src

# Content and translations live beside the package, read-only. The catalogs are compiled here,
# so the .mo files are newer than the .po files and the tutor never writes into /app at start.
WORKDIR /app
COPY lessons ./lessons
COPY locales ./locales
RUN python -c "from pathlib import Path; from bot.i18n import compile_catalogs; \
compile_catalogs(Path('/app/locales'))" \
    && restart-tutor --lessons /app/lessons lessons check

# /data holds the SQLite database (the default); unused with PostgreSQL.
RUN mkdir /data && chown tutor:tutor /data
VOLUME ["/data"]

ENV TUTOR_LESSONS_DIR=/app/lessons \
    TUTOR_LOCALES_DIR=/app/locales \
    DATABASE_URL=sqlite:////data/restart-tutor.db \
    MPLCONFIGDIR=/tmp/matplotlib

USER tutor
EXPOSE 8080

# /healthz answers as soon as `run` serves HTTP (port 8080 unless --port says otherwise). slim has
# no curl: the standard library's urllib does it, and any error or non-200 exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["restart-tutor"]
CMD ["run"]
