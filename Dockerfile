# Panorama: one image for the API (gunicorn), the Celery worker and Celery beat.
# Build: docker build -t panorama .      Run: see docker-compose.yml and docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user; its home is the working directory, so Celery beat's schedule file
# (celerybeat-schedule) and the embedded default's var/ are writable there, nowhere else.
RUN groupadd --system --gid 10001 panorama \
    && useradd --system --uid 10001 --gid panorama --create-home \
       --home-dir /home/panorama --shell /usr/sbin/nologin panorama

# The package only: no dev extras, no tests, no data (see .dockerignore). psycopg, redis and
# the rest come as binary wheels, so no compiler is needed. README.m[d] copies the README
# when there is one (pyproject.toml names it) and nothing otherwise.
WORKDIR /src
COPY pyproject.toml README.m[d] ./
COPY domain ./domain
COPY projections ./projections
COPY importers ./importers
COPY workers ./workers
COPY service ./service
RUN pip install . \
    && rm -rf /src

WORKDIR /home/panorama
USER 10001:10001

# Inside a container the API must listen on every interface (the default is 127.0.0.1).
ENV PANORAMA_HOST=0.0.0.0 \
    PANORAMA_PORT=8000
EXPOSE 8000

# The same image runs `panorama worker` and `panorama beat` (docker-compose.yml overrides
# the command). With no DATABASE_URL it runs the embedded default (SQLite under var/).
CMD ["panorama", "serve"]
