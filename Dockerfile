# The one image every xxgk-watch process runs (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY worker ./worker
RUN pip install . && useradd --create-home --uid 10001 xxgk && mkdir -p /data/archive && chown xxgk /data/archive
USER xxgk
CMD ["xxgk", "--help"]
