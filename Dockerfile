# One image for every service role (api, train worker, explain worker, migrations); the command picks.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY batchcam batchcam
COPY persistence persistence
COPY api api
COPY worker worker
COPY migrations migrations
COPY alembic.ini ./
RUN pip install --no-cache-dir '.[service]'

# Named volumes mount at /data and /cache; created here, they inherit this ownership (a mount point
# Docker has to create is root's, and the unprivileged user could not write datasets or the beat schedule).
RUN useradd --create-home --uid 10001 batchcam && mkdir -p /data /cache && chown batchcam:batchcam /data /cache
USER batchcam
EXPOSE 8000
CMD ["python", "-m", "api.serve", "--host", "0.0.0.0", "--port", "8000"]
