# meetnow in a container: `docker build -t meetnow .` then deploy/compose.yaml runs it with Caddy
# and coturn. Host networking there: the relay's UDP port range is published as it is, never as
# thousands of Docker port mappings (a known way to hang Docker's proxy and exhaust memory).
FROM python:3.11-slim-bookworm

# aiortc, av and pylibsrtp ship manylinux wheels with their codecs: no compiler, no apt packages.
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY meetnow ./meetnow
COPY signaling ./signaling
COPY bot ./bot
COPY web_client ./web_client
# /var/lib/meetnow is the room database's directory (MEETNOW_DATA_DIR), owned by the service's user
# so that a volume mounted there starts with that owner.
RUN pip install --no-cache-dir --disable-pip-version-check . \
    && rm -rf /src \
    && useradd --system --no-create-home --uid 10001 meetnow \
    && install -d -m 0700 -o meetnow /var/lib/meetnow

# An empty working directory: meetnow reads no .env; its settings come from the environment.
WORKDIR /srv
USER meetnow
ENV PYTHONUNBUFFERED=1 \
    MEETNOW_DATA_DIR=/var/lib/meetnow \
    MEETNOW_HOST=127.0.0.1 \
    MEETNOW_PORT=8080
EXPOSE 8080
# meetnow ends its rooms (and updates chat cards) on SIGINT, as on Ctrl-C.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"MEETNOW_PORT\", \"8080\")}/healthz', timeout=4)"
ENTRYPOINT ["meetnow"]
CMD ["serve"]
