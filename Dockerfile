# The relay on its embedded default (SQLite + blob directory in /data), as a non-root user.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/relay --uid 10001 relay \
 && install -d -o relay -g relay -m 0700 /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY storage ./storage
COPY policies ./policies
COPY media ./media
RUN pip install --no-cache-dir .

USER relay
VOLUME ["/data"]
EXPOSE 8787
# The container listens on all its interfaces in plain http: publish the port on loopback only,
# with a TLS proxy in front (README, Operations), or give RELAY_TLS_CERT and RELAY_TLS_KEY.
ENV RELAY_DATA_DIR=/data RELAY_HOST=0.0.0.0 RELAY_PORT=8787 RELAY_BEHIND_PROXY=1

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status == 200 else 1)"

CMD ["relay", "serve"]
