# RestART Tutor: slim image, non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 tutor

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN pip install .
COPY lessons ./lessons
COPY locales ./locales

ENV TUTOR_LESSONS_DIR=/app/lessons TUTOR_LOCALES_DIR=/app/locales \
    DATABASE_URL=sqlite:////data/restart-tutor.db
RUN mkdir /data && chown tutor /data /app/locales
USER tutor
VOLUME ["/data"]
ENTRYPOINT ["restart-tutor"]
CMD ["chat"]
